/**
 * The information-theoretic view of signal-to-noise diffusion (S2N paper, Section 3.3,
 * Theorem 6): the minimum mean square error `mmse(lambda) = E ||x - E[x | z_lambda]||^2` of
 * recovering the data from `z_lambda = alpha~ x + sigma~ eps`, estimated with a denoiser, and the
 * mutual information `I(x; z_lambda)` obtained by integrating it over lambda. Natural units
 * (nats); mmse in squared data units, summed over the D features of one example.
 *
 * The relation we integrate is the I-MMSE identity (Guo, Shamai & Verdu 2005), in lambda:
 * `dI/dlambda = 1/2 (d snr / d lambda) mmse = 1/2 exp(lambda) mmse(lambda)` (snr = exp(lambda)),
 * which is `1/2 mmse_eps(lambda)` for the noise-prediction error
 * `mmse_eps = E ||eps - eps_hat||^2 = exp(lambda) mmse`. It is Theorem 6 (ii)'s second term, since
 * `[alpha~' sigma~ - alpha~ sigma~'] alpha~ / sigma~^3 = 1/2 d(alpha~^2 / sigma~^2) / d lambda`.
 * Theorem 6 as extracted also has a first term `-D sigma~' / (2 sigma~)`; it does not vanish
 * for VE-like `alpha~ = 1` (it is D/4 there), contradicts the Gaussian closed form
 * `I = D/2 log(1 + exp(lambda) s^2)` and would make I grow without bound as lambda -> -infinity,
 * so we leave it out. I depends on lambda only (z / alpha~ is an invertible function of z), so the
 * curve is the same for every schedule. With alpha~ = sqrt(lambda), sigma~ = 1 the identity is
 * Kong et al. (2023)'s.
 *
 * The integral starts at the first lambda of the grid with the small-snr tail
 * `I(lambda_0) ~ 1/2 exp(lambda_0) mmse(lambda_0)` (mmse is nearly the data variance there) and
 * integrates `1/2 mmse dsnr` exactly between grid points with 1/mmse interpolated linearly in
 * snr. That is exact for isotropic Gaussian data and at both ends for any data with a density
 * (mmse constant at low SNR, ~ D / snr at high SNR); the trapezoid rule in lambda would be 2% off
 * at step 0.5.
 *
 * Closed forms for checking: Gaussian data N(mu, s^2 I_D) has `mmse = D s^2 / (1 + e^lambda s^2)`
 * and `I = D/2 log(1 + e^lambda s^2)`. For data uniform on M points the posterior over points is
 * exact, so `I = log M - E_z[H(p(i | z))]` is estimated by Monte Carlo with no denoiser and no
 * integral ({@linkcode pointSetMutualInformation}); it is an independent check of the integrated
 * curve and is bounded by log M.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { linePlotSvg } from "../data/svg_plot.ts";

/** Options of {@linkcode estimateMmse} and {@linkcode informationCurve}. */
export interface MmseOptions {
  /** The log-SNR values lambda, increasing. */
  logSnrs: ArrayLike<number>;
  /**
   * Source of eps; it must accept any batch size, e.g. `rngNoise(new Rng(seed))`. The same eps is
   * reused at every lambda (common random numbers: smoother curves, still unbiased at each).
   */
  noise: NoiseSource;
  /** Noise draws per data example. @default 1 */
  repeats?: number;
  /** Examples per denoiser call. @default 512 */
  batchSize?: number;
  /** Conditioning for the whole data set (rows must match the data). @default undefined */
  cond?: Conditioning;
}

function checkLogSnrs(logSnrs: ArrayLike<number>): void {
  if (logSnrs === undefined || logSnrs.length < 1) {
    throw new RangeError("logSnrs needs at least one value, e.g. [-10, ..., 10]");
  }
  for (let i = 0; i < logSnrs.length; i++) {
    if (!Number.isFinite(logSnrs[i]) || (i > 0 && !(logSnrs[i] > logSnrs[i - 1]))) {
      throw new RangeError(`logSnrs[${i}] = ${logSnrs[i]}: lambdas must be finite and increasing`);
    }
  }
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
}

