/**
 * Negative log-likelihood and bits/dim of a {@linkcode Denoiser} through the probability-flow ODE
 * (Song et al. 2021, score SDE, section 4.3 and Appendix D.2; EDM, Karras et al. 2022, eq. 4 with
 * sigma(t) = t, s(t) = 1):
 *
 * ```
 * dx/dsigma          = f(x, sigma) = (x - D(x; sigma)) / sigma
 * d log p(x)/dsigma  = -div_x f(x, sigma)                       (instantaneous change of variables)
 * log p_0(x_0)       = log p_T(x(sigma_max)) + int_{sigma_min}^{sigma_max} div_x f dsigma
 * log p_T(z)         = -(dim / 2) log(2 pi sigma_max^2) - |z|^2 / (2 sigma_max^2)
 * ```
 * The data point is the state at `sigma_min` (p_{sigma_min} ~ p_0), the ODE runs up to
 * `sigma_max`, where the prior N(0, sigma_max^2 I) stands in for p_{sigma_max}.
 *
 * - Integrator: adaptive Dormand-Prince 5(4) ({@linkcode solveRk45}) on the joint state
 *   [x, one log-density accumulator per probe]. By default it runs in `u = log sigma`
 *   (`dx/du = x - D`, `d/du = sigma d/dsigma`): the same ODE and solution, but the step sizes
 *   are even across sigma's four decades; `variable: "sigma"` integrates in sigma itself.
 * - Divergence: Hutchinson's estimator ({@linkcode residualDivergence}) with `numProbes`
 *   Gaussian or Rademacher probes drawn once and held fixed along the path (as FFJORD and the
 *   score SDE code do: a fixed probe makes the right-hand side a smooth ODE). Each probe gives
 *   its own NLL; the result is their mean, with their spread. The control variate's identity
 *   weight is `c(sigma) = sigmaData^2 / (sigmaData^2 + sigma^2)`, the Jacobian of the ideal
 *   denoiser of N(0, sigmaData^2 I) data, so Gaussian probes do not pay for estimating the trace
 *   of the identity part (unbiased for any c; Rademacher probes are unaffected).
 *   `probe: "exact"` uses `dim` vector-Jacobian products instead (small `dim` only).
 * - Dequantization (8-bit data, Theis et al. 2016; the convention of the score SDE code): with
 *   `x` in [-1, 1] from bytes b = round((x + 1) * 127.5) (clamped to 0..255),
 *   `x~ = (b + u) / 128 - 1`, u ~ U(0, 1) per value: the bins of width 2/256 tile [-1, 1]. Then
 *   `-log2 P(b) <= E_u[-log2 p(x~)] - dim log2(2/256)`, so
 *   **bits/dim = NLL_nats(x~) / (dim ln 2) + 7** (7 = log2(256 / 2): 8 bits for the 1/256 bin
 *   width in [0, 1], minus 1 for the scaling by 2 from [0, 1] to [-1, 1]). This is the number
 *   reported in the literature for 8-bit images (DDPM, score SDE). Models trained on
 *   x = 2b/255 - 1 are thus scored on the 256-bin grid, as in the score SDE code.
 *   With `dequantize: false` the data are continuous and bits/dim = NLL_nats / (dim ln 2).
 *
 * Randomness (dequantization noise, then the probes, in row-major order) comes from the `rng`
 * option only.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { drawProbes, exactResidualDivergence, residualDivergence } from "./divergence.ts";
import { solveRk45 } from "./rk45.ts";

/** Bits per dimension added for 8-bit data scaled to [-1, 1]: log2(256 / 2). */
export const DEQUANTIZATION_OFFSET_BITS = 7;

/** Options of {@linkcode pfOdeLikelihood}. */
export interface LikelihoodOptions {
  /** Source of the dequantization noise and the probes. Required. */
  rng: Rng;
  /** Start of the ODE (the data end), > 0. @default 0.002 (EDM) */
  sigmaMin?: number;
  /** End of the ODE, where the prior N(0, sigmaMax^2 I) is evaluated. @default 80 (EDM) */
  sigmaMax?: number;
  /** Relative tolerance of the RK45 solver. @default 1e-5 */
  rtol?: number;
  /** Absolute tolerance of the RK45 solver. @default 1e-5 */
  atol?: number;
  /** Divergence: Hutchinson with Gaussian or Rademacher probes, or exact. @default "rademacher" */
  probe?: "gaussian" | "rademacher" | "exact";
  /** Hutchinson probes per image (ignored for "exact"). @default 4 */
  numProbes?: number;
  /** Data scale of the control variate's identity weight (see the module doc). @default 0.5 (EDM) */
  sigmaData?: number;
  /** Uniform dequantization of 8-bit data and the +7 bits/dim offset. @default true */
  dequantize?: boolean;
  /** Integration variable: log sigma (even steps) or sigma. @default "logSigma" */
  variable?: "logSigma" | "sigma";
  /** Conditioning of every image (class labels...). @default undefined */
  cond?: Conditioning;
  /** Most RK45 steps. @default 100_000 */
  maxSteps?: number;
  /** Called after every accepted RK45 step with the sigma reached. @default undefined */
  onStep?: (record: { sigma: number; steps: number; nfe: number }) => void;
  /** Aborts the solve (the promise rejects). */
  signal?: AbortSignal;
  /**
   * log p_T of the ODE's end points x(sigmaMax), [N, ...shape] row-major (EDM space), one value
   * per image, replacing the Gaussian prior (e.g. a normalizing flow at an intermediate time).
   * @default log N(x; 0, sigmaMax^2 I)
   */
  prior?: (xEnd: Float64Array, shape: readonly number[]) => Float64Array | Promise<Float64Array>;
}

