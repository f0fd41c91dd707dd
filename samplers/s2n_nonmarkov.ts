/**
 * The continuous non-Markovian model of signal-to-noise diffusion (S2N paper, Section 3.2,
 * eq. 9 and Theorem 4, eq. 10), a continuous-time DDIM (Song et al. 2020a, eq. 12).
 *
 * Eq. 9: with `q(z_s | z_t, x) = N(alpha_s x + sqrt(sigma_s^2 - beta^2) (z_t - alpha_t x) / sigma_t,
 * beta^2 I)` and x replaced by x_hat,
 * `z_s = alpha_s x_hat + sqrt(sigma_s^2 - beta(s,t)^2) eps_hat + beta(s,t) n`.
 * beta = 0 is DDIM (the generalized step with rho = gamma = 0); DDIM's eta sets
 * `beta = eta sigma_s sqrt(1 - exp(lambda_t - lambda_s))`, eta times the posterior std, and
 * eta = 1 is the posterior step (rho = gamma = delta = 1 in `s2n_backward.ts`). We use this
 * first form of eq. 9: the expanded second form as extracted has `(1 + exp((lambda_t -
 * lambda_s)/2) sqrt(1 - beta^2/sigma_s^2))` as the coefficient of z_t, whose "1 +" is a typo
 * (the first form gives `alpha_s/alpha_t exp((lambda_t - lambda_s)/2) sqrt(...)`).
 *
 * Theorem 4: with `beta(s, t)^2 = b(s) - b(t)` for a decreasing b, letting s -> t in eq. 9 gives
 * `dz = [alpha'/alpha z - (lambda' sigma / 2 + b' / (2 sigma)) eps] dt + sqrt(-b') dw`.
 * (Our derivation: `sqrt(sigma_s^2 - beta^2) ~ sigma_s + b'(t) dt / (2 sigma)` for s = t - dt.)
 * The extracted eq. 10 shows an extra `lambda'/2 exp(lambda/2) z` term and the opposite sign on
 * the b' term; both disagree with the limit above, and with Theorem 2, which this form recovers
 * exactly for `b' = -rho^2 g^2 = rho^2 sigma^2 lambda'` (drift coefficient (1 + rho^2)/2). We
 * implement the derived form and test that identity.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { checkTimes, denoiseScaled, runTimeGrid } from "./_s2n_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** How much noise eq. 9 injects: DDIM's eta, or beta(s, t) itself. */
export interface NonMarkovNoiseOptions {
  /** beta = eta x the posterior std (0: DDIM, 1: ancestral). Not with `beta`. @default 0 */
  eta?: number;
  /** beta(s, t) in [0, sigma(s)] for s < t. Not with `eta`. @default undefined */
  beta?: (s: number, t: number) => number;
}

/** Options of {@linkcode nonMarkovStep}. */
export interface NonMarkovStepOptions extends NonMarkovNoiseOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Start time t (sigma(t) > 0). */
  t: number;
  /** End time s < t. */
  s: number;
  /** Source of n; required when beta > 0. @default undefined */
  noise?: NoiseSource;
  /** Conditioning passed to the denoiser. @default undefined */
  cond?: Conditioning;
}

/**
 * beta(s, t) of eq. 9 from `eta` or `beta`.
 *
 * @param schedule The noise schedule.
 * @param options t, s and eta or beta.
 * @returns beta in [0, sigma(s)].
 * @throws {TypeError} When both eta and beta are given.
 * @throws {RangeError} When beta falls outside [0, sigma(s)] or eta is negative.
 * @example eta = 1: the posterior std
 * ```ts
 * import { nonMarkovBeta } from "./s2n_nonmarkov.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * const beta = nonMarkovBeta(vpLogSnrSchedule(), { t: 0.8, s: 0.5, eta: 1 });
 * ```
 */