/**
 * Estimates `mmse(lambda) = E ||x - D(x + exp(-lambda/2) eps; exp(-lambda/2))||^2` (summed over
 * features, averaged over examples and noise draws) for each lambda. With the ideal denoiser of
 * the data this is the MMSE of Theorem 6; with a trained one, an upper bound.
 *
 * @param denoiser The denoiser D(x; sigma) in EDM's unscaled space.
 * @param data Examples [M, ...features]; not disposed.
 * @param options lambdas, noise, repeats, batch size, conditioning.
 * @returns mmse per lambda (Float64Array).
 * @throws {RangeError} For bad lambdas, repeats or batch size, or empty data.
 * @example Gaussian data: mmse(0) = D s^2 / (1 + s^2)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { Rng } from "../core/rng.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { estimateMmse } from "./mmse.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const data = tf.randomNormal([256, 2]);
 * const mmse = await estimateMmse(idealGaussianDenoiser(), data, {
 *   logSnrs: [0],
 *   noise: rngNoise(new Rng(0)),
 * }); // ~ [1]
 * ```
 */
export async function estimateMmse(
  denoiser: Denoiser,
  data: tf.Tensor,
  options: MmseOptions,
): Promise<Float64Array> {
  const { logSnrs, noise, repeats = 1, batchSize = 512, cond } = options;
  checkLogSnrs(logSnrs);
  checkCount("repeats", repeats);
  checkCount("batchSize", batchSize);
  const count = data.shape[0];
  if (!(count >= 1)) throw new RangeError(`data needs at least one example, got [${data.shape}]`);
  const sums = new Float64Array(logSnrs.length);
  for (let r = 0; r < repeats; r++) {
    for (let start = 0; start < count; start += batchSize) {
      const size = Math.min(batchSize, count - start);
      const errors = tf.tidy(() => {
        const x = tf.slice(data, start, size);
        const eps = noise.randn(x.shape);
        const batchCond = cond && sliceCond(cond, start, size);
        return Array.from(logSnrs, (lambda) => {
          const sigma = Math.exp(-0.5 * lambda);
          const noisy = tf.add(x, tf.mul(eps, sigma));
          const denoised = denoiser(noisy, tf.fill([size], sigma) as tf.Tensor1D, batchCond);
          return tf.sum(tf.square(tf.sub(x, denoised)));
        });
      });
      for (const [k, e] of errors.entries()) sums[k] += (await e.data())[0];
      tf.dispose(errors);
    }
  }
  return sums.map((s) => s / (count * repeats));
}

function sliceCond(cond: Conditioning, start: number, size: number): Conditioning {
  return {
    classLabels: cond.classLabels && tf.slice(cond.classLabels, start, size),
    augmentLabels: cond.augmentLabels && tf.slice(cond.augmentLabels, start, size),
  };
}

/**
 * Integrates `dI/dlambda = 1/2 exp(lambda) mmse(lambda)` over a lambda grid (nats), starting
 * from the tail `1/2 exp(lambda_0) mmse(lambda_0)`, with 1/mmse interpolated linearly in
 * snr = exp(lambda) between grid points (mmse itself where it is not positive).
 *
 * @param logSnrs Increasing lambdas.
 * @param mmse mmse at each lambda.
 * @returns I(x; z_lambda) at each lambda.
 * @throws {RangeError} For mismatched lengths or bad lambdas.
 * @example Constant mmse C integrates to C e^lambda / 2
 * ```ts
 * import { mutualInformationFromMmse } from "./mmse.ts";
 * const lambdas = Array.from({ length: 101 }, (_, i) => -10 + i * 0.1);
 * const info = mutualInformationFromMmse(lambdas, lambdas.map(() => 2)); // ~ e^lambda
 * ```
 */
export function mutualInformationFromMmse(
  logSnrs: ArrayLike<number>,
  mmse: ArrayLike<number>,
): Float64Array {
  checkLogSnrs(logSnrs);
  if (mmse.length !== logSnrs.length) {
    throw new RangeError(`need one mmse per lambda, got ${mmse.length} and ${logSnrs.length}`);
  }
  const out = new Float64Array(logSnrs.length);
  out[0] = 0.5 * Math.exp(logSnrs[0]) * mmse[0];
  for (let k = 1; k < out.length; k++) {
    out[k] = out[k - 1] + intervalIntegral(logSnrs[k - 1], logSnrs[k], mmse[k - 1], mmse[k]);
  }
  return out;
}

