/**
 * Divergence of a denoiser's residual `x - D(x; sigma)`, the quantity the probability-flow ODE's
 * change of log-density needs (EDM eq. 4 with sigma(t) = t: `dx/dsigma = (x - D(x; sigma)) /
 * sigma`, so `div_x dx/dsigma = (dim - tr dD/dx) / sigma`; Song et al. 2021, score SDE, eq. 39
 * and Appendix D.2; Chen et al. 2018, FFJORD, for the instantaneous change of variables).
 *
 * Hutchinson's estimator (Hutchinson 1989; used by FFJORD and the score SDE paper):
 * `tr(A) = E[eps^T A eps]` for probes with `E[eps eps^T] = I` (Gaussian, or Rademacher +-1).
 * With an identity weight c (a control variate, exact in expectation for any c):
 * ```
 * dim - tr(J) = (1 - c) dim + E[eps^T (c I - J) eps],   computed as
 *               (1 - c) dim + sum_i eps_i (c eps_i - (J^T eps)_i)
 * ```
 * The subtraction happens per element before the sum, so the small divergence at low sigma
 * (J -> I, use c ~ 1) does not cancel catastrophically in float32. For Rademacher probes c only
 * changes rounding (eps_i^2 = 1); for Gaussian probes, whose variance `2 |sym(c I - J)|_F^2`
 * includes the diagonal, a c near the Jacobian's mean eigenvalue removes most of it.
 * `J^T eps` is one vector-Jacobian product, the gradient of `sum(D(x) * eps)` with respect to x
 * (`tf.grad`); all probes of all images run as one batch of `K * N` rows. With the `dim` unit
 * vectors as probes (and c = 1) the sum over probes is exact.
 *
 * Randomness is passed in: {@linkcode drawProbes} draws from a seeded {@linkcode Rng}.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";

/** Kinds of Hutchinson probes. */
export type ProbeKind = "gaussian" | "rademacher";

/** Options of {@linkcode drawProbes}. */
export interface DrawProbesOptions {
  /** Gaussian N(0, 1) or Rademacher (+-1 with equal odds) entries. @default "rademacher" */
  kind?: ProbeKind;
  /** Source of the draws (consumed in row-major order of `shape`). Required. */
  rng: Rng;
}

/**
 * Hutchinson probes: a tensor of `shape` (e.g. [K, N, ...featureShape]) with i.i.d. entries of
 * zero mean and unit variance.
 *
 * @param shape Shape of the result.
 * @param options The kind and the generator.
 * @returns A new float32 tensor; the caller owns it.
 * @throws {TypeError} For an unknown kind.
 * @example Four Rademacher probes for two 3-D points
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { drawProbes } from "./divergence.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const probes = drawProbes([4, 2, 3], { rng: new Rng(0) }); // entries +-1
 * ```
 */
export function drawProbes(shape: number[], options: DrawProbesOptions): tf.Tensor {
  const { kind = "rademacher", rng } = options;
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  if (kind === "gaussian") rng.fillNormal(data);
  else if (kind === "rademacher") {
    for (let i = 0; i < size; i++) {
      data[i] = rng.uniform() < 0.5 ? -1 : 1;
    }
  } else throw new TypeError(`unknown probe kind "${kind}": use "gaussian" or "rademacher"`);
  return tf.tensor(data, shape, "float32");
}

/** Options of {@linkcode residualDivergence}. */
export interface ResidualDivergenceOptions {
  /** Noise level of each image, [N]. Required. */
  sigma: tf.Tensor1D;
  /** Probes [K, N, ...featureShape] (K probes per image). Required. */
  probes: tf.Tensor;
  /** Conditioning passed to the denoiser (rows repeated for every probe). @default undefined */
  cond?: Conditioning;
  /** Identity weight c of the control variate (see the module doc), in [0, 1]. @default 1 */
  identityWeight?: number;
}

/** The denoiser's output and the divergence estimates. */
export interface ResidualDivergence {
  /** `D(x; sigma)`, shaped like x. */
  denoised: tf.Tensor;
  /** `(1 - c) dim + eps_k^T (c I - dD/dx) eps_k` for probe k and image n, [K, N]. */
  divergence: tf.Tensor2D;
}

/**
 * Per-probe estimates of `div_x (x - D(x; sigma)) = dim - tr(dD/dx)` for every image, from one
 * vector-Jacobian product per probe (all in one batch), plus `D(x; sigma)` itself.
 *
 * @param denoiser Any denoiser whose rows are independent (no batch statistics).
 * @param x Noisy inputs [N, ...featureShape]; not disposed.
 * @param options Sigma, the probes and the conditioning (none disposed).
 * @returns New tensors; the caller owns both.
 * @throws {RangeError} When the probes are not shaped [K, N, ...featureShape] or sigma not [N].
 * @example Probing the residual of D(x) = x / 2
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { drawProbes, residualDivergence } from "./divergence.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x = tf.ones([2, 3]);
 * const { divergence } = residualDivergence((v) => tf.mul(v, 0.5), x, {
 *   sigma: tf.ones([2]) as tf.Tensor1D,
 *   probes: drawProbes([8, 2, 3], { rng: new Rng(0) }),
 * }); // every entry 1.5 = 3 - 3 * 0.5 (Rademacher probes are exact for diagonal Jacobians)
 * ```
 */
