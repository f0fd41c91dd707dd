/**
 * The generalized backward step of signal-to-noise diffusion models (S2N paper, Corollary 1,
 * eq. 7; eq. 12 when rho = 0) and a sampler that loops it over a time grid.
 *
 * Derivation. The backward SDE of Theorem 2 (eq. 5) with `sigma = alpha exp(-lambda/2)` is
 * `dz = [alpha'/alpha z - (1 + rho^2)/2 alpha exp(-lambda/2) lambda' eps] dt + rho g dw`.
 * Variation of constants on `z / alpha` gives eq. 6 from t to s < t:
 * `z_s = alpha_s/alpha_t z_t - (1+rho^2)/2 alpha_s int_t^s exp(-lambda/2) eps dlambda
 *        + rho alpha_s int_t^s sqrt(-exp(-lambda) lambda') dw`.
 * Corollary 1 freezes the scaled noise prediction `exp(gamma lambda/2) eps` (not eps itself) at
 * its value at t, and integrates the rest, `exp(-(1+gamma) lambda/2)`, exactly over
 * [lambda_t, lambda_s]. With `h = lambda_s - lambda_t >= 0` and
 * `phi = (1 - exp(-(1+gamma) h/2)) / (1+gamma)` (h/2 at gamma = -1):
 *
 * `z_s = alpha_s/alpha_t z_t - (1+rho^2) alpha_s (sigma_t/alpha_t) phi eps_hat + std n`,
 * `std = |rho| sigma_t sqrt(1 - exp(-h)) (alpha_s/alpha_t)^(1-delta) (sigma_s/sigma_t)^delta`.
 *
 * The drift is negative: eq. 12 has the right sign and eq. 7's "+" is a typo, which the special
 * cases confirm (`alpha_t sqrt(exp(-lambda_t) - exp(-lambda_s)) = sigma_t sqrt(1 - exp(-h))`):
 * - gamma = 0, rho = 0: `z_s = alpha_s x_hat + sigma_s eps_hat`, DDIM, the first-order
 *   exponential integrator in lambda (DPM-Solver-1), which in `x = z/alpha` is Euler's method in
 *   the EDM noise level `sigma/alpha = exp(-lambda/2)` (EDM Algorithm 1 without its correction,
 *   with sigma(t) = t, s(t) = 1; the paper's "Euler solver"). It is not EDM's Euler in t on a VP
 *   `timeSteps` grid, which steps the ODE in t.
 * - gamma = 1, delta = 1, rho = 1: mean and variance of the posterior q(z_s | z_t, x = x_hat),
 *   eq. 8 (Kingma et al. 2021's ancestral step).
 *
 * What the parameters do. `rho` scales the injected noise, and the drift by (1 + rho^2), as in
 * Theorem 2: 0 is the probability-flow ODE, 1 the reverse SDE. `gamma` chooses which quantity is
 * held constant over a step (eps times exp(gamma lambda/2)); gamma = 0 holds eps (exact for a
 * constant eps), larger gamma shrinks phi, so each step moves less toward x_hat: the paper finds
 * a small positive gamma (0.026) sharpens deterministic samples. `delta` moves the noise scale
 * geometrically from `alpha_s/alpha_t` (delta = 0: the exact variance of eq. 6's stochastic
 * integral) to `sigma_s/sigma_t` (delta = 1: the posterior's).
 *
 * The denoiser works in EDM's unscaled space: `x_hat = D(z/alpha_t; sigma_t/alpha_t)`, and
 * `eps_hat = (z_t - alpha_t x_hat) / sigma_t`. The tensor step uses the same formula written in
 * x_hat, `z_s = A z_t + B x_hat + std n` with `A = alpha_s/alpha_t (1 - (1+rho^2) phi)`,
 * `B = (1+rho^2) alpha_s phi`, which never divides by sigma_t and is exact at sigma_s = 0
 * (lambda_s = +Infinity gives phi = 1/(1+gamma), so gamma > -1 is needed there).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { checkTimes, denoiseScaled, runTimeGrid } from "./_s2n_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** The three parameters of the generalized step. */
export interface S2nParams {
  /** Noise scale rho (Theorem 2): 0 is the probability-flow ODE, 1 the reverse SDE. @default 0 */
  rho?: number;
  /** Exponent gamma of the frozen quantity exp(gamma lambda / 2) eps. @default 0 */
  gamma?: number;
  /** Noise shape delta >= 0: 0 eq. 6's exact variance, 1 the posterior's. @default 1 */
  delta?: number;
}

/** Options of {@linkcode s2nStepCoefficients}. */
export interface S2nCoefficientOptions extends S2nParams {
  /** Start time t (sigma(t) > 0). */
  t: number;
  /** End time s < t (sigma(s) may be 0). */
  s: number;
}

/**
 * The scalars of one step from t to s, in both forms:
 * `z_s = zScale z_t + epsCoef eps_hat + noiseStd n` (the paper's, eq. 7) and
 * `z_s = zCoef z_t + x0Coef x_hat + noiseStd n` (the one the tensors use).
 */
