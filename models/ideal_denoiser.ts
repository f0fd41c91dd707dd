/**
 * Ideal (exact) denoisers for data whose noisy marginals are known in closed form, used to check
 * samplers against exact answers (DESIGN.md "Checking numerics"; EDM, Karras et al. 2022, Appendix B:
 * the minimizer of the denoising loss eq. 2 for a finite training set, shown in Figure 1b).
 *
 * - A finite point set {y_i} with equal weights:
 *   `D(x; sigma) = sum_i softmax_i(-|x - y_i|^2 / (2 sigma^2)) y_i`.
 * - Gaussian data N(mu, s^2 I) (or a diagonal covariance):
 *   `D(x; sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2)`.
 *
 * Both follow the {@linkcode Denoiser} contract: x = y + sigma n in unscaled space, sigma is a
 * [N] tensor (one level per image), inputs are never disposed, the result is the caller's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";

/**
 * The ideal denoiser of data drawn uniformly from a finite set of points (EDM Appendix B, Figure 1b).
 *
 * Uses `-|x - y|^2 / 2 = x.y - |y|^2 / 2 - |x|^2 / 2` and drops the last term, which is the same
 * for every point and so cancels in the softmax: one matrix product per call.
 *
 * @param points The data points, shape [M, ...featureShape] (e.g. [M, 2] or [M, H, W, C]).
 *   Kept by reference, not copied: the caller owns it and keeps it alive while the denoiser is used.
 * @returns A denoiser for x of shape [N, ...featureShape] and sigma > 0 of shape [N].
 * @throws {RangeError} When `points` has no points, or x's features do not match them.
 * @example Denoise toward two points
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { idealPointSetDenoiser } from "./ideal_denoiser.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const points = tf.tensor2d([[-1, 0], [1, 0]]);
 * const denoise = idealPointSetDenoiser(points);
 * const d = denoise(tf.tensor2d([[0.9, 0.1]]), tf.tensor1d([0.1])); // ~[[1, 0]]
 * ```
 */
export function idealPointSetDenoiser(points: tf.Tensor): Denoiser {
  if (points.rank < 2 || points.shape[0] < 1) {
    throw new RangeError(
      `points must have shape [M, ...featureShape] with M >= 1, got [${points.shape}]`,
    );
  }
  const numPoints = points.shape[0];
  const featureSize = points.size / numPoints;
  return (x: tf.Tensor, sigma: tf.Tensor1D): tf.Tensor => {
    const n = x.shape[0];
    if (x.size !== n * featureSize) {
      throw new RangeError(
        `x has shape [${x.shape}] but the points have ${featureSize} features each ` +
          `(shape [${points.shape}]); pass x shaped [N, ${points.shape.slice(1)}]`,
      );
    }
    return tf.tidy(() => {
      const y = tf.reshape(points, [numPoints, featureSize]);
      const xFlat = tf.reshape(x, [n, featureSize]);
      const halfNormSq = tf.mul(tf.sum(tf.square(y), 1), 0.5);
      const invVariance = tf.reshape(tf.reciprocal(tf.square(sigma)), [n, 1]);
      const logits = tf.mul(tf.sub(tf.matMul(xFlat, y, false, true), halfNormSq), invVariance);
      return tf.reshape(tf.matMul(tf.softmax(logits), y), x.shape);
    });
  };
}

/** Options of {@linkcode idealGaussianDenoiser}. */
export interface IdealGaussianOptions {
  /** Data mean mu: one number for every feature, or one per feature. @default 0 */
  mean?: number | ArrayLike<number>;
  /** Data standard deviation s (> 0): one number, or one per feature (diagonal covariance). @default 1 */
  std?: number | ArrayLike<number>;
}

/**
 * The ideal denoiser of Gaussian data N(mu, diag(s^2)): the posterior mean
 * `E[y | x] = (s^2 x + sigma^2 mu) / (s^2 + sigma^2)`.
 *
 * @param options The data mean and standard deviation.
 * @returns A denoiser for x of shape [N, ...featureShape] and sigma >= 0 of shape [N].
 * @throws {RangeError} For a non-positive std, or per-feature arrays whose length does not
 *   match x's features (at call time).
 * @example Standard normal data
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { idealGaussianDenoiser } from "./ideal_denoiser.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoise = idealGaussianDenoiser({ mean: [1, -2], std: [0.5, 2] });
 * const d = denoise(tf.tensor2d([[3, 3]]), tf.tensor1d([1]));
 * ```
 */
export function idealGaussianDenoiser(options: IdealGaussianOptions = {}): Denoiser {
  const { mean = 0, std = 1 } = options;
  const meanArr = Float32Array.from(typeof mean === "number" ? [mean] : Array.from(mean));
  const stdArr = Float32Array.from(typeof std === "number" ? [std] : Array.from(std));
  stdArr.forEach((s, i) => {
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(`std[${i}] = ${s}: the data standard deviation must be finite and > 0`);
    }
  });
  meanArr.forEach((m, i) => {
    if (!Number.isFinite(m)) throw new RangeError(`mean[${i}] = ${m} must be finite`);
  });
  const varArr = stdArr.map((s) => s * s);
  return (x: tf.Tensor, sigma: tf.Tensor1D): tf.Tensor => {
    const n = x.shape[0];
    const featureSize = x.size / n;
    for (const [name, arr] of [["mean", meanArr], ["std", stdArr]] as const) {
      if (arr.length !== 1 && arr.length !== featureSize) {
        throw new RangeError(
          `${name} has ${arr.length} entries but x has ${featureSize} features per image; ` +
            `give one number or ${featureSize} entries`,
        );
      }
    }
    return tf.tidy(() => {
      const mu = tf.tensor2d(meanArr, [1, meanArr.length]);
      const dataVar = tf.tensor2d(varArr, [1, varArr.length]);
      const noiseVar = tf.reshape(tf.square(sigma), [n, 1]);
      // E[y | x] = mu + s^2 / (s^2 + sigma^2) (x - mu): exact at sigma = 0 too.
      const gain = tf.div(dataVar, tf.add(dataVar, noiseVar));
      const xFlat = tf.reshape(x, [n, featureSize]);
      return tf.reshape(tf.add(mu, tf.mul(gain, tf.sub(xFlat, mu))), x.shape);
    });
  };
}
