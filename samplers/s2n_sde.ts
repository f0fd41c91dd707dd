/**
 * Euler-Maruyama for the backward SDE family of signal-to-noise diffusion models (S2N paper,
 * Theorem 2, eq. 4-5):
 * `dz = [f z - (1 + rho^2)/2 g^2 score] dt + rho g dw`, with `f = alpha'/alpha`,
 * `g^2 = -sigma^2 lambda'` (Theorem 1) and `score = -eps / sigma`. rho = 0 is the
 * probability-flow ODE, rho = 1 the reverse SDE of Song et al.; every rho has the same marginals.
 *
 * With `eps_hat = (z - alpha x_hat) / sigma` the drift is
 * `f z - (1 + rho^2)/2 lambda' (z - alpha x_hat)`, so one step from t to s < t is
 * `z_s = z_t + (s - t) drift(z_t, t) + |rho| g(t) sqrt(t - s) n`. Unlike the exponential
 * integrator of `s2n_backward.ts`, this is first order in t and depends on how t parametrizes
 * lambda, so grids uniform in lambda (`s2nTimeGrid`) keep the steps even.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { checkTimes, denoiseScaled, runTimeGrid } from "./_s2n_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleS2nSde}. */
export interface S2nSdeOptions extends SamplerOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N; sigma(t_i) > 0 for i < N. */
  times: ArrayLike<number>;
  /** Noise scale rho: 0 probability-flow ODE, 1 reverse SDE. @default 1 */
  rho?: number;
  /** Source of dw, one generator per image; required when rho != 0. @default undefined */
  noise?: NoiseSource;
  /** Denoise once more at t_N (`alpha D(z / alpha; sigma / alpha)`). @default false */
  finalDenoise?: boolean;
}

/** Options of {@linkcode s2nSdeStep}. */
export interface S2nSdeStepOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Start time t (alpha, sigma > 0). */
  t: number;
  /** End time s < t. */
  s: number;
  /** Noise scale rho. */
  rho: number;
  /** Source of dw; required when rho != 0. @default undefined */
  noise?: NoiseSource;
  /** Conditioning passed to the denoiser. @default undefined */
  cond?: Conditioning;
}

/**
 * One Euler-Maruyama step of eq. 5 from t to s < t. Call inside `tf.tidy`.
 *
 * @param denoiser The denoiser in EDM's unscaled space.
 * @param z z_t; not disposed.
 * @param options Schedule, t, s, rho, noise (when rho != 0) and cond.
 * @returns z_s and the denoiser output.
 * @throws {TypeError} When rho != 0 and no noise is given.
 * @throws {RangeError} When s >= t or sigma(t) is not positive.
 * @example A probability-flow ODE step
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { s2nSdeStep } from "./s2n_sde.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const out = tf.tidy(() => s2nSdeStep(zero, tf.ones([2, 3]), { schedule, t: 0.8, s: 0.7, rho: 0 }));
 * ```
 */
export function s2nSdeStep(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: S2nSdeStepOptions,
): { z: tf.Tensor; denoised: tf.Tensor } {
  const { schedule, t, s, rho, noise, cond } = options;
  if (!(s < t)) throw new RangeError(`a backward step needs s < t, got s=${s}, t=${t}`);
  const alpha = schedule.alpha(t), sigma = schedule.sigma(t);
  if (!(sigma > 0) || !(alpha > 0)) {
    throw new RangeError(`step from t=${t} needs alpha, sigma > 0, got ${alpha}, ${sigma}`);
  }
  if (rho !== 0 && noise === undefined) {
    throw new TypeError(`rho = ${rho} adds noise: pass noise: perImageNoise(seeds), or rho: 0`);
  }
  const f = schedule.alphaDeriv(t) / alpha, lambdaDeriv = schedule.logSnrDeriv(t);
  const k = 0.5 * (1 + rho * rho) * lambdaDeriv;
  const dt = s - t;
  const denoised = denoiseScaled(denoiser, z, { alpha, sigmaEdm: sigma / alpha, cond });
  // z + dt [(f - k) z + k alpha x_hat]
  let next = tf.add(tf.mul(z, 1 + dt * (f - k)), tf.mul(denoised, dt * k * alpha));
  if (rho !== 0 && noise !== undefined) {
    const g = Math.sqrt(-sigma * sigma * lambdaDeriv);
    next = tf.add(next, tf.mul(noise.randn(z.shape), Math.abs(rho) * g * Math.sqrt(-dt)));
  }
  return { z: next, denoised };
}

/**
 * Solves the backward SDE (eq. 5) with Euler-Maruyama over a time grid.
 *
 * @param denoiser The denoiser D(x; sigma) in EDM's unscaled space.
 * @param z The initial sample at t_0 in the schedule's space; never disposed.
 * @param options Schedule, times, rho, noise, finalDenoise and the shared sampler options.
 * @returns z_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} When rho != 0 and no noise is given.
 * @throws {RangeError} For a bad grid or rho.
 * @example The reverse SDE on 200 VP steps uniform in lambda
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { sampleS2nSde } from "./s2n_sde.ts";
 * import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
 * import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = vpLogSnrSchedule();
 * const times = s2nTimeGrid(schedule, { numSteps: 200, spacing: "logSnr" });
 * const noise = perImageNoise([0, 1]);
 * const z0 = tf.mul(noise.randn([2, 3]), schedule.sigma(times[0]));
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const { x } = await sampleS2nSde(zero, z0, { schedule, times, rho: 1, noise, finalDenoise: true });
 * x.dispose();
 * ```
 */
export async function sampleS2nSde(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: S2nSdeOptions,
): Promise<SampleResult> {
  const { schedule, times, rho = 1, noise, cond } = options;
  if (!Number.isFinite(rho)) throw new RangeError(`rho must be a finite number, got ${rho}`);
  if (rho !== 0 && noise === undefined) {
    throw new TypeError(`rho = ${rho} adds noise: pass noise: perImageNoise(seeds), or rho: 0`);
  }
  checkTimes(times);
  for (let i = 0; i + 1 < times.length; i++) {
    if (!(schedule.sigma(times[i]) > 0) || !(schedule.alpha(times[i]) > 0)) {
      throw new RangeError(
        `times[${i}] = ${times[i]}: every start time needs alpha > 0 and sigma > 0 ` +
          `(only the last time may be at zero noise)`,
      );
    }
  }
  return await runTimeGrid(
    denoiser,
    z,
    options,
    (zi, t, s) => s2nSdeStep(denoiser, zi, { schedule, t, s, rho, noise, cond }),
  );
}
