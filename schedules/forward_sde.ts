/**
 * The forward SDE of a signal-to-noise diffusion model (S2N paper, Theorem 1, eq. 2-3):
 * `dz = f(t) z dt + g(t) dw` with `f = alpha'/alpha` and
 * `g^2 = -alpha^2 exp(-lambda) lambda' = -sigma^2 lambda'`, whose transition is
 * `q(z_t | z_s) = N(alpha_t / alpha_s z_s, alpha_t^2 (exp(-lambda_t) - exp(-lambda_s)) I)`,
 * and an Euler-Maruyama simulator of it (used by tests to check that f and g give the marginals
 * `q(z_t | x) = N(alpha_t x, sigma_t^2 I)`).
 *
 * Where sigma(t) = 0 (t = 0 for VP) the product `sigma^2 lambda'` is 0 times infinity; there g^2
 * is taken as the limit `Sigma_{t+h|t} / h` with h = 1e-7, which is `beta_min` for VP.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { LogSnrSchedule } from "./log_snr.ts";

/** Drift and squared diffusion of the forward SDE at one time. */
export interface ForwardSdeCoefficients {
  /** f(t) = alpha'(t) / alpha(t). */
  f: number;
  /** g(t)^2 = -sigma(t)^2 lambda'(t) >= 0. */
  g2: number;
}

/**
 * f(t) and g(t)^2 of S2N Theorem 1.
 *
 * @param schedule The noise schedule.
 * @param t The time.
 * @returns `{ f, g2 }`.
 * @example VP: g^2(t) = beta(t) = beta_min + beta_d t
 * ```ts
 * import { forwardSdeCoefficients } from "./forward_sde.ts";
 * import { vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const { g2 } = forwardSdeCoefficients(vpLogSnrSchedule(), 0.5); // 0.1 + 19.9 * 0.5
 * ```
 */
export function forwardSdeCoefficients(
  schedule: LogSnrSchedule,
  t: number,
): ForwardSdeCoefficients {
  const f = schedule.alphaDeriv(t) / schedule.alpha(t);
  const sigma = schedule.sigma(t);
  let g2 = -sigma * sigma * schedule.logSnrDeriv(t);
  if (!Number.isFinite(g2)) {
    const h = 1e-7 * Math.max(1, Math.abs(t));
    g2 = forwardTransition(schedule, { s: t, t: t + h }).variance / h;
  }
  return { f, g2 };
}

/** Times of a transition q(z_t | z_s), s < t. */
export interface TransitionTimes {
  /** Earlier time s. */
  s: number;
  /** Later time t. */
  t: number;
}

/** The Gaussian transition q(z_t | z_s) = N(scale z_s, variance I). */
export interface ForwardTransition {
  /** alpha_t / alpha_s. */
  scale: number;
  /** alpha_t^2 (exp(-lambda_t) - exp(-lambda_s)) = sigma_t^2 - scale^2 sigma_s^2. */
  variance: number;
}

/**
 * The transition q(z_t | z_s) of S2N Theorem 1.
 *
 * Computed as `sigma_t^2 (1 - exp(lambda_t - lambda_s))` so it stays accurate for close times.
 *
 * @param schedule The noise schedule.
 * @param times The times, s <= t.
 * @returns Scale and variance.
 * @throws {RangeError} When s > t.
 * @example From the data (s = 0) the transition is the marginal
 * ```ts
 * import { forwardTransition } from "./forward_sde.ts";
 * import { vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const vp = vpLogSnrSchedule();
 * const { scale, variance } = forwardTransition(vp, { s: 0, t: 0.5 });
 * // scale = alpha(0.5), variance = sigma(0.5)^2
 * ```
 */
export function forwardTransition(
  schedule: LogSnrSchedule,
  times: TransitionTimes,
): ForwardTransition {
  const { s, t } = times;
  if (!(s <= t)) throw new RangeError(`q(z_t | z_s) needs s <= t, got s=${s}, t=${t}`);
  const scale = schedule.alpha(t) / schedule.alpha(s);
  const sigmaT = schedule.sigma(t);
  const expDiff = -Math.expm1(schedule.logSnr(t) - schedule.logSnr(s));
  return { scale, variance: sigmaT * sigmaT * (s === t ? 0 : expDiff) };
}

/** Options of {@linkcode simulateForwardSde}. */
export interface SimulateForwardOptions {
  /** The noise schedule. */
  schedule: LogSnrSchedule;
  /** Increasing times t_0 < t_1 < ... < t_N; `z` is at t_0. */
  times: ArrayLike<number>;
  /** Source of the Brownian increments. */
  noise: NoiseSource;
}

/**
 * Simulates the forward SDE (eq. 3) with Euler-Maruyama:
 * `z_{k+1} = z_k + f(t_k) z_k h + g(t_k) sqrt(h) n`, `h = t_{k+1} - t_k`.
 *
 * @param z The state at `times[0]`; never disposed.
 * @param options Schedule, times and noise.
 * @returns z at the last time, a new tensor owned by the caller.
 * @throws {RangeError} For fewer than two times or times that do not increase.
 * @example From the data to t = 1 in 100 steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { Rng } from "../core/rng.ts";
 * import { simulateForwardSde } from "./forward_sde.ts";
 * import { vpLogSnrSchedule } from "./s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const times = Array.from({ length: 101 }, (_, i) => i / 100);
 * const x = tf.zeros([8, 2]);
 * const z = simulateForwardSde(x, {
 *   schedule: vpLogSnrSchedule(),
 *   times,
 *   noise: rngNoise(new Rng(0)),
 * });
 * ```
 */
export function simulateForwardSde(z: tf.Tensor, options: SimulateForwardOptions): tf.Tensor {
  const { schedule, times, noise } = options;
  if (times.length < 2) {
    throw new RangeError(`times needs at least 2 entries, got ${times.length}`);
  }
  for (let k = 1; k < times.length; k++) {
    if (!(times[k] > times[k - 1])) {
      throw new RangeError(
        `times must increase, got times[${k - 1}] = ${times[k - 1]}, times[${k}] = ${times[k]}`,
      );
    }
  }
  let cur = z;
  for (let k = 0; k + 1 < times.length; k++) {
    const h = times[k + 1] - times[k];
    const { f, g2 } = forwardSdeCoefficients(schedule, times[k]);
    const next = tf.tidy(() =>
      tf.add(tf.mul(cur, 1 + f * h), tf.mul(noise.randn(cur.shape), Math.sqrt(g2 * h)))
    );
    if (cur !== z) cur.dispose();
    cur = next;
  }
  return cur;
}