export interface S2nStepCoefficients {
  /** alpha_s / alpha_t. */
  zScale: number;
  /** -(1 + rho^2) alpha_s (sigma_t / alpha_t) phi. */
  epsCoef: number;
  /** alpha_s / alpha_t (1 - (1 + rho^2) phi). */
  zCoef: number;
  /** (1 + rho^2) alpha_s phi. */
  x0Coef: number;
  /** |rho| sigma_t sqrt(1 - exp(-h)) (alpha_s/alpha_t)^(1-delta) (sigma_s/sigma_t)^delta. */
  noiseStd: number;
  /** The EDM noise level sigma_t / alpha_t the denoiser sees. */
  sigmaEdm: number;
  /** sigma_s / alpha_s (0 at zero noise). */
  sigmaEdmNext: number;
}

/**
 * Checks and fills in rho, gamma, delta.
 *
 * @throws {RangeError} For a non-finite rho or gamma, or delta not finite and >= 0.
 * @example
 * ```ts
 * import { resolveS2nParams } from "./s2n_backward.ts";
 * const { rho, gamma, delta } = resolveS2nParams({ gamma: 0.026 }); // 0, 0.026, 1
 * ```
 */
export function resolveS2nParams(params: S2nParams): Required<S2nParams> {
  const { rho = 0, gamma = 0, delta = 1 } = params;
  if (!Number.isFinite(rho)) throw new RangeError(`rho must be a finite number, got ${rho}`);
  if (!Number.isFinite(gamma)) throw new RangeError(`gamma must be a finite number, got ${gamma}`);
  if (!Number.isFinite(delta) || delta < 0) {
    throw new RangeError(`delta must be a finite number >= 0, got ${delta}`);
  }
  return { rho, gamma, delta };
}

/**
 * The coefficients of the generalized step (eq. 7, sign fixed) from t to s.
 *
 * @param schedule The noise schedule.
 * @param options t, s and rho, gamma, delta.
 * @returns The step's scalars.
 * @throws {RangeError} Unless s < t, alpha > 0 at both, sigma(t) > 0 and lambda(s) >= lambda(t);
 *   or when sigma(s) = 0 with gamma <= -1 (the integral diverges).
 * @example DDIM coefficients: zCoef = sigma_s / sigma_t
 * ```ts
 * import { s2nStepCoefficients } from "./s2n_backward.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * const vp = vpLogSnrSchedule();
 * const c = s2nStepCoefficients(vp, { t: 0.8, s: 0.5 });
 * // c.zCoef ~ vp.sigma(0.5) / vp.sigma(0.8)
 * ```
 */
export function s2nStepCoefficients(
  schedule: LogSnrSchedule,
  options: S2nCoefficientOptions,
): S2nStepCoefficients {
  const { t, s } = options;
  const { rho, gamma, delta } = resolveS2nParams(options);
  const alphaT = schedule.alpha(t), sigmaT = schedule.sigma(t);
  const alphaS = schedule.alpha(s), sigmaS = schedule.sigma(s);
  if (!(s < t)) throw new RangeError(`a backward step needs s < t, got s=${s}, t=${t}`);
  if (!(alphaT > 0) || !(alphaS > 0) || !(sigmaT > 0) || !(sigmaS >= 0)) {
    throw new RangeError(
      `step ${t} -> ${s} of "${schedule.name}" needs alpha > 0 at both times, sigma(t) > 0 and ` +
        `sigma(s) >= 0; got alpha=${alphaT}, ${alphaS}, sigma=${sigmaT}, ${sigmaS}`,
    );
  }
  const h = schedule.logSnr(s) - schedule.logSnr(t);
  if (!(h >= 0)) {
    throw new RangeError(
      `step ${t} -> ${s} of "${schedule.name}" must not lower lambda, got h = ${h}; ` +
        `times must decrease where lambda decreases in t`,
    );
  }
  const a = 1 + gamma;
  // phi = int_0^h exp(-a u / 2) du / 2 (the frozen part's exact integral).
  const phi = a === 0 ? h / 2 : -Math.expm1(-a * h / 2) / a;
  if (!Number.isFinite(phi)) {
    throw new RangeError(
      `gamma = ${gamma} with a step to zero noise (${t} -> ${s}) diverges; use gamma > -1 ` +
        `or end the times above zero noise`,
    );
  }
  const c = 1 + rho * rho;
  const zScale = alphaS / alphaT;
  const ratioStd = zScale ** (1 - delta) * (sigmaS / sigmaT) ** delta;
  return {
    zScale,
    epsCoef: -c * alphaS * (sigmaT / alphaT) * phi,
    zCoef: zScale * (1 - c * phi),
    x0Coef: c * alphaS * phi,
    noiseStd: rho === 0 ? 0 : Math.abs(rho) * sigmaT * Math.sqrt(-Math.expm1(-h)) * ratioStd,
    sigmaEdm: sigmaT / alphaT,
    sigmaEdmNext: sigmaS / alphaS,
  };
}

