/**
 * The deterministic dynamics of a Neural Diffusion Model and its likelihood (NDM paper,
 * Section 3.2, eq. 12-13 with constant nu): the limit of Algorithm 2's DDIM-style step
 * (eta = 0) as the steps shrink is the ODE
 *
 * `dz/dt = alpha dF/dt(x_hat, t) + alpha' F(x_hat, t) + (sigma' / sigma) (z - alpha F(x_hat, t))`
 * `      = alpha dF/dt(x_hat, t) + r z - 1/2 (dsigma^2/dt - 2 r sigma^2) s_theta(z, t)`,
 *
 * `s_theta = (alpha F(x_hat, t) - z) / sigma^2`, `x_hat = (z - sigma eps_theta(z, T t)) / alpha`.
 * (The extracted eq. 12 reads `(g^2 - 2 r sigma^2)` in the score term: with g = 0 for constant nu
 * that would not reduce to the DDIM/probability-flow ODE for the identity F; the expansion of the
 * eta = 0 step gives `dsigma^2/dt - 2 r sigma^2`, which we use.) For the exact x-prediction and a
 * linear F this ODE carries the marginals of eq. 7 (tested against Gaussian data).
 *
 * Likelihood as a continuous normalizing flow, as `eval/likelihood.ts` does for EDM denoisers:
 * `log p_{t0}(z_{t0}) = log N(z_1; 0, I) + int_{t0}^{1} div_z f dt`, RK45 (`solveRk45`) on
 * [z, one accumulator per probe], Hutchinson divergence with fixed probes (or exact, for small
 * dimensions) by vector-Jacobian products through eps_theta and F. The data point is the state
 * at t0 = `schedule.tMin` (z_{t0} ~ x, since F(x, 0) = x and alpha(t0) ~ 1), with 8-bit data
 * uniformly dequantized and 7 bits/dim added (the convention of `eval/likelihood.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import { type NdmTransform, transformTimeDerivative } from "../models/ndm_transform.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { drawProbes } from "./divergence.ts";
import { DEQUANTIZATION_OFFSET_BITS, dequantizeInPlace } from "./likelihood.ts";
import { solveRk45 } from "./rk45.ts";

/** The model and process of the ODE. */
export interface NdmOdeModel {
  /** eps_theta. */
  eps: EpsPredictor;
  /** F. */
  transform: NdmTransform;
  /** alpha(t), sigma(t) and their derivatives on [tMin, 1]. */
  schedule: LogSnrSchedule;
  /** Network time scale: eps_theta is called at `T t`. @default 1000 */
  T?: number;
}

/**
 * The drift f(z, t) of the deterministic NDM dynamics (see the module doc). Call inside a tidy.
 *
 * @param model eps_theta, F, the schedule.
 * @param z States [N, ...].
 * @param t The time, in (0, 1].
 * @returns dz/dt, shaped like z.
 * @example
 * ```ts ignore
 * const dz = tf.tidy(() => ndmOdeDrift({ eps, transform, schedule }, z, 0.5));
 * ```
 */
export function ndmOdeDrift(model: NdmOdeModel, z: tf.Tensor, t: number): tf.Tensor {
  return tf.tidy(() => ndmDriftParts(model, z, t).drift);
}

/**
 * The ODE drift and F(x_hat, t) on the way (the SDE sampler needs both). Call inside a tidy.
 *
 * @param model eps_theta, F, the schedule.
 * @param z States [N, ...].
 * @param t The time, in (0, 1].
 * @returns `drift` (dz/dt) and `fHat` = F(x_hat(z, t), t), both shaped like z.
 * @example
 * ```ts ignore
 * const { drift, fHat } = tf.tidy(() => ndmDriftParts({ eps, transform, schedule }, z, 0.5));
 * ```
 */
export function ndmDriftParts(
  model: NdmOdeModel,
  z: tf.Tensor,
  t: number,
): { drift: tf.Tensor; fHat: tf.Tensor } {
  const { eps, transform, schedule, T = 1000 } = model;
  const n = z.shape[0];
  const a = schedule.alpha(t), s = schedule.sigma(t);
  const da = schedule.alphaDeriv(t), ds = schedule.sigmaDeriv(t);
  return tf.tidy(() => {
    const epsHat = eps(z, tf.fill([n], T * t) as tf.Tensor1D);
    const xHat = tf.div(tf.sub(z, tf.mul(epsHat, s)), a);
    const fHat = transform.apply(xHat, tf.fill([n], t) as tf.Tensor1D);
    const df = transformTimeDerivative(transform, xHat, new Array(n).fill(t));
    const drift = tf.add(
      tf.add(tf.mul(df, a), tf.mul(fHat, da)),
      tf.mul(tf.sub(z, tf.mul(fHat, a)), ds / s),
    );
    return { drift, fHat };
  });
}

/** Options of {@linkcode ndmOdeLikelihood}. */
export interface NdmLikelihoodOptions {
  /** Source of the dequantization noise and the probes. Required. */
  rng: Rng;
  /** Divergence: Hutchinson probes or exact (dimension vector-Jacobian products). @default "rademacher" */
  probe?: "gaussian" | "rademacher" | "exact";
  /** Hutchinson probes per image. @default 1 */
  numProbes?: number;
  /** Uniform dequantization of 8-bit data and the +7 bits/dim offset. @default true */
  dequantize?: boolean;
  /** RK45 relative tolerance. @default 1e-4 */
  rtol?: number;
  /** RK45 absolute tolerance. @default 1e-4 */
  atol?: number;
  /** Called after every accepted RK45 step. @default undefined */
  onStep?: (record: { t: number; steps: number; nfe: number }) => void;
  /** Aborts the solve. @default undefined */
  signal?: AbortSignal;
}

