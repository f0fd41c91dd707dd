/**
 * Divergence detection for the shared training loop, earlier than a non-finite loss. Not from a
 * paper; the rule (a common "loss spike" guard):
 *
 * - a step whose loss or gradient norm is not finite diverges at once;
 * - after `warmup` healthy steps, a step is a *spike* when its loss is above `lossFactor` times
 *   the running mean of the healthy losses, or its gradient norm above `gradFactor` times the
 *   running mean of the healthy gradient norms (means over about the last 1 / (1 - beta) healthy
 *   steps; spikes are not added to them);
 * - `patience` spikes in a row are a divergence; a single spike is an outlier batch, whose update
 *   the loop skips.
 *
 * The monitor's state is plain JSON, stored in checkpoints, so a resumed run keeps its statistics.
 *
 * @module
 */

/** Options of {@linkcode createDivergenceMonitor}. */
export interface DivergenceOptions {
  /** Healthy steps before spikes are looked for. @default 50 */
  warmup?: number;
  /** A loss above this multiple of its running mean is a spike. @default 10 */
  lossFactor?: number;
  /** A gradient norm above this multiple of its running mean is a spike. @default 100 */
  gradFactor?: number;
  /** Spikes in a row that make a divergence. @default 3 */
  patience?: number;
  /** Weight of the old mean in the running means. @default 0.98 */
  beta?: number;
}

/** The monitor's JSON state. */
export interface DivergenceState {
  /** Healthy steps seen. */
  healthy: number;
  /** Running mean of the healthy losses. */
  meanLoss: number;
  /** Running mean of the healthy gradient norms (NaN when none were given). */
  meanGrad: number;
  /** Spikes in a row so far. */
  spikes: number;
}

/** What {@linkcode DivergenceMonitor.check} says about one step. */
export interface StepVerdict {
  /** The step is healthy (not a spike, not diverged): its update may be applied. */
  healthy: boolean;
  /** Set when the run diverged: why, in words. */
  diverged?: string;
}

/** A running loss / gradient-norm monitor. */
export interface DivergenceMonitor {
  /** Judges one step and updates the statistics. */
  check(step: { loss: number; gradNorm?: number }): StepVerdict;
  /** The JSON state (for checkpoints). */
  state(): DivergenceState;
}

/**
 * A divergence monitor, fresh or restored from `state`.
 *
 * @param options The rule's constants.
 * @param state A state from {@linkcode DivergenceMonitor.state} (a checkpoint), or undefined.
 * @returns The monitor.
 * @throws {RangeError} For non-positive factors, patience or warm-up below 0, beta outside [0, 1).
 * @example
 * ```ts
 * import { createDivergenceMonitor } from "./divergence.ts";
 * const m = createDivergenceMonitor({ warmup: 2, patience: 1 });
 * m.check({ loss: 1 });
 * m.check({ loss: 1 });
 * console.assert(m.check({ loss: 100 }).diverged !== undefined);
 * ```
 */
export function createDivergenceMonitor(
  options: DivergenceOptions = {},
  state?: DivergenceState,
): DivergenceMonitor {
  const { warmup = 50, lossFactor = 10, gradFactor = 100, patience = 3, beta = 0.98 } = options;
  if (!(lossFactor > 1) || !(gradFactor > 1)) {
    throw new RangeError(`divergence factors must exceed 1, got ${lossFactor} and ${gradFactor}`);
  }
  if (!(Number.isInteger(patience) && patience >= 1) || !(warmup >= 0)) {
    throw new RangeError(`patience must be a positive integer and warmup >= 0`);
  }
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`beta must lie in [0, 1), got ${beta}`);
  // JSON turns NaN into null: read back anything that is not a finite number as NaN.
  const num = (x: unknown): number => (typeof x === "number" && Number.isFinite(x) ? x : NaN);
  const s: DivergenceState = state && Number.isFinite(state.healthy)
    ? {
      healthy: state.healthy,
      meanLoss: num(state.meanLoss),
      meanGrad: num(state.meanGrad),
      spikes: Number.isInteger(state.spikes) ? state.spikes : 0,
    }
    : { healthy: 0, meanLoss: NaN, meanGrad: NaN, spikes: 0 };
  const window = 1 / (1 - beta);
  const mean = (old: number, x: number): number =>
    Number.isNaN(old) ? x : old + (x - old) / Math.min(s.healthy + 1, window);
  return {
    check({ loss, gradNorm }) {
      if (!Number.isFinite(loss)) return { healthy: false, diverged: `the loss is ${loss}` };
      if (gradNorm !== undefined && !Number.isFinite(gradNorm)) {
        return { healthy: false, diverged: `the gradient norm is ${gradNorm}` };
      }
      let spike: string | undefined;
      if (s.healthy >= warmup) {
        if (loss > lossFactor * s.meanLoss) {
          spike = `loss ${loss.toPrecision(3)} > ${lossFactor} x its running mean ` +
            `${s.meanLoss.toPrecision(3)}`;
        } else if (gradNorm !== undefined && gradNorm > gradFactor * s.meanGrad) {
          spike = `gradient norm ${gradNorm.toPrecision(3)} > ${gradFactor} x its running mean ` +
            `${s.meanGrad.toPrecision(3)}`;
        }
      }
      if (spike) {
        s.spikes++;
        return s.spikes >= patience
          ? { healthy: false, diverged: `${s.spikes} steps in a row spiked (${spike})` }
          : { healthy: false };
      }
      s.spikes = 0;
      s.meanLoss = mean(s.meanLoss, loss);
      if (gradNorm !== undefined) s.meanGrad = mean(s.meanGrad, gradNorm);
      s.healthy++;
      return { healthy: true };
    },
    state: () => ({ ...s }),
  };
}
