/**
 * The continuous-time NDM objective (NDM paper, Section 3.2, eq. 11) on a
 * {@linkcode LogSnrSchedule} (alpha(t), sigma(t) and their derivatives, `schedules/log_snr.ts`),
 * t in [t0, 1] with t0 = `schedule.tMin`:
 *
 * `L_diff = int_{t0}^{1} 1 / (2 g^2) ||alpha (dF/dt(x, t) - dF/dt(x_hat, t)) - 1/2 (dsigma^2/dt - 2 r sigma^2 + g^2) (s(x) - s(x_hat))||^2 dt`
 *
 * with `r = d log alpha / dt`, `s(y) = (alpha F(y, t) - z_t) / sigma^2` and the noise injection
 * of the DDPM/VP choice `g^2 = dsigma^2/dt - 2 r sigma^2` (eq. 6), so the bracket's second factor
 * is g^2. This is the limit of the discrete KL of eq. 10 with `sigmaTilde^2_{s|t} ~ g^2 dt`; the
 * derivation (expanding eq. 10 to first order in dt) gives the minus sign and the factor 1/2 that
 * the extracted text of eq. 11 lacks ("+" and 1/g^2): we follow the derivation, and the test
 * "continuous objective is the limit of the discrete one" checks it against eq. 10 summed over
 * 4000 steps. With the identity F it is Song et al.'s `1/2 g^2 ||s - s_theta||^2`.
 *
 * Also `L_prior` at t = 1 and `L_rec = -log p(x | z_{t0})`, the discretized Gaussian with mean
 * F(x_hat(z_{t0}), 0) and std sigma(t0) / alpha(t0). t is drawn uniformly or (the paper's
 * choice) with density proportional to 1/g^2(t), by inverting its CDF tabulated on 4096 cells.
 * dF/dt comes from `transformTimeDerivative` (closed form or central difference).
 * The noise predictor is called at network time `T t` (DDPM steps: t0 = 1/T is step 1).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { ApplyOptions } from "../core/types.ts";
import {
  discretizedGaussianLogLikelihood,
  gaussianLogLikelihood,
} from "../eval/discretized_gaussian.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import { perImageShape } from "../models/_ddpm_steps.ts";
import { type NdmTransform, transformTimeDerivative } from "../models/ndm_transform.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import type { DdpmDecoder } from "./ddpm_loss.ts";

/** Settings of the continuous objective. */
export interface NdmContinuousOptions {
  /** The noise process; t runs over [schedule.tMin, 1]. */
  schedule: LogSnrSchedule;
  /** Network time scale: eps_theta is called at `T t`. @default 1000 */
  T?: number;
  /** Decoder. @default "discretized" */
  decoder?: DdpmDecoder;
  /** Central-difference step of dF/dt. @default 5e-3 */
  h?: number;
}

/**
 * The noise injection rate of the DDPM/VP choice, `g^2(t) = dsigma^2/dt - 2 (d log alpha / dt) sigma^2`
 * (NDM eq. 6); beta(t) for VP.
 *
 * @param schedule The process.
 * @param t A time.
 * @returns g^2(t).
 * @example
 * ```ts
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { diffusionRate } from "./ndm_continuous.ts";
 * const g2 = diffusionRate(vpLogSnrSchedule(), 0.5); // 0.1 + 19.9 * 0.5
 * ```
 */
export function diffusionRate(schedule: LogSnrSchedule, t: number): number {
  const a = schedule.alpha(t), s = schedule.sigma(t);
  return 2 * s * schedule.sigmaDeriv(t) - 2 * (schedule.alphaDeriv(t) / a) * s * s;
}

/** Times and importance weights for one batch. */
export interface ContinuousTimeDraws {
  /** Times in [tMin, 1]. */
  t: Float64Array;
  /** Weights 1 / p(t): the integral over [tMin, 1] is the mean of weight x integrand. */
  weights: Float64Array;
}

