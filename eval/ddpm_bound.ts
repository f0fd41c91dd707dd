/**
 * Codelengths of DDPM (Ho et al. 2020, eq. 5, 12, 13; Section 4.3, Table 1): the variational
 * bound `L = L_T + sum_{t >= 2} L_{t-1} + L_0` in bits per dimension, each part reported
 * separately:
 * - the prior term `L_T = KL(q(x_T | x_0) || N(0, I))`, closed form per image (float64):
 *   `1/2 sum_i (alphaBar_T x0_i^2 + (1 - alphaBar_T) - 1 - log(1 - alphaBar_T))`;
 * - the diffusion terms L_{t-1}, t = 2..T, each a closed-form Gaussian KL given one draw
 *   x_t ~ q(x_t | x_0) (Rao-Blackwellized as the paper says under eq. 7);
 * - the decoder term L_0 = -log p(x_0 | x_1), discretized (eq. 13) for 8-bit data, or a Gaussian
 *   density for continuous data.
 *
 * Every step of the chain costs one network call per batch (T = 1000 calls for DDPM's process);
 * a respaced chain (`respaceDdpm`) gives the bound of that shorter model for fewer calls. The same
 * calls give x0-hat at every step (eq. 15), whose squared error feeds the rate-distortion curve
 * (`rate_distortion.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning } from "../core/types.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import type { DdpmProcess, ReverseVariance } from "../schedules/ddpm.ts";
import { eventLoopYielder } from "../samplers/_util.ts";
import { type DdpmDecoder, type DdpmVlbTerms, ddpmVlbTerms } from "../training/ddpm_loss.ts";
import type { BpdConvention } from "./discretized_gaussian_reference.ts";

/** Options of {@linkcode ddpmBound}. */
export interface DdpmBoundOptions {
  /** The chain whose bound is measured (the training process, or a respacing of it). */
  process: DdpmProcess;
  /** Source of the x_t draws, e.g. `perImageNoise(seeds)`; one draw per step. */
  noise: NoiseSource;
  /** Reverse variance sigma_t^2. @default "beta" */
  variance?: ReverseVariance;
  /** Decoder L_0: "discretized" (8-bit data in [-1, 1]) or "gaussian" (continuous data). @default "discretized" */
  decoder?: DdpmDecoder;
  /** Clip x0-hat to [-1, 1] before measuring its error (the data range is known). @default true */
  clipX0?: boolean;
  /**
   * Per-term conventions: "exact" (the paper's eq. 5, 12, 13 with the exact normal CDF) or
   * "reference" (the DDPM / improved-diffusion code behind published figures; see
   * `discretized_gaussian_reference.ts`). @default "exact"
   */
  convention?: BpdConvention;
  /** Conditioning passed to the predictor. @default undefined */
  cond?: Conditioning;
  /** Called after each step with the step and the progress. @default undefined */
  onStep?: (progress: { t: number; done: number; total: number }) => void;
  /** Stops between steps; the promise rejects with `signal.reason`. @default undefined */
  signal?: AbortSignal;
  /**
   * Another model's per-step terms on the same chain (e.g. NDM's eq. 10, `ndmTerms`), in place
   * of `ddpmVlbTerms` on `eps`; called inside a tidy. @default undefined (DDPM's terms)
   */
  terms?: (x0: tf.Tensor, t: number, noise: tf.Tensor) => DdpmVlbTerms;
  /** Another model's prior term per image, bits/dim. @default undefined (DDPM's L_T) */
  prior?: (x0: tf.Tensor) => Promise<Float64Array>;
}

/** The bound of one batch, in bits per dimension. */
export interface DdpmBoundResult {
  /** Number of images N. */
  count: number;
  /** Dimensions per image D. */
  dims: number;
  /** L_T per image. */
  prior: Float64Array;
  /** sum_{t >= 2} L_{t-1} per image. */
  diffusion: Float64Array;
  /** L_0 per image. */
  decoder: Float64Array;
  /** The bound L per image. */
  total: Float64Array;
  /** Batch mean of the term of step t (T + 1 entries; [1] is L_0, [t] is L_{t-1}; [0] unused, 0). */
  stepTerms: Float64Array;
  /** Batch mean over images and dimensions of (x0 - x0-hat(x_t))^2, [-1, 1] units ([0] = 0). */
  stepSquaredError: Float64Array;
}

