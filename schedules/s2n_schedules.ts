/**
 * The schedules of S2N Table 1 as {@linkcode LogSnrSchedule}s, with closed-form derivatives and
 * inverse of lambda (S2N paper, Section 3.1, Table 1), plus EDM's own `alpha = 1, sigma = t`:
 *
 * | name    | alpha(t)                        | sigma(t)                   | lambda(t)                  |
 * | ------- | ------------------------------- | -------------------------- | -------------------------- |
 * | `vp`    | exp(-E/2), E = beta_d t^2/2 + beta_min t | sqrt(1 - exp(-E)) | -log(exp(E) - 1)           |
 * | `ve`    | 1                               | sigma_min (sigma_max/sigma_min)^t | -2 log sigma(t)     |
 * | `iddpm` | cos(theta) / cos(theta_0), theta = (t+s)/(1+s) pi/2 | sqrt(1 - alpha^2) | log(alpha^2/sigma^2) |
 * | `fm-ot` | 1 - t                           | t                          | 2 log((1 - t) / t)         |
 * | `edm`   | 1                               | t                          | -2 log t                   |
 *
 * Default parameters are the paper's (VP beta_min = 0.1, beta_d = 19.9; VE sigma_min = 0.01,
 * sigma_max = 50; iDDPM s = 0.008). Default time ranges: VP [1e-3, 1] (EDM's epsilon_s), VE
 * [0, 1] (the table's), iDDPM [1e-3, 0.992] (the 1000-step model's smallest level and EDM's
 * j0 = 8 of 1000, sigma/alpha ~ 80.2), FM-OT and EDM spanning EDM's sigma/alpha in [0.002, 80].
 * The formulas hold outside the range too: VP, iDDPM, FM-OT and EDM reach sigma = 0 at t = 0,
 * where `logSnr` is +Infinity (a sampler may end there).
 *
 * `expm1`, `log1p` and product forms keep sigma and lambda accurate near the data end.
 *
 * @module
 */
import { fromAlphaSigma, type LogSnrSchedule } from "./log_snr.ts";

/** Names accepted by {@linkcode s2nSchedule}. */
export const S2N_SCHEDULE_NAMES = ["vp", "ve", "iddpm", "fm-ot", "edm"] as const;

/** One of {@linkcode S2N_SCHEDULE_NAMES}. */
export type S2nScheduleName = typeof S2N_SCHEDULE_NAMES[number];

/** A time range override, shared by every Table 1 schedule. */
export interface TimeRangeOptions {
  /** Smallest usable time. @default the schedule's own (see the module doc) */
  tMin?: number;
  /** Largest time. @default the schedule's own (see the module doc) */
  tMax?: number;
}

/** Options of {@linkcode vpLogSnrSchedule}. */
export interface VpLogSnrOptions extends TimeRangeOptions {
  /** beta(0) (Table 1 beta_min). @default 0.1 */
  betaMin?: number;
  /** Slope of beta(t) = beta_min + beta_d t (Table 1 beta_d). @default 19.9 */
  betaD?: number;
}

/** Options of {@linkcode veLogSnrSchedule}. */
export interface VeLogSnrOptions extends TimeRangeOptions {
  /** sigma(0) (Table 1 sigma_min). @default 0.01 */
  sigmaMin?: number;
  /** sigma(1) (Table 1 sigma_max). @default 50 */
  sigmaMax?: number;
}

/** Options of {@linkcode cosineLogSnrSchedule}. */
export interface CosineLogSnrOptions extends TimeRangeOptions {
  /** Offset s of the cosine (Table 1). @default 0.008 */
  s?: number;
}

/** Options of {@linkcode s2nSchedule}: the union of the per-schedule options. */
export type S2nScheduleOptions = VpLogSnrOptions & VeLogSnrOptions & CosineLogSnrOptions;

// log(1 + e^x) without overflow.
const softplus = (
  x: number,
): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
// 1 / (1 + e^-x) without overflow.
const sigmoid = (x: number): number =>
  x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));

function positive(name: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`${name} needs ${k} > 0 and finite, got ${k}=${v}`);
    }
  }
}

/**
 * The VP schedule of S2N Table 1 (Song et al. 2020b): `alpha = exp(-E/2)`,
 * `sigma = sqrt(1 - exp(-E))`, `E(t) = beta_d t^2 / 2 + beta_min t`.
 *
 * @param options beta_min, beta_d and the time range.
 * @returns The schedule; `lambda = -log(expm1(E))`, inverse `E = log(1 + e^-lambda)`.
 * @throws {RangeError} For betaD <= 0, betaMin < 0 or a bad range.
 * @example alpha^2 + sigma^2 = 1
 * ```ts
 * import { vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const vp = vpLogSnrSchedule();
 * console.assert(Math.abs(vp.alpha(0.4) ** 2 + vp.sigma(0.4) ** 2 - 1) < 1e-12);
 * ```
 */
