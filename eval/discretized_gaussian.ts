/**
 * DDPM's discretized Gaussian decoder (Ho et al. 2020, eq. 13): the probability that
 * N(mean, std^2) puts on the bin of an 8-bit value x in [-1, 1],
 * `P(x) = Phi((delta_+(x) - mean) / std) - Phi((delta_-(x) - mean) / std)`, with bin edges
 * `x -+ 1/255` and the edge bins open to -infinity (x = -1) and +infinity (x = 1). Also the
 * continuous Gaussian log-density, the decoder's counterpart for continuous data.
 *
 * Numerics, in float32 tensors (so it can be a training loss):
 * - Bins are indexed by `k = round((x + 1) 127.5)` and their edges computed from k, so
 *   neighbouring bins share bitwise-equal edges and the 256 probabilities sum to 1 (the
 *   differences telescope).
 * - A bin above the mean uses upper tails, `P = Q(a) - Q(b)` with `Q(z) = erfc(z / sqrt 2) / 2`;
 *   a bin below it is mirrored. Tail values stay accurate relative to themselves, where
 *   `Phi(b) - Phi(a)` would round both to 1.
 * - Where that difference falls below 1e-10 (far tails) it switches to the log form
 *   `log Q(a) + log(-expm1(log Q(b) - log Q(a)))`, finite for any distance from the mean.
 * - erfc is the Chebyshev fit of Numerical Recipes (`erfcc`), fractional error below 1.2e-7 for
 *   every argument, written in log form: `log erfc(x) = log(t) - x^2 + p(t)`, `t = 1 / (1 + x/2)`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Options of {@linkcode discretizedGaussianLogLikelihood} and {@linkcode gaussianLogLikelihood}. */
export interface GaussianLikelihoodOptions {
  /** Mean of the Gaussian, shaped like x (or broadcastable to it); never disposed. */
  mean: tf.Tensor;
  /** Standard deviation (> 0): one number, or a tensor broadcastable to x; never disposed. */
  std: number | tf.Tensor;
}

// Coefficients of the Chebyshev fit to log(erfc(x) / t) (Numerical Recipes, erfcc).
const ERFC_COEFFS = [
  -1.26551223,
  1.00002368,
  0.37409196,
  0.09678418,
  -0.18628806,
  0.27886807,
  -1.13520398,
  1.48851587,
  -0.82215223,
  0.17087277,
];

// log erfc(x) for x >= 0.
function logErfc(x: tf.Tensor): tf.Tensor {
  const t = tf.reciprocal(tf.add(tf.mul(x, 0.5), 1));
  let poly: tf.Tensor = tf.fill(t.shape, ERFC_COEFFS[ERFC_COEFFS.length - 1]);
  for (let i = ERFC_COEFFS.length - 2; i >= 0; i--) poly = tf.add(tf.mul(poly, t), ERFC_COEFFS[i]);
  return tf.add(tf.sub(tf.log(t), tf.square(x)), poly);
}

/**
 * log Q(z) = log P(N(0, 1) > z) for every z, accurate in both tails. Call inside a tidy.
 *
 * @param z Standardized values.
 * @returns log Q(z), same shape.
 * @example log Q(0) = log 1/2
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { logUpperTail } from "./discretized_gaussian.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const v = tf.tidy(() => logUpperTail(tf.tensor1d([0, 10, -10]))); // [-0.693, -53.23, ~0]
 * ```
 */
export function logUpperTail(z: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const logQAbs = tf.add(logErfc(tf.mul(tf.abs(z), Math.SQRT1_2)), Math.log(0.5));
    // Q(-|z|) = 1 - Q(|z|); Q(|z|) <= 1/2, so the log1p is safe and both branches are finite.
    return tf.where(positive(z), logQAbs, tf.log1p(tf.neg(tf.exp(logQAbs))));
  });
}