/**
 * Draws times for the continuous objective: uniform on [tMin, 1], or with density
 * proportional to 1/g^2(t) (NDM Section 3.2, after Song et al. 2021).
 *
 * @param rng The generator.
 * @param options Count, schedule and whether to importance-sample.
 * @returns Times and weights.
 * @example
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { drawContinuousTimes } from "./ndm_continuous.ts";
 * const { t, weights } = drawContinuousTimes(new Rng(0), {
 *   count: 4,
 *   schedule: vpLogSnrSchedule(),
 *   importance: true,
 * });
 * ```
 */
export function drawContinuousTimes(
  rng: Rng,
  options: { count: number; schedule: LogSnrSchedule; importance?: boolean },
): ContinuousTimeDraws {
  const { count, schedule, importance = true } = options;
  const t0 = schedule.tMin, t1 = Math.min(schedule.tMax, 1);
  const t = new Float64Array(count), weights = new Float64Array(count);
  if (!importance) {
    for (let i = 0; i < count; i++) {
      t[i] = t0 + (t1 - t0) * rng.uniform();
      weights[i] = t1 - t0;
    }
    return { t, weights };
  }
  const cells = 4096, grid = new Float64Array(cells + 1), cdf = new Float64Array(cells + 1);
  const density = (x: number) => 1 / diffusionRate(schedule, x);
  for (let j = 0; j <= cells; j++) grid[j] = t0 + ((t1 - t0) * j) / cells;
  for (let j = 1; j <= cells; j++) {
    cdf[j] = cdf[j - 1] + 0.5 * (density(grid[j - 1]) + density(grid[j])) * (grid[j] - grid[j - 1]);
  }
  const total = cdf[cells];
  for (let i = 0; i < count; i++) {
    const target = rng.uniform() * total;
    let lo = 0, hi = cells;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < target) lo = mid;
      else hi = mid;
    }
    const frac = (target - cdf[lo]) / (cdf[hi] - cdf[lo]);
    t[i] = grid[lo] + frac * (grid[hi] - grid[lo]);
    weights[i] = total / density(t[i]);
  }
  return { t, weights };
}

/** Per-image parts of the continuous objective, bits/dim; all owned by the caller. */
export interface NdmContinuousTerms {
  /** The integrand of L_diff at each image's t (multiply by a weight and average). */
  diffusion: tf.Tensor1D;
  /** L_prior. */
  prior: tf.Tensor1D;
  /** L_rec. */
  reconstruction: tf.Tensor1D;
}

/**
 * The continuous objective's parts for one draw: the eq. 11 integrand at t, L_prior, L_rec.
 *
 * @param eps eps_theta.
 * @param transform F.
 * @param x0 Data [N, ...].
 * @param options Schedule, times and the two noise draws.
 * @returns The parts, in bits per dimension.
 * @throws {RangeError} For times outside [tMin, 1] or noise not shaped like x0.
 * @example
 * ```ts ignore
 * const parts = ndmContinuousTerms(eps, f, x0, { schedule, t, noise, noiseRec });
 * ```
 */