export function residualDivergence(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: ResidualDivergenceOptions,
): ResidualDivergence {
  const { sigma, probes, cond, identityWeight: c = 1 } = options;
  if (!(c >= 0 && c <= 1)) throw new RangeError(`identityWeight must be in [0, 1], got ${c}`);
  const n = x.shape[0];
  const k = probes.shape[0];
  const featureShape = x.shape.slice(1);
  if (
    probes.rank !== x.rank + 1 || probes.shape[1] !== n ||
    probes.shape.slice(2).some((d, i) => d !== featureShape[i])
  ) {
    throw new RangeError(
      `probes have shape [${probes.shape}] but x has [${x.shape}]: pass probes shaped ` +
        `[K, ${x.shape}]`,
    );
  }
  if (sigma.rank !== 1 || sigma.shape[0] !== n) {
    throw new RangeError(`sigma has shape [${sigma.shape}]; pass one level per image, [${n}]`);
  }
  return tf.tidy(() => {
    const rows = k * n;
    const repeat = <T extends tf.Tensor>(t: T): T =>
      tf.tile(t, [k, ...new Array(t.rank - 1).fill(1)]) as T;
    const xRep = repeat(x);
    const sigmaRep = repeat(sigma);
    const condRep: Conditioning | undefined = cond && {
      classLabels: cond.classLabels && repeat(cond.classLabels),
      augmentLabels: cond.augmentLabels && repeat(cond.augmentLabels),
    };
    const eps = tf.reshape(probes, [rows, ...featureShape]);
    let denoisedRep: tf.Tensor | null = null;
    const vjp = tf.grad((xr: tf.Tensor) => {
      const d = denoiser(xr, sigmaRep, condRep);
      denoisedRep = tf.keep(d);
      return tf.sum(tf.mul(d, eps));
    })(xRep);
    const dim = featureShape.reduce((a, b) => a * b, 1);
    const e = tf.reshape(eps, [rows, dim]);
    const perProbe = tf.sum(tf.mul(e, tf.sub(tf.mul(e, c), tf.reshape(vjp, [rows, dim]))), 1);
    const perRow = c === 1 ? perProbe : tf.add(perProbe, (1 - c) * dim);
    const kept = denoisedRep! as tf.Tensor;
    const denoised = tf.slice(kept, 0, n);
    kept.dispose();
    return { denoised, divergence: tf.reshape(perRow, [k, n]) as tf.Tensor2D };
  });
}

/** Options of {@linkcode exactResidualDivergence}. */
export interface ExactDivergenceOptions {
  /** Noise level of each image, [N]. Required. */
  sigma: tf.Tensor1D;
  /** Conditioning passed to the denoiser. @default undefined */
  cond?: Conditioning;
  /** Unit-vector probes per batch (memory vs speed). @default 64 */
  chunk?: number;
}

/**
 * The exact `div_x (x - D(x; sigma)) = dim - tr(dD/dx)` per image, from `dim` vector-Jacobian
 * products with the unit vectors (meant for small `dim`: toy data, tests).
 *
 * @param denoiser Any denoiser whose rows are independent.
 * @param x Inputs [N, ...featureShape]; not disposed.
 * @param options Sigma, the conditioning and the chunk size.
 * @returns `D(x; sigma)` and the divergence [N]; the caller owns both.
 * @throws {RangeError} For sigma not shaped [N] or a chunk below 1.
 * @example The residual of D(x) = x / 2 in 3-D has divergence 1.5
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { exactResidualDivergence } from "./divergence.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const { divergence } = exactResidualDivergence((v) => tf.mul(v, 0.5), tf.ones([2, 3]), {
 *   sigma: tf.ones([2]) as tf.Tensor1D,
 * }); // [1.5, 1.5]
 * ```
 */
export function exactResidualDivergence(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: ExactDivergenceOptions,
): { denoised: tf.Tensor; divergence: tf.Tensor1D } {
  const { sigma, cond, chunk = 64 } = options;
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
  }
  const n = x.shape[0];
  const dim = x.size / n;
  let denoised: tf.Tensor | null = null;
  let total: tf.Tensor1D = tf.zeros([n]);
  for (let from = 0; from < dim; from += chunk) {
    const k = Math.min(chunk, dim - from);
    const probes = tf.tidy(() => {
      // probes[j, i, :] = e_{from + j} for every image i.
      const eye = tf.oneHot(tf.range(from, from + k, 1, "int32"), dim);
      return tf.reshape(tf.tile(tf.expandDims(eye, 1), [1, n, 1]), [k, ...x.shape]);
    });
    const part = residualDivergence(denoiser, x, { sigma, probes, cond });
    probes.dispose();
    const next = tf.tidy(() => tf.add(total, tf.sum(part.divergence, 0))) as tf.Tensor1D;
    total.dispose();
    total = next;
    part.divergence.dispose();
    if (denoised === null) denoised = part.denoised;
    else part.denoised.dispose();
  }
  return { denoised: denoised!, divergence: total };
}