/**
 * Log-probability (nats) of each value of x under DDPM's discretized Gaussian decoder (eq. 13).
 * Values are binned to the nearest of the 256 levels `2k/255 - 1`; values outside [-1, 1]
 * fall into the edge bins.
 *
 * @param x Data in [-1, 1] on the 8-bit grid, any shape; never disposed.
 * @param options The Gaussian's mean and standard deviation.
 * @returns Per-element log-probabilities, shaped like x (a new tensor owned by the caller).
 * @throws {RangeError} For a non-positive numeric std.
 * @example The bins of a value at the mean take most of the mass when std is small
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { discretizedGaussianLogLikelihood } from "./discretized_gaussian.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x = tf.tensor1d([-1, 0.2 - 0.2 % (2 / 255), 1]);
 * const logP = discretizedGaussianLogLikelihood(x, { mean: x, std: 0.001 }); // ~[0, 0, 0]
 * ```
 */
export function discretizedGaussianLogLikelihood(
  x: tf.Tensor,
  options: GaussianLikelihoodOptions,
): tf.Tensor {
  const { mean, std } = options;
  checkStd(std);
  return tf.tidy(() => {
    const k = tf.clipByValue(tf.round(tf.mul(tf.add(x, 1), 127.5)), 0, 255);
    const twoK = tf.mul(k, 2);
    const lower = tf.sub(tf.div(tf.sub(twoK, 1), 255), 1);
    const upper = tf.sub(tf.div(tf.add(twoK, 1), 255), 1);
    let zLo = tf.div(tf.sub(lower, mean), std);
    let zHi = tf.div(tf.sub(upper, mean), std);
    // Open edge bins: an edge 40 standard deviations beyond the other one is -+infinity here.
    zLo = tf.where(tf.equal(k, 0), tf.sub(tf.minimum(zHi, -40), 40), zLo);
    zHi = tf.where(tf.equal(k, 255), tf.add(tf.maximum(zLo, 40), 40), zHi);
    // Mirror bins below the mean so that a < b are upper-tail arguments.
    const above = positive(tf.add(zLo, zHi));
    const a = tf.where(above, zLo, tf.neg(zHi));
    const b = tf.where(above, zHi, tf.neg(zLo));
    const logQa = logUpperTail(a), logQb = logUpperTail(b);
    const diff = tf.sub(tf.exp(logQa), tf.exp(logQb));
    const viaDiff = tf.log(tf.maximum(diff, 1e-30));
    const viaLog = tf.add(
      logQa,
      tf.log(tf.maximum(tf.neg(tf.expm1(tf.minimum(tf.sub(logQb, logQa), 0))), 1e-30)),
    );
    return tf.where(positive(tf.sub(diff, 1e-10)), viaDiff, viaLog);
  });
}

/**
 * Log-density (nats) of each value of x under N(mean, std^2): the continuous decoder.
 *
 * @param x Values, any shape; never disposed.
 * @param options The Gaussian's mean and standard deviation.
 * @returns Per-element log-densities, shaped like x (a new tensor owned by the caller).
 * @throws {RangeError} For a non-positive numeric std.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { gaussianLogLikelihood } from "./discretized_gaussian.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const v = gaussianLogLikelihood(tf.zeros([1]), { mean: tf.zeros([1]), std: 1 }); // -0.919
 * ```
 */
export function gaussianLogLikelihood(
  x: tf.Tensor,
  options: GaussianLikelihoodOptions,
): tf.Tensor {
  const { mean, std } = options;
  checkStd(std);
  return tf.tidy(() => {
    const z = tf.div(tf.sub(x, mean), std);
    const logStd = typeof std === "number" ? Math.log(std) : tf.log(std);
    return tf.sub(tf.sub(tf.mul(tf.square(z), -0.5), 0.5 * Math.log(2 * Math.PI)), logStd);
  });
}

// x > 0 as a condition for tf.where. Comparison ops have no gradient in tfjs, so a condition
// computed from trainable values would break backprop; Step's gradient is zero.
function positive(x: tf.Tensor): tf.Tensor {
  return tf.cast(tf.step(x), "bool");
}

function checkStd(std: number | tf.Tensor): void {
  if (typeof std === "number" && !(std > 0 && Number.isFinite(std))) {
    throw new RangeError(`std must be a finite number > 0, got ${std}`);
  }
}