/**
 * Evaluates the bound of a batch: every step of the chain, L_T and L_0.
 *
 * @param eps The noise predictor (`epsFromDenoiser` turns any denoiser into one).
 * @param x0 The data [N, ...] in [-1, 1] (on the 8-bit grid for the discretized decoder); never disposed.
 * @param options Chain, noise source, variance, decoder.
 * @returns Per-image parts and per-step means.
 * @throws {RangeError} For invalid settings (see `ddpmVlbTerms`).
 * @example bits/dim of two images under a zero predictor, on a 10-step chain
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
 * import { ddpmBound } from "./ddpm_bound.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = respaceDdpm(ddpmProcess(), spaceTimesteps(1000, { numSteps: 10 }));
 * const result = await ddpmBound(ddpmEpsNetwork((x) => tf.zerosLike(x)), tf.zeros([2, 4]), {
 *   process,
 *   noise: perImageNoise([0, 1]),
 * });
 * console.log(result.total); // bits/dim per image
 * ```
 */
export async function ddpmBound(
  eps: EpsPredictor,
  x0: tf.Tensor,
  options: DdpmBoundOptions,
): Promise<DdpmBoundResult> {
  const { process, noise, variance = "beta", decoder = "discretized", clipX0 = true } = options;
  const { cond, onStep, signal, convention = "exact" } = options;
  if (convention !== "exact" && convention !== "reference") {
    throw new RangeError(`unknown bits/dim convention "${convention}": use "exact" or "reference"`);
  }

  if (process === undefined || noise === undefined) {
    throw new TypeError("ddpmBound needs options.process and options.noise");
  }
  const n = x0.shape[0], dims = x0.size / n, T = process.T;
  const prior = options.prior
    ? await options.prior(x0)
    : ddpmPriorTerms(process, await x0.data(), n, dims);
  const termsAt = options.terms ??
    ((x: tf.Tensor, t: number, z: tf.Tensor) =>
      ddpmVlbTerms(eps, x, { process, variance, decoder, t, noise: z, cond, convention }));
  const diffusion = new Float64Array(n), decoderTerms = new Float64Array(n);
  const stepTerms = new Float64Array(T + 1), stepSquaredError = new Float64Array(T + 1);
  const pause = eventLoopYielder();
  for (let t = T; t >= 1; t--) {
    await pause();
    signal?.throwIfAborted();
    const [stepTerm, squaredError] = tf.tidy(() => {
      const z = noise.randn(x0.shape);
      const out = termsAt(x0, t, z);
      const x0Hat = clipX0 ? tf.clipByValue(out.x0Hat, -1, 1) : out.x0Hat;
      const axes = x0.shape.slice(1).map((_, i) => i + 1);
      return [out.terms, tf.mean(tf.square(tf.sub(x0, x0Hat)), axes)];
    });
    const [termValues, errorValues] = [await stepTerm.data(), await squaredError.data()];
    stepTerm.dispose();
    squaredError.dispose();
    const target = t === 1 ? decoderTerms : diffusion;
    for (let i = 0; i < n; i++) {
      target[i] += termValues[i];
      stepTerms[t] += termValues[i] / n;
      stepSquaredError[t] += errorValues[i] / n;
    }
    onStep?.({ t, done: T - t + 1, total: T });
  }
  const total = prior.map((p, i) => p + diffusion[i] + decoderTerms[i]);
  return {
    count: n,
    dims,
    prior,
    diffusion,
    decoder: decoderTerms,
    total,
    stepTerms,
    stepSquaredError,
  };
}