export function vpLogSnrSchedule(options: VpLogSnrOptions = {}): LogSnrSchedule {
  const { betaMin = 0.1, betaD = 19.9, tMin = 1e-3, tMax = 1 } = options;
  positive("VP", { betaD });
  if (!(betaMin >= 0)) throw new RangeError(`VP needs betaMin >= 0, got betaMin=${betaMin}`);
  const e = (t: number): number => 0.5 * betaD * t * t + betaMin * t;
  const de = (t: number): number => betaD * t + betaMin;
  const sigma = (t: number): number => Math.sqrt(-Math.expm1(-e(t)));
  const alpha = (t: number): number => Math.exp(-0.5 * e(t));
  return fromAlphaSigma(alpha, sigma, {
    name: "vp",
    tMin,
    tMax,
    alphaDeriv: (t) => -0.5 * de(t) * alpha(t),
    // d/dt sqrt(1 - e^-E) = E' e^-E / (2 sigma)
    sigmaDeriv: (t) => 0.5 * de(t) * Math.exp(-e(t)) / sigma(t),
    logSnr: (t) => -Math.log(Math.expm1(e(t))),
    logSnrDeriv: (t) => de(t) / Math.expm1(-e(t)),
    tOfLogSnr: (lambda) => {
      const eOf = softplus(-lambda); // e^E - 1 = e^-lambda
      return (Math.sqrt(betaMin * betaMin + 2 * betaD * eOf) - betaMin) / betaD;
    },
  });
}

/**
 * The VE schedule of S2N Table 1 (Song et al. 2020b): `alpha = 1`,
 * `sigma = sigma_min (sigma_max / sigma_min)^t`, t in [0, 1].
 *
 * @param options sigma_min, sigma_max and the time range.
 * @returns The schedule; `lambda = (2t - 2) log sigma_min - 2t log sigma_max`.
 * @throws {RangeError} Unless 0 < sigmaMin < sigmaMax.
 * @example The noise ends
 * ```ts
 * import { veLogSnrSchedule } from "./s2n_schedules.ts";
 * const ve = veLogSnrSchedule();
 * console.assert(Math.abs(ve.sigma(1) - 50) < 1e-12 && ve.sigma(0) === 0.01);
 * ```
 */