export function nonMarkovBeta(
  schedule: LogSnrSchedule,
  options: NonMarkovNoiseOptions & { t: number; s: number },
): number {
  const { t, s, eta, beta } = options;
  if (eta !== undefined && beta !== undefined) {
    throw new TypeError("give either eta or beta, not both");
  }
  const sigmaS = schedule.sigma(s);
  let b: number;
  if (beta !== undefined) {
    b = beta(s, t);
  } else {
    const e = eta ?? 0;
    if (!(e >= 0) || !Number.isFinite(e)) {
      throw new RangeError(`eta must be a finite number >= 0, got ${e}`);
    }
    b = e === 0 ? 0 : e * sigmaS * Math.sqrt(-Math.expm1(schedule.logSnr(t) - schedule.logSnr(s)));
  }
  if (!(b >= 0 && b <= sigmaS)) {
    throw new RangeError(
      `beta(${s}, ${t}) = ${b} must lie in [0, sigma(s) = ${sigmaS}]; lower eta or beta`,
    );
  }
  return b;
}

/**
 * One step of eq. 9, written in x_hat:
 * `z_s = c/sigma_t z_t + (alpha_s - c alpha_t/sigma_t) x_hat + beta n`,
 * `c = sqrt(sigma_s^2 - beta^2)`. Call inside `tf.tidy`.
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param z z_t; not disposed.
 * @param options Schedule, times, eta or beta, noise and cond.
 * @returns z_s and the denoiser output.
 * @throws {TypeError} When beta > 0 and no noise is given, or both eta and beta.
 * @throws {RangeError} When s >= t, sigma(t) <= 0 or beta is out of range.
 * @example A DDIM step (eta = 0)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { nonMarkovStep } from "./s2n_nonmarkov.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const out = tf.tidy(() => nonMarkovStep(zero, tf.ones([2, 3]), { schedule, t: 0.8, s: 0.5 }));
 * ```
 */
export function nonMarkovStep(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: NonMarkovStepOptions,
): { z: tf.Tensor; denoised: tf.Tensor } {
  const { schedule, t, s, noise, cond } = options;
  if (!(s < t)) throw new RangeError(`a backward step needs s < t, got s=${s}, t=${t}`);
  const alphaT = schedule.alpha(t), sigmaT = schedule.sigma(t);
  if (!(sigmaT > 0) || !(alphaT > 0)) {
    throw new RangeError(`step from t=${t} needs alpha, sigma > 0, got ${alphaT}, ${sigmaT}`);
  }
  const beta = nonMarkovBeta(schedule, options);
  if (beta > 0 && noise === undefined) {
    throw new TypeError(`beta = ${beta} > 0 adds noise: pass noise: perImageNoise(seeds)`);
  }
  const sigmaS = schedule.sigma(s);
  const c = Math.sqrt(Math.max(0, sigmaS * sigmaS - beta * beta));
  const denoised = denoiseScaled(denoiser, z, { alpha: alphaT, sigmaEdm: sigmaT / alphaT, cond });
  let next = tf.add(
    tf.mul(z, c / sigmaT),
    tf.mul(denoised, schedule.alpha(s) - c * alphaT / sigmaT),
  );
  if (beta > 0 && noise !== undefined) next = tf.add(next, tf.mul(noise.randn(z.shape), beta));
  return { z: next, denoised };
}

/** Options of {@linkcode sampleNonMarkov}. */
export interface NonMarkovSamplerOptions extends SamplerOptions, NonMarkovNoiseOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N; sigma(t_i) > 0 for i < N. */
  times: ArrayLike<number>;
  /** Source of n, one generator per image; required when beta > 0. @default undefined */
  noise?: NoiseSource;
  /** Denoise once more at t_N. @default false */
  finalDenoise?: boolean;
}

/**
 * Samples with eq. 9 over a time grid (continuous DDIM).
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param z The initial sample at t_0; never disposed.
 * @param options Schedule, times, eta or beta, noise and the shared sampler options.
 * @returns z_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} When noise is needed and missing.
 * @throws {RangeError} For a bad grid or beta.
 * @example DDIM with eta = 0.5 on a VP grid that ends at zero noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { sampleNonMarkov } from "./s2n_nonmarkov.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const times = s2nTimeGrid(schedule, { numSteps: 10, endTime: 0 });
 * const noise = perImageNoise([0, 1]);
 * const z0 = tf.mul(noise.randn([2, 3]), schedule.sigma(times[0]));
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const { x } = await sampleNonMarkov(zero, z0, { schedule, times, eta: 0.5, noise });
 * x.dispose();
 * ```
 */