/** What {@linkcode pfOdeLikelihood} returns (all arrays have one entry per image). */
export interface LikelihoodResult {
  /** Negative log-likelihood in nats of the (dequantized) point, mean over probes. */
  nll: Float64Array;
  /** Bits/dim, mean over probes (with the dequantization offset when dequantizing). */
  bitsPerDim: Float64Array;
  /** Sample standard deviation of the per-probe bits/dim (0 for "exact", NaN for one probe). */
  bitsPerDimStd: Float64Array;
  /** Mean bits/dim over the images. */
  meanBitsPerDim: number;
  /** Standard error of `meanBitsPerDim` across images (NaN for one image). */
  stdErrorBitsPerDim: number;
  /** log p_T of the ODE's end point under N(0, sigmaMax^2 I) (or the `prior` option), nats. */
  priorLogP: Float64Array;
  /** Offset added to every bits/dim: 7 when dequantizing, else 0. */
  offsetBits: number;
  /** Denoiser evaluations (each one batch of N * numProbes rows with a backward pass). */
  nfe: number;
  /** Accepted RK45 steps. */
  steps: number;
  /** Rejected RK45 steps. */
  rejected: number;
}

/**
 * NLL and bits/dim of the images `x` under the model the denoiser defines, through the
 * probability-flow ODE (see the module doc for the exact conventions).
 *
 * @param denoiser The model (EDM convention, rows independent).
 * @param x Images [N, ...shape] in [-1, 1] (or any data with `dequantize: false`); not disposed.
 * @param options The generator (required), ODE range and tolerances, probes, dequantization.
 * @returns Per-image NLL and bits/dim, their summary and the solver counts.
 * @throws {RangeError} For invalid options, or data outside [-1, 1] when dequantizing.
 * @example Bits/dim of Gaussian data under its exact denoiser
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { pfOdeLikelihood } from "./likelihood.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x = tf.tensor2d([[0.1, -0.2], [0.3, 0.4]]);
 * const { nll } = await pfOdeLikelihood(idealGaussianDenoiser({ std: 0.5 }), x, {
 *   rng: new Rng(0),
 *   dequantize: false,
 * }); // ~ -log N(x; 0, 0.25 I) per row
 * ```
 */
