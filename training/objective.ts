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

/** A Table 1 column: preconditioner, loss and training sigma density. */
export interface Objective {
  /** Wraps a raw network into a denoiser. */
  precond(network: Network): Preconditioned;
  /** The loss over a denoiser. */
  loss: DenoisingLoss;
  /** Draws n training noise levels. */
  drawSigmas(n: number, rng: Rng): Float32Array;
}

/**
 * The objective of a Table 1 column.
 *
 * @example
 * ```ts ignore
 * const { precond, loss, drawSigmas } = objectiveFor("edm");
 * ```
 */
export function objectiveFor(kind: "edm" | "vp" | "ve"): Objective {
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
      throw new RangeError(`unknown preconditioner "${kind}": use edm, vp or ve`);
  }
}
