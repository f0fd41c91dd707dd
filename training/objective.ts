/**
 * The three trainable columns of EDM Table 1 as one choice: each pairs a preconditioner with its
 * loss and its training noise distribution (VP: t ~ U(eps_t, 1); VE: ln sigma uniform; EDM:
 * ln sigma ~ N(P_mean, P_std^2)).
 *
 * @module
 */
import type { Network } from "../core/types.ts";
import type { Rng } from "../core/rng.ts";
import type { Preconditioned } from "../models/precond.ts";
import { edmPrecond } from "../models/precond_edm.ts";
import { vpPrecond } from "../models/precond_vp.ts";
import { vePrecond } from "../models/precond_ve.ts";
import type { DenoisingLoss } from "./denoising_loss.ts";
import { drawEdmSigmas, edmLoss } from "./loss_edm.ts";
import { drawVpSigmas, vpLoss } from "./loss_vp.ts";
import { drawVeSigmas, veLoss } from "./loss_ve.ts";
import { subVpPrecond } from "../models/precond_subvp.ts";
import { type ScoreSdeName, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { drawSdeTimes, sdeLoss, type SdeTimeOptions, sdeWeight } from "./loss_sde.ts";

/** A Table 1 column: preconditioner, loss and training sigma density. */
export interface Objective {
  /** Wraps a raw network into a denoiser. */
  precond(network: Network): Preconditioned;
  /** The loss over a denoiser. */
  loss: DenoisingLoss;
  /** Draws n training noise levels. */
  drawSigmas(n: number, rng: Rng): Float32Array;
  /** Per-image loss factors for drawn levels (`LossDraws.weight`; score SDEs). @default undefined */
  drawWeights?(sigmas: Float32Array): Float32Array;
}

/** The score-SDE training choices of {@linkcode sdeObjective} (stored in a run's config). */
export type SdeObjectiveOptions = Omit<SdeTimeOptions, "schedule"> & {
  /** Per-image reduction of the loss (`sdeLoss`). @default "sum" */
  reduce?: "sum" | "mean";
};

/**
 * The objective of a score SDE (Song et al. 2021; `loss_sde.ts`): score_sde's process with its
 * network conditioning (VE: EDM's VE preconditioner on sigma in [0.01, 50]; VP: EDM's VP
 * preconditioner, c_noise = 999 t as score_sde's DDPM++; sub-VP: `subVpPrecond`), t ~ U(eps, tMax)
 * or importance-sampled, and the sigma^2 or likelihood weighting.
 *
 * @param name "ve", "vp" or "subvp".
 * @param options Weighting, importance sampling, [eps, tMax] and the reduction.
 * @returns The objective; its `drawWeights` gives the per-image weights of drawn levels.
 * @throws {RangeError} For an unknown name or bad options.
 * @example score_sde's likelihood-weighted VP training
 * ```ts
 * import { sdeObjective } from "./objective.ts";
 * const { precond, loss, drawSigmas, drawWeights } = sdeObjective("vp", { weighting: "likelihood" });
 * ```
 */
export function sdeObjective(name: ScoreSdeName, options: SdeObjectiveOptions = {}): Objective {
  const schedule = scoreSdeSchedule(name);
  const { reduce, ...rest } = options;
  const timeOptions: SdeTimeOptions = { ...rest, schedule };
  sdeWeight(schedule.tMax, timeOptions); // validates the options now rather than at the first step
  const precond = (n: Network): Preconditioned =>
    name === "ve"
      ? vePrecond(n, { sigmaMin: schedule.sigma(0), sigmaMax: schedule.sigma(1) })
      : name === "vp"
      ? vpPrecond(n, { epsT: schedule.tMin })
      : subVpPrecond(n, { epsT: schedule.tMin });
  return {
    precond,
    loss: sdeLoss({ reduce }),
    drawSigmas: (n, rng) => drawSdeTimes(n, rng, timeOptions).sigma,
    // The level of a draw gives its time back: lambda = -2 log sigma_edm.
    drawWeights: (sigmas) =>
      Float32Array.from(
        sigmas,
        (s) => sdeWeight(schedule.tOfLogSnr(-2 * Math.log(s)), timeOptions),
      ),
  };
}

/**
 * The objective of a Table 1 column, or with `sde` (and always for "subvp") the score-SDE
 * objective of that process ({@linkcode sdeObjective}).
 *
 * @example
 * ```ts ignore
 * const { precond, loss, drawSigmas } = objectiveFor("edm");
 * ```
 */
export function objectiveFor(
  kind: "edm" | "vp" | "ve" | "subvp",
  sde?: SdeObjectiveOptions,
): Objective {
  if (sde !== undefined || kind === "subvp") {
    if (kind === "edm") {
      throw new RangeError('score-SDE training needs precond "ve", "vp" or "subvp"');
    }
    return sdeObjective(kind, sde);
  }
  switch (kind) {
    case "edm":
      return {
        precond: (n) => edmPrecond(n),
        loss: edmLoss(),
        drawSigmas: (n, r) => drawEdmSigmas(n, r),
      };
    case "vp":
      return {
        precond: (n) => vpPrecond(n),
        loss: vpLoss(),
        drawSigmas: (n, r) => drawVpSigmas(n, r),
      };
    case "ve":
      return {
        precond: (n) => vePrecond(n),
        loss: veLoss(),
        drawSigmas: (n, r) => drawVeSigmas(n, r),
      };
    default:
      throw new RangeError(`unknown preconditioner "${kind}": use edm, vp, ve or subvp`);
  }
}
