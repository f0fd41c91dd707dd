/**
 * The three processes of score-based generative modelling through SDEs (Song et al. 2021,
 * "Score-Based Generative Modeling through Stochastic Differential Equations", eq. 9, 11 and the
 * sub-VP SDE of Section 3.4) as {@linkcode LogSnrSchedule}s, with score_sde_pytorch's names and
 * defaults (`sde_lib.py`: VESDE sigma_min 0.01, sigma_max 50; VPSDE and subVPSDE beta_min 0.1,
 * beta_max 20; T = 1, N = 1000; eps = 1e-5 as the smallest time of training, sampling and
 * likelihood):
 *
 * | name    | alpha(t)    | sigma(t)                        | g(t)^2                           |
 * | ------- | ----------- | ------------------------------- | -------------------------------- |
 * | `ve`    | 1           | sigma_min (sigma_max/sigma_min)^t | 2 sigma^2 log(sigma_max/sigma_min) |
 * | `vp`    | exp(-B/2)   | sqrt(1 - exp(-B))               | beta(t)                          |
 * | `subvp` | exp(-B/2)   | 1 - exp(-B)                     | beta(t) (1 - exp(-2B))           |
 *
 * with `beta(t) = beta_min + t (beta_max - beta_min)` and `B(t) = int_0^t beta`. Every linear SDE
 * `dz = f z dt + g dw` whose marginals are `N(alpha x, sigma^2 I)` is one of these schedules:
 * `f = alpha'/alpha` and `g^2 = d sigma^2/dt - 2 f sigma^2 = -sigma^2 lambda'` (S2N Theorem 1,
 * `forward_sde.ts`). For sub-VP that gives `lambda = -B - 2 log(1 - e^-B)`, so
 * `g^2 = beta (1 - e^-B)^2 + 2 beta e^-B (1 - e^-B) = beta (1 - e^{-2B})`, the paper's diffusion.
 *
 * VE and VP reuse `veLogSnrSchedule` and `vpLogSnrSchedule` (`beta_d = beta_max - beta_min`);
 * only sub-VP is new. As in the reference, VE's sigma(0) is sigma_min, not 0 (the data end is
 * approximated by N(x, sigma_min^2)).
 *
 * Prior: `N(0, sigma(T)^2 I)` for every process ({@linkcode sdePriorStd}). The reference draws
 * VP and sub-VP priors from N(0, I); sigma(1) is 1 - 2e-5 (VP) and 1 - 4.3e-5 (sub-VP) with the
 * defaults, so the two agree to that precision; VE's prior is N(0, sigma_max^2 I) in both.
 *
 * @module
 */
import { fromAlphaSigma, type LogSnrSchedule } from "./log_snr.ts";
import { veLogSnrSchedule, vpLogSnrSchedule } from "./s2n_schedules.ts";

/** The processes of {@linkcode scoreSdeSchedule}, named as score_sde_pytorch's `--config.training.sde`. */
export const SCORE_SDE_NAMES = ["ve", "vp", "subvp"] as const;

/** One of {@linkcode SCORE_SDE_NAMES}. */
export type ScoreSdeName = typeof SCORE_SDE_NAMES[number];

/** The smallest time of training, sampling and likelihood in score_sde_pytorch. */
export const SCORE_SDE_EPS = 1e-5;

/** Options of {@linkcode scoreSdeSchedule} and {@linkcode subVpLogSnrSchedule}. */
export interface ScoreSdeOptions {
  /** VE smallest noise level sigma(0). @default 0.01 */
  sigmaMin?: number;
  /** VE largest noise level sigma(T). @default 50 */
  sigmaMax?: number;
  /** VP / sub-VP beta(0). @default 0.1 */
  betaMin?: number;
  /** VP / sub-VP beta(T) (score_sde's beta_max). @default 20 */
  betaMax?: number;
  /** Smallest usable time (score_sde's eps). @default 1e-5 */
  tMin?: number;
  /** End time T. @default 1 */
  tMax?: number;
}

/**
 * The sub-VP schedule (Song et al. 2021, eq. 29 / Section 3.4): `alpha = exp(-B/2)`,
 * `sigma = 1 - exp(-B)`, `B(t) = beta_min t + (beta_max - beta_min) t^2 / 2`.
 *
 * @param options beta_min, beta_max and the time range.
 * @returns The schedule; `lambda = -B - 2 log(1 - e^-B)` with the inverse
 *   `B = 2 asinh(e^{-lambda/2} / 2)` (from `sqrt(snr) = alpha / (1 - alpha^2)`).
 * @throws {RangeError} For beta_max <= beta_min, beta_min < 0 or a bad range.
 * @example The forward SDE's g^2 is beta (1 - e^{-2B})
 * ```ts
 * import { subVpLogSnrSchedule } from "./score_sde.ts";
 * import { forwardSdeCoefficients } from "./forward_sde.ts";
 * const { g2 } = forwardSdeCoefficients(subVpLogSnrSchedule(), 0.5);
 * ```
 */