export async function pfOdeLikelihood(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: LikelihoodOptions,
): Promise<LikelihoodResult> {
  const {
    rng,
    sigmaMin = 0.002,
    sigmaMax = 80,
    rtol = 1e-5,
    atol = 1e-5,
    probe = "rademacher",
    numProbes = 4,
    sigmaData = 0.5,
    dequantize = true,
    variable = "logSigma",
    cond,
    maxSteps,
    onStep,
    signal,
  } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !Number.isFinite(sigmaMax)) {
    throw new RangeError(
      `need 0 < sigmaMin < sigmaMax < Infinity, got sigmaMin ${sigmaMin}, sigmaMax ${sigmaMax}`,
    );
  }
  if (!["gaussian", "rademacher", "exact"].includes(probe)) {
    throw new RangeError(`unknown probe "${probe}": use "gaussian", "rademacher" or "exact"`);
  }
  if (!Number.isInteger(numProbes) || numProbes < 1) {
    throw new RangeError(`numProbes must be an integer >= 1, got ${numProbes}`);
  }
  if (!(sigmaData > 0) || !Number.isFinite(sigmaData)) {
    throw new RangeError(`sigmaData must be a finite number > 0, got ${sigmaData}`);
  }
  if (variable !== "logSigma" && variable !== "sigma") {
    throw new RangeError(`variable must be "logSigma" or "sigma", got "${variable}"`);
  }
  const n = x.shape[0];
  const dim = x.size / n;
  const shape = x.shape;
  const start = Float64Array.from(await x.data());
  if (dequantize) dequantizeInPlace(start, rng);
  const k = probe === "exact" ? 1 : numProbes;
  const probes = probe === "exact" ? null : drawProbes([k, ...shape], { kind: probe, rng });
  const logSigma = variable === "logSigma";

  // State: [x (n * dim), delta_k,i = int div_x f dsigma (k * n)].
  const y0 = new Float64Array(n * dim + k * n);
  y0.set(start);
  const rhs = async (u: number, y: Float64Array): Promise<Float64Array> => {
    const sigma = logSigma ? Math.exp(u) : u;
    const xt = tf.tensor(Float32Array.from(y.subarray(0, n * dim)), shape, "float32");
    const sigmaT = tf.fill([n], sigma) as tf.Tensor1D;
    const out = probes
      ? residualDivergence(denoiser, xt, {
        sigma: sigmaT,
        probes,
        cond,
        identityWeight: sigmaData ** 2 / (sigmaData ** 2 + sigma ** 2),
      })
      : exactResidualDivergence(denoiser, xt, { sigma: sigmaT, cond });
    const [denoised, divergence] = await Promise.all([out.denoised.data(), out.divergence.data()]);
    tf.dispose([xt, sigmaT, out.denoised, out.divergence]);
    // d/du = (dsigma/du) d/dsigma: sigma * f = x - D in log sigma, f = (x - D) / sigma in sigma.
    const scale = logSigma ? 1 : 1 / sigma;
    const dy = new Float64Array(y.length);
    for (let i = 0; i < n * dim; i++) dy[i] = (y[i] - denoised[i]) * scale;
    for (let j = 0; j < k * n; j++) dy[n * dim + j] = divergence[j] * scale;
    return dy;
  };
  let solution;
  try {
    solution = await solveRk45(rhs, y0, {
      t0: logSigma ? Math.log(sigmaMin) : sigmaMin,
      t1: logSigma ? Math.log(sigmaMax) : sigmaMax,
      rtol,
      atol,
      maxSteps,
      signal,
      onStep: onStep &&
        ((r) => onStep({ sigma: logSigma ? Math.exp(r.t) : r.t, steps: r.steps, nfe: r.nfe })),
    });
  } finally {
    probes?.dispose();
  }
  const { y } = solution;
  const offsetBits = dequantize ? DEQUANTIZATION_OFFSET_BITS : 0;
  const priorLogP = options.prior
    ? Float64Array.from(await options.prior(y.slice(0, n * dim), shape))
    : new Float64Array(n);
  if (priorLogP.length !== n) {
    throw new RangeError(
      `prior returned ${priorLogP.length} values for ${n} images; give one each`,
    );
  }
  const nll = new Float64Array(n), bitsPerDim = new Float64Array(n);
  const bitsPerDimStd = new Float64Array(n);
  const toBits = (nats: number) => nats / (dim * Math.LN2) + offsetBits;
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += y[i * dim + d] ** 2;
    if (!options.prior) {
      priorLogP[i] = -0.5 * dim * Math.log(2 * Math.PI * sigmaMax * sigmaMax) -
        sq / (2 * sigmaMax * sigmaMax);
    }
    const perProbe = Array.from({ length: k }, (_, j) => -(priorLogP[i] + y[n * dim + j * n + i]));
    nll[i] = mean(perProbe);
    bitsPerDim[i] = toBits(nll[i]);
    bitsPerDimStd[i] = probe === "exact" ? 0 : sampleStd(perProbe.map(toBits));
  }
  const meanBitsPerDim = mean(Array.from(bitsPerDim));
  return {
    nll,
    bitsPerDim,
    bitsPerDimStd,
    meanBitsPerDim,
    stdErrorBitsPerDim: sampleStd(Array.from(bitsPerDim)) / Math.sqrt(n),
    priorLogP,
    offsetBits,
    nfe: solution.nfe,
    steps: solution.steps,
    rejected: solution.rejected,
  };
}

/**
 * Uniform dequantization of 8-bit data in [-1, 1] (see the module doc): each value becomes
 * `(b + u) / 128 - 1` with `b = round((x + 1) * 127.5)` clamped to 0..255 and `u ~ U(0, 1)`
 * drawn from `rng` in order. In place.
 *
 * @param values Data in [-1, 1]; overwritten.
 * @param rng Source of the uniforms.
 * @returns `values`, for chaining.
 * @throws {RangeError} For a value outside [-1, 1] (beyond rounding), which is not 8-bit data.
 * @example One black and one white pixel
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { dequantizeInPlace } from "./likelihood.ts";
 * const v = dequantizeInPlace(new Float64Array([-1, 1]), new Rng(0));
 * // v[0] in [-1, -1 + 2/256), v[1] in [1 - 2/256, 1)
 * ```
 */
export function dequantizeInPlace<T extends Float64Array | Float32Array>(values: T, rng: Rng): T {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(Math.abs(v) <= 1 + 1e-3)) {
      throw new RangeError(
        `value ${v} at index ${i} is outside [-1, 1]: dequantization expects 8-bit images ` +
          `scaled to [-1, 1]; pass dequantize: false for continuous data`,
      );
    }
    const b = Math.min(255, Math.max(0, Math.round((v + 1) * 127.5)));
    values[i] = (b + rng.uniform()) / 128 - 1;
  }
  return values;
}

function mean(a: number[]): number {
  return a.reduce((s, v) => s + v, 0) / a.length;
}

function sampleStd(a: number[]): number {
  if (a.length < 2) return NaN;
  const m = mean(a);
  return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1));
}
