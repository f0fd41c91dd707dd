/**
 * The VP training loss of EDM Table 1 ("VP" column; Song et al.'s continuous DDPM++ loss):
 * `t ~ U(epsilon_t, 1)`, `sigma = sigma_vp(t)`, weighting `lambda(sigma) = 1 / sigma^2`
 * (which with `c_out = -sigma` is the unweighted epsilon-prediction loss).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import { vpSchedule, type VpScheduleOptions } from "../schedules/vp.ts";
import { type DenoisingLoss, weightedLoss } from "./denoising_loss.ts";

/** Options of {@linkcode drawVpSigmas}: the VP schedule (beta_d, beta_min, epsilon_t). */
export type VpLossOptions = VpScheduleOptions;

/**
 * Draws n noise levels `sigma_vp(t)` with `t ~ U(epsT, 1)` from `rng`.
 *
 * @param n Number of levels (the batch size).
 * @param rng The generator; advanced by n uniform draws.
 * @param options The VP schedule's parameters.
 * @returns A new Float32Array of n levels in [sigma(epsT), sigma(1)].
 * @example
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { drawVpSigmas } from "./loss_vp.ts";
 * const sigmas = drawVpSigmas(32, new Rng(0));
 * ```
 */
export function drawVpSigmas(n: number, rng: Rng, options: VpLossOptions = {}): Float32Array {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`the number of draws must be a positive integer, got ${n}`);
  }
  const schedule = vpSchedule(options);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = schedule.sigma(schedule.epsT + (1 - schedule.epsT) * rng.uniform());
  }
  return out;
}

/**
 * The VP loss: weighting `1 / sigma^2`. Draw its sigmas with {@linkcode drawVpSigmas}.
 *
 * @returns A {@linkcode DenoisingLoss}.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { vpPrecond } from "../models/precond_vp.ts";
 * import { drawVpSigmas, vpLoss } from "./loss_vp.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const rng = new Rng(1), y = tf.ones([4, 2]);
 * const draws = { sigma: tf.tensor1d(drawVpSigmas(4, rng)), noise: rngNoise(rng).randn([4, 2]) };
 * const value = vpLoss()(vpPrecond((x) => tf.zerosLike(x)), y, draws);
 * ```
 */
export function vpLoss(): DenoisingLoss {
  return weightedLoss({ weight: (sigma) => tf.reciprocal(tf.square(sigma)) });
}
