/**
 * Discrete forms of the score SDEs (Song et al. 2021, Appendix E, eq. 46-47; score_sde_pytorch
 * `sde_lib.py` `discretize`): one step `z_{i} = a_i z_{i-1} + G_i n` of the forward chain, i.e.
 * the per-step drift `f_i(z) = (a_i - 1) z` and diffusion `G_i`, at the time t of an N-level grid.
 *
 * - `ve` (SMLD, NCSN): index `i = floor(t (N - 1) / T)`, `sigma_i = sigma(i T / (N - 1))`
 *   (score_sde's `exp(linspace(log sigma_min, log sigma_max, N))` when T = 1),
 *   `sigma_{-1} = 0`: `a_i = 1`, `G_i^2 = sigma_i^2 - sigma_{i-1}^2`.
 * - `vp` (DDPM): `beta_i = beta(i T / (N - 1)) T / N` (score_sde's
 *   `linspace(beta_min / N, beta_max / N, N)`): `a_i = sqrt(1 - beta_i)`, `G_i^2 = beta_i`.
 * - any other schedule (sub-VP among them; score_sde's base-class `discretize`): Euler-Maruyama
 *   of the forward SDE at the continuous t with `dt = T / N`: `a = 1 + f(t) dt`, `G^2 = g(t)^2 dt`.
 *
 * Two derived quantities the samplers need come with the step:
 * - `langevinAlpha`, the alpha_i of the Langevin step size `2 alpha_i (snr |n| / |score|)^2`:
 *   `a_i^2`, which is score_sde's `alphas[i] = 1 - beta_i` for VP and its 1 for VE; for sub-VP
 *   (where score_sde's corrector fails: subVPSDE has no `alphas`) it is `(1 + f dt)^2`.
 * - `ancestralVariance`, the noise variance of the ancestral step: VE uses the posterior
 *   `sigma_{i-1}^2 G_i^2 / sigma_i^2` and VP uses `beta_i`, as score_sde's
 *   `AncestralSamplingPredictor`; other schedules use `G^2` (VP's choice).
 *
 * @module
 */
import { forwardSdeCoefficients } from "./forward_sde.ts";
import type { LogSnrSchedule } from "./log_snr.ts";

/** One step of the discrete chain at level `index`. */
export interface DiscreteSdeStep {
  /** Level i = floor(t (N - 1) / T), clamped to 0..N-1. */
  index: number;
  /** a_i: the chain's signal scale, f_i(z) = (a_i - 1) z. */
  scale: number;
  /** G_i^2: the chain's noise variance. */
  g2: number;
  /** alpha_i of the Langevin corrector's step size. */
  langevinAlpha: number;
  /** Noise variance of the ancestral sampling step. */
  ancestralVariance: number;
}

/** Options of {@linkcode discretizeSde}. */
export interface DiscretizeOptions {
  /** Number of levels N (score_sde's `num_scales`). @default 1000 */
  numScales?: number;
}

/**
 * The discrete step of a score SDE at time t (see the module doc for the three forms).
 *
 * @param schedule The process (`name` "ve" and "vp" select SMLD and DDPM).
 * @param t The time, in [0, tMax].
 * @param options The number of levels N.
 * @returns The step's a_i, G_i^2, Langevin alpha_i and ancestral variance.
 * @throws {RangeError} For N < 2 or t outside [0, tMax].
 * @example DDPM's beta at the last level
 * ```ts
 * import { discretizeSde } from "./sde_discrete.ts";
 * import { scoreSdeSchedule } from "./score_sde.ts";
 * const { g2 } = discretizeSde(scoreSdeSchedule("vp"), 1); // beta_max / N = 0.02
 * ```
 */
export function discretizeSde(
  schedule: LogSnrSchedule,
  t: number,
  options: DiscretizeOptions = {},
): DiscreteSdeStep {
  const { numScales: n = 1000 } = options;
  if (!Number.isInteger(n) || n < 2) {
    throw new RangeError(`numScales must be an integer >= 2, got ${n}`);
  }
  const T = schedule.tMax;
  if (!(t >= 0 && t <= T)) {
    throw new RangeError(`t = ${t} lies outside [0, ${T}]; pass a time of the schedule`);
  }
  // score_sde truncates t (N - 1) / T; the slack absorbs round-off of grid times.
  const index = Math.min(n - 1, Math.max(0, Math.floor(t * (n - 1) / T + 1e-9)));
  const level = (i: number): number => i * T / (n - 1);
  if (schedule.name === "ve") {
    const sigma = schedule.sigma(level(index));
    const prev = index === 0 ? 0 : schedule.sigma(level(index - 1));
    const g2 = sigma * sigma - prev * prev;
    return {
      index,
      scale: 1,
      g2,
      langevinAlpha: 1,
      ancestralVariance: prev * prev * g2 / (sigma * sigma),
    };
  }
  if (schedule.name === "vp") {
    // VP: beta(t) = g(t)^2 = -2 f(t); f stays exact at t = 0, where sigma = 0.
    const beta = -2 * forwardSdeCoefficients(schedule, level(index)).f * T / n;
    return {
      index,
      scale: Math.sqrt(1 - beta),
      g2: beta,
      langevinAlpha: 1 - beta,
      ancestralVariance: beta,
    };
  }
  const dt = T / n;
  const { f, g2 } = forwardSdeCoefficients(schedule, t);
  const scale = 1 + f * dt;
  return { index, scale, g2: g2 * dt, langevinAlpha: scale * scale, ancestralVariance: g2 * dt };
}