/** The ODE likelihood of a batch. */
export interface NdmLikelihoodResult {
  /** -log p(x) per image in nats (mean over probes; of the dequantized x for 8-bit data). */
  nll: Float64Array;
  /** bits/dim per image. */
  bitsPerDim: Float64Array;
  /** Mean bits/dim over the batch. */
  meanBitsPerDim: number;
  /** Right-hand-side evaluations of the solver. */
  nfe: number;
}

/**
 * NLL by the ODE of the deterministic NDM dynamics (a continuous normalizing flow).
 *
 * @param model eps_theta, F and the schedule.
 * @param x Data [N, ...] (8-bit values in [-1, 1] when dequantizing); never disposed.
 * @param options Probes, dequantization, tolerances.
 * @returns Per-image NLL and bits/dim.
 * @throws {RangeError} For an unknown probe kind or numProbes < 1.
 * @example
 * ```ts ignore
 * const { meanBitsPerDim } = await ndmOdeLikelihood({ eps, transform, schedule }, x0, { rng: new Rng(0) });
 * ```
 */
export async function ndmOdeLikelihood(
  model: NdmOdeModel,
  x: tf.Tensor,
  options: NdmLikelihoodOptions,
): Promise<NdmLikelihoodResult> {
  const {
    rng,
    probe = "rademacher",
    numProbes = 1,
    dequantize = true,
    rtol = 1e-4,
    atol = 1e-4,
    onStep,
    signal,
  } = options;
  if (!["gaussian", "rademacher", "exact"].includes(probe)) {
    throw new RangeError(`unknown probe "${probe}": use "gaussian", "rademacher" or "exact"`);
  }
  if (!Number.isInteger(numProbes) || numProbes < 1) {
    throw new RangeError(`numProbes must be an integer >= 1, got ${numProbes}`);
  }
  const n = x.shape[0], dim = x.size / n, shape = x.shape;
  const start = Float64Array.from(await x.data());
  if (dequantize) dequantizeInPlace(start, rng);
  const k = probe === "exact" ? 1 : numProbes;
  // Probes [k, N, ...]; for "exact" the unit vectors are made per evaluation.
  const probes = probe === "exact" ? null : drawProbes([k, ...shape], { kind: probe, rng });
  const y0 = new Float64Array(n * dim + k * n);
  y0.set(start);
  const axes = shape.slice(1).map((_, i) => i + 1);
  const rhs = async (t: number, y: Float64Array): Promise<Float64Array> => {
    const z = tf.tensor(Float32Array.from(y.subarray(0, n * dim)), shape, "float32");
    const vectors = probes ? tf.unstack(probes) : unitVectors(shape);
    const divs: tf.Tensor[] = [];
    for (const v of vectors) {
      // v^T (df/dz) v per image through one vector-Jacobian product.
      const { value, grad } = tf.valueAndGrad((zz: tf.Tensor) =>
        tf.sum(tf.mul(ndmOdeDrift(model, zz, t), v))
      )(z);
      value.dispose();
      divs.push(tf.tidy(() => tf.sum(tf.mul(grad, v), axes)));
      grad.dispose();
    }
    const drift = tf.tidy(() => ndmOdeDrift(model, z, t));
    const divergence = probe === "exact"
      ? tf.tidy(() => tf.addN(divs))
      : tf.tidy(() => tf.concat(divs));
    const [dz, dv] = await Promise.all([drift.data(), divergence.data()]);
    tf.dispose([z, drift, divergence, ...divs, ...vectors]);
    const dy = new Float64Array(y.length);
    dy.set(dz);
    dy.set(dv, n * dim);
    return dy;
  };
  let solution;
  try {
    solution = await solveRk45(rhs, y0, {
      t0: model.schedule.tMin,
      t1: 1,
      rtol,
      atol,
      signal,
      onStep: onStep && ((r) => onStep({ t: r.t, steps: r.steps, nfe: r.nfe })),
    });
  } finally {
    probes?.dispose();
  }
  const { y } = solution;
  const offset = dequantize ? DEQUANTIZATION_OFFSET_BITS : 0;
  const nll = new Float64Array(n), bitsPerDim = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let d = 0; d < dim; d++) sq += y[i * dim + d] ** 2;
    const logPrior = -0.5 * dim * Math.log(2 * Math.PI) - 0.5 * sq;
    let total = 0;
    for (let j = 0; j < k; j++) total += -(logPrior + y[n * dim + j * n + i]);
    nll[i] = total / k;
    bitsPerDim[i] = nll[i] / (dim * Math.LN2) + offset;
  }
  return {
    nll,
    bitsPerDim,
    meanBitsPerDim: bitsPerDim.reduce((a, b) => a + b, 0) / n,
    nfe: solution.nfe,
  };
}

// One unit vector per dimension, each set in every image: [dim] tensors shaped like x.
function unitVectors(shape: number[]): tf.Tensor[] {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: per }, (_, j) =>
    tf.tidy(() => {
      const row = tf.reshape(tf.oneHot(tf.tensor1d([j], "int32"), per), [1, ...shape.slice(1)]);
      return tf.tile(tf.cast(row, "float32"), [shape[0], ...shape.slice(1).map(() => 1)]);
    }));
}
