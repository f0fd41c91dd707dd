/**
 * The VE training loss of EDM Table 1 ("VE" column; Song et al.'s NCSN++ loss):
 * `ln(sigma) ~ U(ln sigma_min, ln sigma_max)`, weighting `lambda(sigma) = 1 / sigma^2`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { VeScheduleOptions } from "../schedules/ve.ts";
import { type DenoisingLoss, weightedLoss } from "./denoising_loss.ts";

/** Options of {@linkcode drawVeSigmas}: the VE range (sigma_min 0.02, sigma_max 100). */
export type VeLossOptions = VeScheduleOptions;

/**
 * Draws n noise levels log-uniform in [sigmaMin, sigmaMax] from `rng`.
 *
 * @param n Number of levels (the batch size).
 * @param rng The generator; advanced by n uniform draws.
 * @param options sigma_min and sigma_max.
 * @returns A new Float32Array of n levels.
 * @throws {RangeError} For n not a positive integer or not 0 < sigmaMin < sigmaMax.
 * @example
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { drawVeSigmas } from "./loss_ve.ts";
 * const sigmas = drawVeSigmas(32, new Rng(0));
 * ```
 */
export function drawVeSigmas(n: number, rng: Rng, options: VeLossOptions = {}): Float32Array {
  const { sigmaMin = 0.02, sigmaMax = 100 } = options;
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`the number of draws must be a positive integer, got ${n}`);
  }
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `VE needs 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  const lo = Math.log(sigmaMin), hi = Math.log(sigmaMax);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.exp(lo + (hi - lo) * rng.uniform());
  return out;
}

/**
 * The VE loss: weighting `1 / sigma^2`. Draw its sigmas with {@linkcode drawVeSigmas}.
 *
 * @returns A {@linkcode DenoisingLoss}.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { vePrecond } from "../models/precond_ve.ts";
 * import { drawVeSigmas, veLoss } from "./loss_ve.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const rng = new Rng(1), y = tf.ones([4, 2]);
 * const draws = { sigma: tf.tensor1d(drawVeSigmas(4, rng)), noise: rngNoise(rng).randn([4, 2]) };
 * const value = veLoss()(vePrecond((x) => tf.zerosLike(x)), y, draws);
 * ```
 */
export function veLoss(): DenoisingLoss {
  return weightedLoss({ weight: (sigma) => tf.reciprocal(tf.square(sigma)) });
}