export function subVpLogSnrSchedule(options: ScoreSdeOptions = {}): LogSnrSchedule {
  const { betaMin = 0.1, betaMax = 20, tMin = SCORE_SDE_EPS, tMax = 1 } = options;
  checkBetas(betaMin, betaMax);
  const betaD = betaMax - betaMin;
  const e = (t: number): number => 0.5 * betaD * t * t + betaMin * t;
  const beta = (t: number): number => betaMin + betaD * t;
  const alpha = (t: number): number => Math.exp(-0.5 * e(t));
  const sigma = (t: number): number => -Math.expm1(-e(t));
  return fromAlphaSigma(alpha, sigma, {
    name: "subvp",
    tMin,
    tMax,
    alphaDeriv: (t) => -0.5 * beta(t) * alpha(t),
    sigmaDeriv: (t) => beta(t) * Math.exp(-e(t)),
    logSnr: (t) => -e(t) - 2 * Math.log(-Math.expm1(-e(t))),
    // lambda' = -beta (1 + e^-B) / (1 - e^-B) = -beta coth(B / 2)
    logSnrDeriv: (t) => -beta(t) / Math.tanh(0.5 * e(t)),
    tOfLogSnr: (lambda) => {
      const b = 2 * Math.asinh(0.5 * Math.exp(-0.5 * lambda));
      return (Math.sqrt(betaMin * betaMin + 2 * betaD * b) - betaMin) / betaD;
    },
  });
}

/**
 * A score-SDE process by name with score_sde_pytorch's defaults and the time range [eps, T].
 *
 * @param name "ve", "vp" or "subvp".
 * @param options Parameters of that process (others are ignored) and the time range.
 * @returns The schedule; its `name` is the process name.
 * @throws {RangeError} For an unknown name or bad parameters.
 * @example The reference VP SDE
 * ```ts
 * import { scoreSdeSchedule } from "./score_sde.ts";
 * const vp = scoreSdeSchedule("vp"); // beta 0.1 .. 20, t in [1e-5, 1]
 * ```
 */
export function scoreSdeSchedule(
  name: ScoreSdeName,
  options: ScoreSdeOptions = {},
): LogSnrSchedule {
  const { tMin = SCORE_SDE_EPS, tMax = 1 } = options;
  switch (name) {
    case "ve":
      return veLogSnrSchedule({
        tMin,
        tMax,
        sigmaMin: options.sigmaMin ?? 0.01,
        sigmaMax: options.sigmaMax ?? 50,
      });
    case "vp": {
      const { betaMin = 0.1, betaMax = 20 } = options;
      checkBetas(betaMin, betaMax);
      return vpLogSnrSchedule({ tMin, tMax, betaMin, betaD: betaMax - betaMin });
    }
    case "subvp":
      return subVpLogSnrSchedule({ ...options, tMin, tMax });
    default:
      throw new RangeError(
        `unknown SDE "${name}"; use one of ${SCORE_SDE_NAMES.join(", ")}`,
      );
  }
}

/**
 * Standard deviation of the prior N(0, sigma(T)^2 I) that sampling starts from and likelihood
 * ends at (see the module doc for the reference's N(0, I) for VP and sub-VP).
 *
 * @param schedule The process.
 * @returns sigma(tMax).
 * @example VE's prior std is sigma_max
 * ```ts
 * import { scoreSdeSchedule, sdePriorStd } from "./score_sde.ts";
 * console.assert(Math.abs(sdePriorStd(scoreSdeSchedule("ve")) - 50) < 1e-9);
 * ```
 */
export function sdePriorStd(schedule: LogSnrSchedule): number {
  return schedule.sigma(schedule.tMax);
}

/**
 * score_sde's smallest sampling time: 1e-5 for VE and 1e-3 for VP and sub-VP (`run_lib.py`
 * `sampling_eps`); training and likelihood use {@linkcode SCORE_SDE_EPS} = 1e-5 for all three.
 *
 * @param schedule The process.
 * @returns The end time of sampling, at least the schedule's tMin.
 * @example
 * ```ts
 * import { scoreSdeSchedule, sdeSamplingEps } from "./score_sde.ts";
 * console.assert(sdeSamplingEps(scoreSdeSchedule("vp")) === 1e-3);
 * ```
 */
export function sdeSamplingEps(schedule: LogSnrSchedule): number {
  return Math.max(schedule.tMin, schedule.name === "ve" ? 1e-5 : 1e-3);
}

function checkBetas(betaMin: number, betaMax: number): void {
  if (!(betaMin >= 0) || !(betaMax > betaMin) || !Number.isFinite(betaMax)) {
    throw new RangeError(
      `the SDE needs 0 <= betaMin < betaMax < Infinity, got betaMin=${betaMin}, betaMax=${betaMax}`,
    );
  }
}
