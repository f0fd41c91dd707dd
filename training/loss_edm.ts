/**
 * EDM's training loss (EDM Section 5, Table 1 "Ours" column, eq. 8): noise levels with
 * `ln(sigma) ~ N(P_mean, P_std^2)` and weighting `lambda(sigma) = 1 / c_out(sigma)^2 =
 * (sigma^2 + sigma_data^2) / (sigma sigma_data)^2`, which makes the effective training target of
 * the raw network unit-weighted at every sigma.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import { type DenoisingLoss, weightedLoss } from "./denoising_loss.ts";

/** Options of {@linkcode edmLoss} and {@linkcode drawEdmSigmas}. */
export interface EdmLossOptions {
  /** Mean of ln(sigma) (Table 1 P_mean). @default -1.2 */
  pMean?: number;
  /** Standard deviation of ln(sigma) (Table 1 P_std). @default 1.2 */
  pStd?: number;
  /** Standard deviation of the data (Table 1 sigma_data). @default 0.5 */
  sigmaData?: number;
}

/**
 * Draws n noise levels with `ln(sigma) ~ N(pMean, pStd^2)` from `rng`.
 *
 * @param n Number of levels (the batch size).
 * @param rng The generator; advanced by n normal draws.
 * @param options pMean and pStd.
 * @returns A new Float32Array of n positive levels.
 * @example
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { drawEdmSigmas } from "./loss_edm.ts";
 * const sigmas = drawEdmSigmas(32, new Rng(0));
 * ```
 */
export function drawEdmSigmas(n: number, rng: Rng, options: EdmLossOptions = {}): Float32Array {
  const { pMean = -1.2, pStd = 1.2 } = options;
  checkCount(n);
  if (!Number.isFinite(pMean) || !(pStd >= 0)) {
    throw new RangeError(`need a finite pMean and pStd >= 0, got pMean=${pMean}, pStd=${pStd}`);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.exp(pMean + pStd * rng.normal());
  return out;
}

/**
 * EDM's loss: weighting `(sigma^2 + sigma_data^2) / (sigma sigma_data)^2`. Draw its sigmas with
 * {@linkcode drawEdmSigmas}.
 *
 * @param options sigma_data (pMean and pStd are read by the draw function only).
 * @returns A {@linkcode DenoisingLoss}.
 * @throws {RangeError} For sigmaData not positive.
 * @example One training step's loss (wrap the call in `tf.variableGrads` for gradients)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { edmPrecond } from "../models/precond_edm.ts";
 * import { drawEdmSigmas, edmLoss } from "./loss_edm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = edmPrecond((x) => tf.mul(x, 0.1));
 * const rng = new Rng(1), y = tf.ones([4, 2]);
 * const sigma = tf.tensor1d(drawEdmSigmas(4, rng)); // drawn outside the loss
 * const noise = rngNoise(rng).randn([4, 2]);
 * const value = edmLoss()(denoiser, y, { sigma, noise });
 * ```
 */
export function edmLoss(options: EdmLossOptions = {}): DenoisingLoss {
  const { sigmaData = 0.5 } = options;
  if (!(sigmaData > 0) || !Number.isFinite(sigmaData)) {
    throw new RangeError(`sigmaData must be a positive number, got ${sigmaData}`);
  }
  const sd2 = sigmaData * sigmaData;
  return weightedLoss({
    weight: (sigma) => {
      const s2 = tf.square(sigma);
      return tf.div(tf.add(s2, sd2), tf.mul(s2, sd2));
    },
  });
}

function checkCount(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`the number of draws must be a positive integer, got ${n}`);
  }
}