export async function sampleNonMarkov(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: NonMarkovSamplerOptions,
): Promise<SampleResult> {
  const { schedule, times, eta, beta, noise, cond } = options;
  checkTimes(times);
  for (let i = 0; i + 1 < times.length; i++) {
    const b = nonMarkovBeta(schedule, { t: times[i], s: times[i + 1], eta, beta });
    if (b > 0 && noise === undefined) {
      throw new TypeError(`beta = ${b} > 0 adds noise: pass noise: perImageNoise(seeds)`);
    }
  }
  return await runTimeGrid(
    denoiser,
    z,
    options,
    (zi, t, s) => nonMarkovStep(denoiser, zi, { schedule, t, s, eta, beta, noise, cond }),
  );
}

/** Options of {@linkcode sampleNonMarkovSde}. */
export interface NonMarkovSdeOptions extends SamplerOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N; sigma(t_i) > 0 for i < N. */
  times: ArrayLike<number>;
  /** b'(t) <= 0, where beta(s, t)^2 = b(s) - b(t) (Theorem 4). */
  bDeriv: (t: number) => number;
  /** Source of dw; required when some b'(t_i) < 0. @default undefined */
  noise?: NoiseSource;
  /** Denoise once more at t_N. @default false */
  finalDenoise?: boolean;
}

/**
 * Euler-Maruyama for the SDE of Theorem 4 (derived form, see the module doc):
 * `z_s = z_t + (s - t) [f z_t - k (z_t - alpha_t x_hat)] + sqrt(-b'(t) (t - s)) n`,
 * `k = lambda'/2 + b'/(2 sigma^2)`.
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param z The initial sample at t_0; never disposed.
 * @param options Schedule, times, b' and noise.
 * @returns z_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} When noise is needed and missing.
 * @throws {RangeError} For a bad grid or b'(t) > 0.
 * @example b' = 0 is the probability-flow ODE
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleNonMarkovSde } from "./s2n_nonmarkov.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const times = s2nTimeGrid(schedule, { numSteps: 50, spacing: "logSnr" });
 * const z0 = tf.mul(tf.randomNormal([2, 3]), schedule.sigma(times[0]));
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const { x } = await sampleNonMarkovSde(zero, z0, { schedule, times, bDeriv: () => 0 });
 * x.dispose();
 * ```
 */
export async function sampleNonMarkovSde(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: NonMarkovSdeOptions,
): Promise<SampleResult> {
  const { schedule, times, bDeriv, noise, cond } = options;
  checkTimes(times);
  const steps = Array.from({ length: times.length - 1 }, (_, i) => {
    const t = times[i];
    const alpha = schedule.alpha(t), sigma = schedule.sigma(t), db = bDeriv(t);
    if (!(sigma > 0) || !(alpha > 0)) {
      throw new RangeError(`times[${i}] = ${t} needs alpha, sigma > 0, got ${alpha}, ${sigma}`);
    }
    if (!(db <= 0) || !Number.isFinite(db)) {
      throw new RangeError(`bDeriv(${t}) = ${db}: b must decrease (b' <= 0, finite)`);
    }
    if (db < 0 && noise === undefined) {
      throw new TypeError(`bDeriv(${t}) < 0 adds noise: pass noise: perImageNoise(seeds)`);
    }
    const f = schedule.alphaDeriv(t) / alpha;
    const k = 0.5 * schedule.logSnrDeriv(t) + 0.5 * db / (sigma * sigma);
    return { alpha, sigma, db, f, k };
  });
  let i = 0;
  return await runTimeGrid(denoiser, z, options, (zi, t, s) => {
    const { alpha, sigma, db, f, k } = steps[i++];
    const dt = s - t;
    const denoised = denoiseScaled(denoiser, zi, { alpha, sigmaEdm: sigma / alpha, cond });
    let next = tf.add(tf.mul(zi, 1 + dt * (f - k)), tf.mul(denoised, dt * k * alpha));
    if (db < 0 && noise !== undefined) {
      next = tf.add(next, tf.mul(noise.randn(zi.shape), Math.sqrt(-db * -dt)));
    }
    return { z: next, denoised };
  });
}