export function veLogSnrSchedule(options: VeLogSnrOptions = {}): LogSnrSchedule {
  const { sigmaMin = 0.01, sigmaMax = 50, tMin = 0, tMax = 1 } = options;
  positive("VE", { sigmaMin, sigmaMax });
  if (!(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `VE needs sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  const logRatio = Math.log(sigmaMax / sigmaMin), logMin = Math.log(sigmaMin);
  const sigma = (t: number): number => sigmaMin * Math.exp(t * logRatio);
  return fromAlphaSigma(() => 1, sigma, {
    name: "ve",
    tMin,
    tMax,
    alphaDeriv: () => 0,
    sigmaDeriv: (t) => sigma(t) * logRatio,
    logSnr: (t) => -2 * (logMin + t * logRatio),
    logSnrDeriv: () => -2 * logRatio,
    tOfLogSnr: (lambda) => (-0.5 * lambda - logMin) / logRatio,
  });
}

/**
 * The iDDPM cosine schedule of S2N Table 1 (Nichol & Dhariwal 2021):
 * `alpha = cos(theta(t)) / cos(theta(0))`, `theta(t) = (t + s) / (1 + s) pi / 2`,
 * `sigma = sqrt(1 - alpha^2)`; alpha reaches 0 at t = 1.
 *
 * @param options s and the time range (tMax below 1).
 * @returns The schedule; `sigma^2 = sin(theta - theta_0) sin(theta + theta_0) / cos^2(theta_0)`.
 * @throws {RangeError} For s <= 0 or a bad range.
 * @example sigma / alpha at the default tMax is EDM's iDDPM sigma_max
 * ```ts
 * import { cosineLogSnrSchedule } from "./s2n_schedules.ts";
 * const c = cosineLogSnrSchedule();
 * const sigmaMax = c.sigma(c.tMax) / c.alpha(c.tMax); // ~ 80.2
 * ```
 */
export function cosineLogSnrSchedule(options: CosineLogSnrOptions = {}): LogSnrSchedule {
  const { s = 0.008, tMin = 1e-3, tMax = 0.992 } = options;
  positive("iDDPM", { s });
  const dTheta = Math.PI / (2 * (1 + s));
  const theta0 = s * dTheta, cos0 = Math.cos(theta0), sin0 = Math.sin(theta0);
  const theta = (t: number): number => (t + s) * dTheta;
  const alpha = (t: number): number => Math.cos(theta(t)) / cos0;
  // 1 - alpha^2 = (cos^2 theta_0 - cos^2 theta) / cos^2 theta_0, as a product: no cancellation.
  const sigma2 = (t: number): number =>
    Math.sin(theta(t) - theta0) * Math.sin(theta(t) + theta0) / (cos0 * cos0);
  const sigma = (t: number): number => Math.sqrt(sigma2(t));
  const alphaDeriv = (t: number): number => -Math.sin(theta(t)) * dTheta / cos0;
  return fromAlphaSigma(alpha, sigma, {
    name: "iddpm",
    tMin,
    tMax,
    alphaDeriv,
    sigmaDeriv: (t) => -alpha(t) * alphaDeriv(t) / sigma(t),
    logSnr: (t) => Math.log(alpha(t) ** 2 / sigma2(t)),
    // 2 (alpha'/alpha - sigma'/sigma) = 2 alpha' / (alpha sigma^2) since alpha^2 + sigma^2 = 1.
    logSnrDeriv: (t) => 2 * alphaDeriv(t) / (alpha(t) * sigma2(t)),
    tOfLogSnr: (lambda) => {
      // alpha^2 = sigmoid(lambda), sigma^2 = sigmoid(-lambda); theta from its cosine and sine.
      const c = cos0 * Math.sqrt(sigmoid(lambda));
      const sn = Math.sqrt(sin0 * sin0 + cos0 * cos0 * sigmoid(-lambda));
      return Math.atan2(sn, c) / dTheta - s;
    },
  });
}

/**
 * The flow-matching optimal-transport path of S2N Table 1 (Lipman et al. 2022):
 * `alpha = 1 - t`, `sigma = t`.
 *
 * @param options The time range within (0, 1).
 * @returns The schedule; `lambda = 2 log((1 - t) / t)`, inverse `t = sigmoid(-lambda / 2)`.
 * @throws {RangeError} For a bad range.
 * @example lambda = 0 at t = 1/2
 * ```ts
 * import { fmOtLogSnrSchedule } from "./s2n_schedules.ts";
 * console.assert(fmOtLogSnrSchedule().logSnr(0.5) === 0);
 * ```
 */
export function fmOtLogSnrSchedule(options: TimeRangeOptions = {}): LogSnrSchedule {
  const { tMin = 0.002 / 1.002, tMax = 80 / 81 } = options;
  return fromAlphaSigma((t) => 1 - t, (t) => t, {
    name: "fm-ot",
    tMin,
    tMax,
    alphaDeriv: () => -1,
    sigmaDeriv: () => 1,
    logSnr: (t) => 2 * (Math.log1p(-t) - Math.log(t)),
    logSnrDeriv: (t) => -2 / (t * (1 - t)),
    tOfLogSnr: (lambda) => sigmoid(-0.5 * lambda),
  });
}

/**
 * EDM's process in S2N terms (Karras et al. 2022): `alpha = 1`, `sigma = t`.
 *
 * @param options The time range. @default [0.002, 80]
 * @returns The schedule; `lambda = -2 log t`, inverse `t = exp(-lambda / 2)`.
 * @throws {RangeError} For a bad range.
 * @example Time is the noise level
 * ```ts
 * import { edmLogSnrSchedule } from "./s2n_schedules.ts";
 * console.assert(edmLogSnrSchedule().tOfLogSnr(0) === 1);
 * ```
 */
export function edmLogSnrSchedule(options: TimeRangeOptions = {}): LogSnrSchedule {
  const { tMin = 0.002, tMax = 80 } = options;
  return fromAlphaSigma(() => 1, (t) => t, {
    name: "edm",
    tMin,
    tMax,
    alphaDeriv: () => 0,
    sigmaDeriv: () => 1,
    logSnr: (t) => -2 * Math.log(t),
    logSnrDeriv: (t) => -2 / t,
    tOfLogSnr: (lambda) => Math.exp(-0.5 * lambda),
  });
}

/**
 * A Table 1 schedule by name, for command lines and recipes.
 *
 * @param name One of {@linkcode S2N_SCHEDULE_NAMES}.
 * @param options The parameters of that schedule (others are ignored) and the time range.
 * @returns The schedule.
 * @throws {RangeError} For an unknown name or bad parameters.
 * @example
 * ```ts
 * import { s2nSchedule } from "./s2n_schedules.ts";
 * const ve = s2nSchedule("ve", { sigmaMax: 80 });
 * ```
 */
export function s2nSchedule(
  name: S2nScheduleName,
  options: S2nScheduleOptions = {},
): LogSnrSchedule {
  const { tMin, tMax } = options;
  switch (name) {
    case "vp":
      return vpLogSnrSchedule({ tMin, tMax, betaMin: options.betaMin, betaD: options.betaD });
    case "ve":
      return veLogSnrSchedule({
        tMin,
        tMax,
        sigmaMin: options.sigmaMin,
        sigmaMax: options.sigmaMax,
      });
    case "iddpm":
      return cosineLogSnrSchedule({ tMin, tMax, s: options.s });
    case "fm-ot":
      return fmOtLogSnrSchedule({ tMin, tMax });
    case "edm":
      return edmLogSnrSchedule({ tMin, tMax });
    default:
      throw new RangeError(
        `unknown schedule "${name}"; use one of ${S2N_SCHEDULE_NAMES.join(", ")}`,
      );
  }
}
