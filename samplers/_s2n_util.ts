/**
 * Shared pieces of the S2N samplers (S2N paper, Section 3.2): the denoiser call in EDM's
 * unscaled space (`x_hat = D(z / alpha; sigma / alpha)`), the time-grid check, and the loop over
 * a time grid with an optional final denoising step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Conditioning, Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { runSteps } from "./_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/**
 * `x_hat = D(z / alpha; sigma / alpha)` with sigma as a [N] tensor. Call inside `tf.tidy`.
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param z The sample in the schedule's space; not disposed.
 * @param at alpha(t), the EDM noise level sigma(t)/alpha(t) and the conditioning.
 * @returns The clean-data estimate, same shape as z.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { denoiseScaled } from "./_s2n_util.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const d = tf.tidy(() => denoiseScaled(zero, tf.ones([2, 3]), { alpha: 0.5, sigmaEdm: 1 }));
 * ```
 */
export function denoiseScaled(
  denoiser: Denoiser,
  z: tf.Tensor,
  at: { alpha: number; sigmaEdm: number; cond?: Conditioning },
): tf.Tensor {
  const sigma = tf.fill([z.shape[0]], at.sigmaEdm) as tf.Tensor1D;
  return denoiser(at.alpha === 1 ? z : tf.div(z, at.alpha), sigma, at.cond);
}

/**
 * Checks a time grid: at least 2 finite, strictly decreasing entries.
 *
 * @throws {TypeError} When `times` is not array-like.
 * @throws {RangeError} Naming the offending entry.
 * @example
 * ```ts
 * import { checkTimes } from "./_s2n_util.ts";
 * checkTimes([1, 0.5, 0]);
 * ```
 */
export function checkTimes(times: ArrayLike<number>): void {
  if (times === undefined || times === null || typeof times.length !== "number") {
    throw new TypeError(`times must be an array of decreasing times, got ${times}`);
  }
  if (times.length < 2) {
    throw new RangeError(
      `times needs at least 2 entries (one step), got ${times.length}; use s2nTimeGrid()`,
    );
  }
  for (let i = 0; i < times.length; i++) {
    if (!Number.isFinite(times[i]) || (i > 0 && !(times[i] < times[i - 1]))) {
      throw new RangeError(
        `times[${i}] = ${times[i]}: times must be finite and strictly decreasing`,
      );
    }
  }
}

/** Options of {@linkcode runTimeGrid}. */
export interface TimeGridLoopOptions extends SamplerOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N. */
  times: ArrayLike<number>;
  /** Add the step z -> alpha D(z / alpha; sigma / alpha) at t_N. @default false */
  finalDenoise?: boolean;
}

/**
 * The S2N sampler loop: one `step(z, t, s)` per pair of times (each one denoiser call), then the
 * optional final denoising. Records give EDM noise levels sigma/alpha and z-space samples.
 *
 * @param denoiser Used only by the final denoising step.
 * @param z The initial sample at t_0; never disposed.
 * @param options Schedule, times, finalDenoise and the shared sampler options.
 * @param step One step inside `tf.tidy`: returns z_s and the denoiser output.
 * @returns The final sample (owned by the caller) and the number of denoiser calls.
 * @throws {RangeError} For a bad grid, or finalDenoise where sigma(t_N) = 0.
 * @example Halve z at each of two steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { runTimeGrid } from "./_s2n_util.ts";
 * import { edmLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const { x } = await runTimeGrid(zero, tf.ones([1, 2]), {
 *   schedule: edmLogSnrSchedule(),
 *   times: [2, 1, 0.5],
 * }, (z) => ({ z: tf.mul(z, 0.5), denoised: tf.zerosLike(z) }));
 * x.dispose();
 * ```
 */
export async function runTimeGrid(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: TimeGridLoopOptions,
  step: (z: tf.Tensor, t: number, s: number) => { z: tf.Tensor; denoised: tf.Tensor },
): Promise<SampleResult> {
  const { schedule, times, finalDenoise = false, cond } = options;
  checkTimes(times);
  const numSteps = times.length - 1;
  const tLast = times[numSteps];
  const sigmaEdm = (t: number): number => schedule.sigma(t) / schedule.alpha(t);
  if (finalDenoise && !(sigmaEdm(tLast) > 0)) {
    throw new RangeError(
      `finalDenoise needs sigma(t_N) > 0, got ${schedule.sigma(tLast)} at t_N = ${tLast}; ` +
        `drop finalDenoise (the grid already ends at zero noise)`,
    );
  }
  let nfe = 0;
  const x = await runSteps(z, numSteps + (finalDenoise ? 1 : 0), options, (zi, i) => {
    nfe++;
    if (i === numSteps) {
      const alpha = schedule.alpha(tLast), level = sigmaEdm(tLast);
      const denoised = tf.tidy(() => denoiseScaled(denoiser, zi, { alpha, sigmaEdm: level, cond }));
      return {
        x: tf.tidy(() => tf.mul(denoised, alpha)),
        denoised,
        info: { t: tLast, tNext: tLast, sigma: level, sigmaNext: 0, sigmaHat: level, nfe },
      };
    }
    const t = times[i], s = times[i + 1];
    const out = tf.tidy(() => step(zi, t, s));
    return {
      x: out.z,
      denoised: out.denoised,
      info: { t, tNext: s, sigma: sigmaEdm(t), sigmaNext: sigmaEdm(s), sigmaHat: sigmaEdm(t), nfe },
    };
  });
  return { x, nfe };
}