// int_a^b 1/2 e^lambda mmse dlambda = int 1/2 mmse dsnr with 1/mmse interpolated linearly in
// snr = e^lambda: exact for isotropic Gaussian data (1/mmse = (1 + snr s^2) / (D s^2)), and for
// any data at both ends (mmse ~ constant at low SNR, ~ D / snr at high SNR for data with a
// density). The result is 1/2 dsnr m_a m_b / L(m_a, m_b), L the logarithmic mean. Where an end
// is not positive (a point set at high SNR), the trapezoid rule in snr.
function intervalIntegral(a: number, b: number, ma: number, mb: number): number {
  const dSnr = Math.exp(a) * Math.expm1(b - a);
  if (!(ma > 0 && mb > 0)) return 0.25 * dSnr * (ma + mb);
  const logMean = Math.abs(ma - mb) <= 1e-9 * ma ? 0.5 * (ma + mb) : (ma - mb) / Math.log(ma / mb);
  return 0.5 * dSnr * ma * mb / logMean;
}

/** An mmse and mutual-information curve over lambda. */
export interface InformationCurve {
  /** The lambdas. */
  logSnr: Float64Array;
  /** mmse(lambda), squared data units per example. */
  mmse: Float64Array;
  /** I(x; z_lambda) in nats. */
  mutualInformation: Float64Array;
  /** Number of features D of one example. */
  dimension: number;
}

/**
 * The mmse curve of a denoiser on data and the mutual information it implies.
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param data Examples [M, ...features]; not disposed.
 * @param options As {@linkcode estimateMmse}.
 * @returns The curve.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { Rng } from "../core/rng.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { informationCurve } from "./mmse.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const data = tf.randomNormal([256, 2]);
 * const logSnrs = Array.from({ length: 41 }, (_, i) => -10 + i * 0.5);
 * const curve = await informationCurve(idealGaussianDenoiser(), data, {
 *   logSnrs,
 *   noise: rngNoise(new Rng(0)),
 * });
 * ```
 */
export async function informationCurve(
  denoiser: Denoiser,
  data: tf.Tensor,
  options: MmseOptions,
): Promise<InformationCurve> {
  const mmse = await estimateMmse(denoiser, data, options);
  return {
    logSnr: Float64Array.from(options.logSnrs),
    mmse,
    mutualInformation: mutualInformationFromMmse(options.logSnrs, mmse),
    dimension: data.size / data.shape[0],
  };
}

/** Gaussian data N(mu, s^2 I_D). */
export interface GaussianDataOptions {
  /** Number of features D. */
  dimension: number;
  /** Per-feature variance s^2 > 0. @default 1 */
  variance?: number;
}

function checkGaussian(options: GaussianDataOptions): Required<GaussianDataOptions> {
  const { dimension, variance = 1 } = options;
  checkCount("dimension", dimension);
  if (!(variance > 0)) throw new RangeError(`variance must be > 0, got ${variance}`);
  return { dimension, variance };
}

/**
 * mmse of Gaussian data: `D s^2 / (1 + exp(lambda) s^2)`.
 *
 * @example
 * ```ts
 * import { gaussianMmse } from "./mmse.ts";
 * console.assert(gaussianMmse(0, { dimension: 2 }) === 1);
 * ```
 */
export function gaussianMmse(logSnr: number, options: GaussianDataOptions): number {
  const { dimension, variance } = checkGaussian(options);
  return dimension * variance / (1 + Math.exp(logSnr) * variance);
}

/**
 * Mutual information of Gaussian data in nats: `D/2 log(1 + exp(lambda) s^2)`.
 *
 * @example
 * ```ts
 * import { gaussianMutualInformation } from "./mmse.ts";
 * const info = gaussianMutualInformation(0, { dimension: 2 }); // log 2
 * ```
 */
export function gaussianMutualInformation(logSnr: number, options: GaussianDataOptions): number {
  const { dimension, variance } = checkGaussian(options);
  return 0.5 * dimension * Math.log1p(Math.exp(logSnr) * variance);
}

/** Options of {@linkcode pointSetMutualInformation}. */
export interface PointSetInformationOptions {
  /** The lambdas. */
  logSnrs: ArrayLike<number>;
  /** Source of eps; any batch size (e.g. `rngNoise`). */
  noise: NoiseSource;
  /** Noise draws per point. @default 64 */
  repeats?: number;
}

/**
 * Monte Carlo mutual information of data uniform on M points, from the exact posterior:
 * `I = log M - E_{i, eps}[H(p(. | z = y_i + exp(-lambda/2) eps))]`, with
 * `p(j | z) = softmax_j(-|z - y_j|^2 / (2 sigma^2))`. Nats; between 0 and log M.
 *
 * @param points The points [M, ...features]; not disposed.
 * @param options lambdas, noise and draws per point.
 * @returns I per lambda.
 * @throws {RangeError} For bad lambdas or repeats.
 * @example Two far-apart points carry log 2 nats at high SNR
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { Rng } from "../core/rng.ts";
 * import { pointSetMutualInformation } from "./mmse.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const info = await pointSetMutualInformation(tf.tensor2d([[-1, 0], [1, 0]]), {
 *   logSnrs: [8],
 *   noise: rngNoise(new Rng(0)),
 * }); // ~ [0.693]
 * ```
 */
