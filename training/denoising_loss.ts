/**
 * The weighted denoising loss shared by EDM's training objectives (EDM eq. 2 and 8, Table 1
 * "Training"): `E_sigma E_{y,n} lambda(sigma) ||D(y + sigma n; sigma) - y||^2`.
 *
 * Design: randomness stays outside the loss. The caller draws the per-image noise levels (with a
 * column's `draw*Sigmas(n, rng)`) and the noise `n` (from a `NoiseSource`), and passes them in as
 * {@linkcode LossDraws}; the loss itself is a pure, synchronous tf computation, so it runs inside
 * `tf.variableGrads` and gives the same value for the same draws.
 *
 * Reduction as EDM's training loop (and shared/bench/unet-bench.md): per image
 * `lambda(sigma_i) * sum over pixels and channels of (D - y)^2`, then the mean over the batch.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Conditioning, Denoiser } from "../core/types.ts";

/** The random inputs of one loss evaluation, drawn outside the loss. Not disposed by the loss. */
export interface LossDraws {
  /** Per-image noise levels, shape [N]. */
  sigma: tf.Tensor1D;
  /** Standard normal noise shaped like the batch `y`. */
  noise: tf.Tensor;
  /** Per-image factors, shape [N], multiplying lambda(sigma) (score-SDE likelihood weights). @default undefined */
  weight?: tf.Tensor1D;
}

/**
 * A denoising loss: the batch mean of `lambda(sigma_i) ||D(y_i + sigma_i n_i; sigma_i) - y_i||^2`.
 * Returns a new scalar owned by the caller; never disposes its inputs.
 */
export type DenoisingLoss = (
  denoiser: Denoiser,
  y: tf.Tensor,
  draws: LossDraws,
  cond?: Conditioning,
  opts?: ApplyOptions,
) => tf.Scalar;

/** Options of {@linkcode weightedLoss}. */
export interface WeightedLossOptions {
  /** The loss weighting lambda(sigma) on a [N] tensor of noise levels, returning [N]. */
  weight: (sigma: tf.Tensor1D) => tf.Tensor1D;
}

/**
 * A denoising loss with a given weighting lambda(sigma); the Table 1 losses are instances.
 *
 * @param options The weighting.
 * @returns A {@linkcode DenoisingLoss}; it throws RangeError when the draws' shapes do not fit y.
 * @example Unweighted loss
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { weightedLoss } from "./denoising_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const loss = weightedLoss({ weight: (s) => tf.onesLike(s) });
 * const y = tf.ones([2, 3]);
 * const value = loss((x) => tf.zerosLike(x), y, {
 *   sigma: tf.tensor1d([1, 2]),
 *   noise: tf.zeros([2, 3]),
 * }); // 3
 * ```
 */
export function weightedLoss(options: WeightedLossOptions): DenoisingLoss {
  const { weight } = options;
  if (typeof weight !== "function") {
    throw new TypeError(`weight must be a function of sigma, got ${typeof weight}`);
  }
  return (denoiser, y, draws, cond, opts) => {
    const { sigma, noise } = draws;
    if (sigma.rank !== 1 || y.rank < 2 || sigma.shape[0] !== y.shape[0]) {
      throw new RangeError(
        `draws.sigma must have shape [N] with N = y.shape[0]; got [${sigma.shape}] for y ` +
          `[${y.shape}]`,
      );
    }
    if (!tf.util.arraysEqual(noise.shape, y.shape)) {
      throw new RangeError(
        `draws.noise must have the shape of y [${y.shape}], got [${noise.shape}]`,
      );
    }
    if (draws.weight && !tf.util.arraysEqual(draws.weight.shape, sigma.shape)) {
      throw new RangeError(
        `draws.weight must have the shape of draws.sigma [${sigma.shape}], got [${draws.weight.shape}]`,
      );
    }
    return tf.tidy(() => {
      const perImage = [y.shape[0], ...y.shape.slice(1).map(() => 1)];
      const x = tf.add(y, tf.mul(noise, tf.reshape(sigma, perImage)));
      const d = denoiser(x, sigma, cond, opts);
      const axes = y.shape.slice(1).map((_, i) => i + 1);
      const perImageError = tf.sum(tf.square(tf.sub(d, y)), axes);
      const w = draws.weight ? tf.mul(weight(sigma), draws.weight) : weight(sigma);
      return tf.mean(tf.mul(w, perImageError)) as tf.Scalar;
    });
  };
}