/**
 * L_T = KL(N(sqrt(alphaBar_T) x0, (1 - alphaBar_T) I) || N(0, I)) per image, bits/dim, in float64.
 *
 * @param process The chain.
 * @param x0 The data of n images, flat (pass transformed data F(x, 1) for NDM).
 * @param n Images.
 * @param dims Dimensions per image.
 * @returns One value per image.
 * @example
 * ```ts
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ddpmPriorTerms } from "./ddpm_bound.ts";
 * const prior = ddpmPriorTerms(ddpmProcess(), new Float32Array(4).fill(1), 1, 4);
 * ```
 */
export function ddpmPriorTerms(
  process: DdpmProcess,
  x0: ArrayLike<number>,
  n: number,
  dims: number,
): Float64Array {
  const abT = process.alphaBar[process.T];
  // (1 - abT) - 1 - log(1 - abT) = -abT - log1p(-abT), without cancellation.
  const perDimConst = -abT - Math.log1p(-abT);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sumSq = 0;
    for (let j = 0; j < dims; j++) sumSq += x0[i * dims + j] ** 2;
    out[i] = (0.5 * (abT * sumSq + dims * perDimConst)) / (dims * Math.LN2);
  }
  return out;
}

/** The bound over a whole set: means over images of each part, and per-step means. */
export interface DdpmBoundSummary {
  /** Number of images. */
  count: number;
  /** Dimensions per image. */
  dims: number;
  /** The bound: mean of L over images, bits/dim (Table 1's NLL column). */
  bitsPerDim: number;
  /** Mean L_T, bits/dim. */
  prior: number;
  /** Mean sum_{t >= 2} L_{t-1}, bits/dim. */
  diffusion: number;
  /** Mean L_0, bits/dim. */
  decoder: number;
  /** Standard error of `bitsPerDim` over images (Monte Carlo and data spread). */
  standardError: number;
  /** Mean term of step t ([1] is L_0, [t] is L_{t-1}), bits/dim. */
  stepTerms: Float64Array;
  /** Mean squared error of x0-hat at step t, [-1, 1] units. */
  stepSquaredError: Float64Array;
}

/**
 * Pools batch results into the bound of the whole set, weighting batches by their size.
 *
 * @param results Batch results of the same chain (same T) and data shape.
 * @returns The summary.
 * @throws {RangeError} For no results, or results of different chains or shapes.
 * @example
 * ```ts ignore
 * const summary = summarizeDdpmBound([await ddpmBound(eps, batchA, o), await ddpmBound(eps, batchB, o)]);
 * console.log(`${summary.bitsPerDim.toFixed(3)} bits/dim`);
 * ```
 */
export function summarizeDdpmBound(results: readonly DdpmBoundResult[]): DdpmBoundSummary {
  if (results.length === 0) throw new RangeError("summarizeDdpmBound needs at least one result");
  const { dims } = results[0], steps = results[0].stepTerms.length;
  for (const r of results) {
    if (r.dims !== dims || r.stepTerms.length !== steps) {
      throw new RangeError(
        `results differ: dims ${r.dims} vs ${dims}, steps ${r.stepTerms.length - 1} vs ${
          steps - 1
        }`,
      );
    }
  }
  const count = results.reduce((s, r) => s + r.count, 0);
  const mean = (pick: (r: DdpmBoundResult) => Float64Array) =>
    results.reduce((s, r) => s + pick(r).reduce((a, b) => a + b, 0), 0) / count;
  const bitsPerDim = mean((r) => r.total);
  const sumSq = results.reduce(
    (s, r) => s + r.total.reduce((a, v) => a + (v - bitsPerDim) ** 2, 0),
    0,
  );
  const stepTerms = new Float64Array(steps), stepSquaredError = new Float64Array(steps);
  for (const r of results) {
    for (let t = 0; t < steps; t++) {
      stepTerms[t] += (r.stepTerms[t] * r.count) / count;
      stepSquaredError[t] += (r.stepSquaredError[t] * r.count) / count;
    }
  }
  return {
    count,
    dims,
    bitsPerDim,
    prior: mean((r) => r.prior),
    diffusion: mean((r) => r.diffusion),
    decoder: mean((r) => r.decoder),
    standardError: count > 1 ? Math.sqrt(sumSq / (count - 1) / count) : NaN,
    stepTerms,
    stepSquaredError,
  };
}