export async function pointSetMutualInformation(
  points: tf.Tensor,
  options: PointSetInformationOptions,
): Promise<Float64Array> {
  const { logSnrs, noise, repeats = 64 } = options;
  checkLogSnrs(logSnrs);
  checkCount("repeats", repeats);
  const m = points.shape[0];
  if (!(m >= 1)) throw new RangeError(`points needs at least one point, got [${points.shape}]`);
  const features = points.size / m;
  const entropy = new Float64Array(logSnrs.length);
  for (let r = 0; r < repeats; r++) {
    const sums = tf.tidy(() => {
      const y = tf.reshape(points, [m, features]);
      const eps = tf.reshape(noise.randn(points.shape), [m, features]);
      const halfNormSq = tf.mul(tf.sum(tf.square(y), 1), 0.5);
      return Array.from(logSnrs, (lambda) => {
        const sigma = Math.exp(-0.5 * lambda);
        const z = tf.add(y, tf.mul(eps, sigma));
        // -|z - y_j|^2 / (2 sigma^2) up to a per-row constant, which softmax ignores.
        const logits = tf.div(tf.sub(tf.matMul(z, y, false, true), halfNormSq), sigma * sigma);
        const logW = tf.logSoftmax(logits);
        return tf.neg(tf.sum(tf.mul(tf.exp(logW), logW)));
      });
    });
    for (const [k, h] of sums.entries()) entropy[k] += (await h.data())[0];
    tf.dispose(sums);
  }
  return entropy.map((h) => Math.log(m) - h / (m * repeats));
}

/** Options of {@linkcode informationPlotSvg}. */
export interface InformationPlotOptions {
  /** Closed-form or reference curves, drawn beside the estimate. @default undefined */
  reference?: { mmse?: ArrayLike<number>; mutualInformation?: ArrayLike<number>; label?: string };
  /** Prefix of both titles. @default "" */
  title?: string;
}

/**
 * Two SVG line plots: mmse(lambda) (log scale) and I(x; z_lambda) in nats.
 *
 * @param curve The estimated curve.
 * @param options A reference curve (same lambdas) and a title.
 * @returns `{ mmse, mutualInformation }` SVG documents.
 * @throws {RangeError} When a reference has the wrong length.
 * @example
 * ```ts
 * import { gaussianMmse, informationPlotSvg, mutualInformationFromMmse } from "./mmse.ts";
 * const logSnr = Float64Array.from({ length: 41 }, (_, i) => -10 + i * 0.5);
 * const mmse = logSnr.map((l) => gaussianMmse(l, { dimension: 2 }));
 * const curve = { logSnr, mmse, mutualInformation: mutualInformationFromMmse(logSnr, mmse), dimension: 2 };
 * const svg = informationPlotSvg(curve, { title: "Gaussian" });
 * ```
 */
export function informationPlotSvg(
  curve: InformationCurve,
  options: InformationPlotOptions = {},
): { mmse: string; mutualInformation: string } {
  const { reference, title = "" } = options;
  const prefix = title ? `${title}: ` : "";
  const refLabel = reference?.label ?? "closed form";
  const series = (estimate: ArrayLike<number>, ref: ArrayLike<number> | undefined) => {
    const out = [{ x: curve.logSnr, y: estimate, label: "estimate" }];
    if (ref !== undefined) {
      if (ref.length !== curve.logSnr.length) {
        throw new RangeError(
          `reference has ${ref.length} values but the curve has ${curve.logSnr.length} lambdas`,
        );
      }
      out.push({ x: curve.logSnr, y: ref, label: refLabel });
    }
    return out;
  };
  return {
    mmse: linePlotSvg(series(curve.mmse, reference?.mmse), {
      title: `${prefix}mmse (D = ${curve.dimension})`,
      xLabel: "log-SNR lambda",
      yLabel: "mmse",
      logY: true,
    }),
    mutualInformation: linePlotSvg(series(curve.mutualInformation, reference?.mutualInformation), {
      title: `${prefix}I(x; z_lambda)`,
      xLabel: "log-SNR lambda",
      yLabel: "nats",
    }),
  };
}