export function ndmContinuousTerms(
  eps: EpsPredictor,
  transform: NdmTransform,
  x0: tf.Tensor,
  options: NdmContinuousOptions & {
    t: ArrayLike<number>;
    noise: tf.Tensor;
    noiseRec: tf.Tensor;
    opts?: ApplyOptions;
  },
): NdmContinuousTerms {
  const { schedule, T = 1000, decoder = "discretized", h = 5e-3, t, noise, noiseRec, opts } =
    options;
  const n = x0.shape[0], dims = x0.size / n, t0 = schedule.tMin;
  if (t.length !== n) throw new RangeError(`t has ${t.length} times for a batch of ${n}`);
  for (const z of [noise, noiseRec]) {
    if (!tf.util.arraysEqual(z.shape, x0.shape)) {
      throw new RangeError(`noise must have the shape of x0 [${x0.shape}], got [${z.shape}]`);
    }
  }
  const a = new Float32Array(2 * n), s = new Float32Array(2 * n), times = new Float32Array(2 * n);
  const g2 = new Float32Array(n);
  for (let i = 0; i < 2 * n; i++) {
    const ti = i < n ? t[i] : t0;
    if (!(ti >= t0 - 1e-12 && ti <= 1)) {
      throw new RangeError(`t[${i}] = ${ti} is outside [${t0}, 1]`);
    }
    a[i] = schedule.alpha(ti);
    s[i] = schedule.sigma(ti);
    times[i] = ti;
    if (i < n) g2[i] = diffusionRate(schedule, ti);
  }
  const shape = perImageShape(x0), shape2 = [2 * n, ...shape.slice(1)];
  const axes = x0.shape.slice(1).map((_, i) => i + 1);
  return tf.tidy(() => {
    // z_t and z_{t0} in one batch of 2N: one call of F and one of eps_theta.
    const x2 = tf.concat([x0, x0]);
    const tt = tf.tensor1d(times);
    const f2 = transform.apply(x2, tt, opts);
    const z2 = tf.add(
      tf.mul(f2, tf.tensor(a, shape2)),
      tf.mul(tf.concat([noise, noiseRec]), tf.tensor(s, shape2)),
    );
    const epsHat = eps(z2, tf.mul(tt, T) as tf.Tensor1D, undefined, opts);
    const xHat2 = tf.div(tf.sub(z2, tf.mul(epsHat, tf.tensor(s, shape2))), tf.tensor(a, shape2));
    const [fx] = tf.split(f2, 2);
    const [xHat, xHatRec] = tf.split(xHat2, 2);
    const ts = Array.from(t);
    // F(x_hat, t), and F(x_hat_rec, 0) for the decoder, in one call.
    const fh2 = transform.apply(
      tf.concat([xHat, xHatRec]),
      tf.tensor1d(Float32Array.from([...ts, ...new Array(n).fill(0)])),
      opts,
    );
    const [fh, decoderMean] = tf.split(fh2, 2);
    const dF = transformTimeDerivative(transform, tf.concat([x0, xHat]), [...ts, ...ts], {
      h,
      opts,
    });
    const [dFx, dFh] = tf.split(dF, 2);
    const aCol = tf.tensor(a.subarray(0, n), shape),
      s2Col = tf.square(tf.tensor(s.subarray(0, n), shape));
    const g2Col = tf.tensor(g2, shape);
    const scoreDiff = tf.div(tf.mul(tf.sub(fx, fh), aCol), s2Col);
    const inner = tf.sub(tf.mul(tf.sub(dFx, dFh), aCol), tf.mul(scoreDiff, g2Col));
    const diffusionNats = tf.div(tf.sum(tf.square(inner), axes), tf.mul(tf.tensor1d(g2), 2));
    // Prior at t = 1.
    const a1 = schedule.alpha(1), s1 = schedule.sigma(1);
    const f1 = transform.apply(x0, tf.fill([n], 1) as tf.Tensor1D, opts);
    const priorNats = tf.mul(
      tf.add(tf.mul(tf.sum(tf.square(f1), axes), a1 * a1), dims * (s1 * s1 - 1 - 2 * Math.log(s1))),
      0.5,
    );
    const std = s[n] / a[n];
    const logLik = decoder === "discretized"
      ? discretizedGaussianLogLikelihood(x0, { mean: decoderMean, std })
      : gaussianLogLikelihood(x0, { mean: decoderMean, std });
    const recNats = tf.neg(tf.sum(logLik, axes));
    const bits = (v: tf.Tensor) => tf.div(v, dims * Math.LN2) as tf.Tensor1D;
    return {
      diffusion: bits(diffusionNats),
      prior: bits(priorNats),
      reconstruction: bits(recNats),
    };
  });
}