/** Options of {@linkcode s2nStep}. */
export interface S2nStepOptions extends S2nCoefficientOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Source of n; needed when the step adds noise (rho != 0 and noiseStd > 0). @default undefined */
  noise?: NoiseSource;
  /** Conditioning passed to the denoiser. @default undefined */
  cond?: Conditioning;
}

/**
 * One generalized step from z_t to z_s. Call inside `tf.tidy`.
 *
 * @param denoiser The denoiser (EDM's unscaled space).
 * @param z The sample z_t; not disposed.
 * @param options Schedule, times, rho, gamma, delta and noise.
 * @returns z_s and the denoiser output x_hat (both new tensors).
 * @throws {TypeError} When the step adds noise and no `noise` is given.
 * @throws {RangeError} As {@linkcode s2nStepCoefficients}.
 * @example A DDIM step
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { s2nStep } from "./s2n_backward.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const out = tf.tidy(() => s2nStep((x) => tf.zerosLike(x), tf.ones([2, 3]), { schedule, t: 0.8, s: 0.5 }));
 * ```
 */
export function s2nStep(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: S2nStepOptions,
): { z: tf.Tensor; denoised: tf.Tensor } {
  const { schedule, t, noise, cond } = options;
  const k = s2nStepCoefficients(schedule, options);
  if (k.noiseStd > 0 && noise === undefined) {
    throw new TypeError(
      `rho = ${options.rho} adds noise: pass noise: perImageNoise(seeds), or rho: 0`,
    );
  }
  const denoised = denoiseScaled(denoiser, z, {
    alpha: schedule.alpha(t),
    sigmaEdm: k.sigmaEdm,
    cond,
  });
  let next = tf.add(tf.mul(z, k.zCoef), tf.mul(denoised, k.x0Coef));
  if (k.noiseStd > 0 && noise !== undefined) {
    next = tf.add(next, tf.mul(noise.randn(z.shape), k.noiseStd));
  }
  return { z: next, denoised };
}

/** Options of {@linkcode sampleS2n}. */
export interface S2nSamplerOptions extends SamplerOptions, S2nParams {
  /** The noise schedule the times refer to. */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N (see `s2nTimeGrid`); sigma(t_i) > 0 for i < N. */
  times: ArrayLike<number>;
  /** Source of the step noise, one generator per image (`perImageNoise`); required when rho != 0. @default undefined */
  noise?: NoiseSource;
  /**
   * After the last step, replace z_N by `alpha_N D(z_N / alpha_N; sigma_N / alpha_N)` (one more
   * denoiser call), for grids that end above zero noise, e.g. VE. @default false
   */
  finalDenoise?: boolean;
}

/**
 * Samples with the generalized S2N step over a time grid.
 *
 * @param denoiser The denoiser D(x; sigma) in EDM's unscaled space.
 * @param z The initial sample at t_0 in the schedule's space, e.g. `alpha_0 x + sigma_0 n` or,
 *   at the noise end, `sigma(t_0) n`; never disposed.
 * @param options Schedule, times, rho, gamma, delta, noise and the shared sampler options.
 *   `onStep` records report `sigma`/`sigmaNext` as EDM noise levels sigma/alpha, `x` in z-space.
 * @returns z_N (owned by the caller; equals the data x where alpha(t_N) = 1 and sigma(t_N) = 0)
 *   and the number of denoiser evaluations (N, plus 1 with `finalDenoise`).
 * @throws {TypeError} When rho != 0 and no `noise` is given.
 * @throws {RangeError} For fewer than 2 times, bad parameters or a bad step (see
 *   {@linkcode s2nStepCoefficients}).
 * @example Paper's deterministic setting, gamma = 0.026, on a VP grid that ends at zero noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleS2n } from "./s2n_backward.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const times = s2nTimeGrid(schedule, { numSteps: 18, endTime: 0 });
 * const z0 = tf.mul(tf.randomNormal([4, 2]), schedule.sigma(times[0]));
 * const { x, nfe } = await sampleS2n((x) => tf.zerosLike(x), z0, { schedule, times, gamma: 0.026 });
 * x.dispose();
 * ```
 */
export async function sampleS2n(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: S2nSamplerOptions,
): Promise<SampleResult> {
  const { schedule, times, noise, cond } = options;
  const params = resolveS2nParams(options);
  checkTimes(times);
  if (params.rho !== 0 && noise === undefined) {
    throw new TypeError(
      `rho = ${params.rho} adds noise: pass noise: perImageNoise(seeds), or rho: 0`,
    );
  }
  // Check every step before the first denoiser call.
  for (let i = 0; i + 1 < times.length; i++) {
    s2nStepCoefficients(schedule, { t: times[i], s: times[i + 1], ...params });
  }
  return await runTimeGrid(
    denoiser,
    z,
    options,
    (zi, t, s) => s2nStep(denoiser, zi, { schedule, t, s, ...params, noise, cond }),
  );
}
