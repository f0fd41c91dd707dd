/**
 * A general {@linkcode NoiseSchedule} (alpha, sigma, log-SNR; S2N's view) built from any EDM
 * {@linkcode SigmaSchedule} (EDM eq. 4, Table 1). EDM writes `x(t) = s(t) (y + sigma(t) n)`;
 * in signal-to-noise terms `x = alpha(t) y + sigma_vp(t) n` with
 * `alpha(t) = s(t)`, `sigma_vp(t) = s(t) sigma(t)`, and
 * `logSnr(t) = log(alpha^2 / sigma_vp^2) = -2 log sigma(t)` (the scale s cancels).
 *
 * Also the scalar conversions between EDM's noise level sigma, log-SNR and a variance-preserving
 * (alpha, sigma_vp) pair. Tensor conversions of x (epsilon, x0, score, v) live elsewhere.
 *
 * @module
 */
import type { NoiseSchedule, SigmaSchedule } from "./types.ts";

/** Options of {@linkcode noiseScheduleOf}. */
export interface NoiseScheduleOptions {
  /** Smallest usable t. @default the schedule's own `tMin` (every Table 1 schedule has one) */
  tMin?: number;
  /** Largest t. @default the schedule's own `tMax` */
  tMax?: number;
  /** Name of the result. @default the schedule's name */
  name?: string;
}

/**
 * Views an EDM sigma schedule as a noise schedule in alpha / sigma / log-SNR terms.
 *
 * @param schedule Any {@linkcode SigmaSchedule}; its `tMin`/`tMax` are used when present.
 * @param options The time range and name, overriding the schedule's own.
 * @returns A {@linkcode NoiseSchedule} with `alpha = s(t)`, `sigma = s(t) sigma(t)`.
 * @throws {RangeError} When no time range is given or found, or it is not `tMin < tMax`.
 * @example The VP process keeps alpha^2 + sigma^2 = 1
 * ```ts
 * import { noiseScheduleOf } from "./noise_schedule.ts";
 * import { vpSchedule } from "./vp.ts";
 * const ns = noiseScheduleOf(vpSchedule());
 * const t = 0.3;
 * console.assert(Math.abs(ns.alpha(t) ** 2 + ns.sigma(t) ** 2 - 1) < 1e-12);
 * ```
 */
export function noiseScheduleOf(
  schedule: SigmaSchedule & { readonly tMin?: number; readonly tMax?: number },
  options: NoiseScheduleOptions = {},
): NoiseSchedule {
  const { tMin = schedule.tMin, tMax = schedule.tMax, name = schedule.name } = options;
  if (tMin === undefined || tMax === undefined || !(tMin < tMax)) {
    throw new RangeError(
      `noise schedule "${name}" needs tMin < tMax, got tMin=${tMin}, tMax=${tMax}; ` +
        `pass them in the options`,
    );
  }
  return {
    name,
    tMin,
    tMax,
    alpha: (t) => schedule.s(t),
    sigma: (t) => schedule.s(t) * schedule.sigma(t),
    logSnr: (t) => logSnrOfSigma(schedule.sigma(t)),
    tOfLogSnr: (lambda) => schedule.sigmaInv(sigmaOfLogSnr(lambda)),
  };
}

/**
 * Log signal-to-noise ratio of EDM noise level sigma: `lambda = -2 log sigma`.
 *
 * @example
 * ```ts
 * import { logSnrOfSigma } from "./noise_schedule.ts";
 * console.assert(logSnrOfSigma(1) === 0);
 * ```
 */
export function logSnrOfSigma(sigma: number): number {
  return -2 * Math.log(sigma);
}

/**
 * EDM noise level of a log-SNR: `sigma = exp(-lambda / 2)`.
 *
 * @example
 * ```ts
 * import { sigmaOfLogSnr } from "./noise_schedule.ts";
 * console.assert(sigmaOfLogSnr(0) === 1);
 * ```
 */
export function sigmaOfLogSnr(logSnr: number): number {
  return Math.exp(-0.5 * logSnr);
}

/** A signal scale and noise scale pair, `x = alpha y + sigma eps`. */
export interface AlphaSigma {
  /** Signal scale. */
  alpha: number;
  /** Noise scale. */
  sigma: number;
}

/**
 * The variance-preserving pair of EDM noise level sigma:
 * `alpha = 1 / sqrt(1 + sigma^2)`, `sigma_vp = sigma / sqrt(1 + sigma^2)`.
 *
 * @example
 * ```ts
 * import { vpAlphaSigma } from "./noise_schedule.ts";
 * const { alpha, sigma } = vpAlphaSigma(1); // both 1/sqrt(2)
 * ```
 */
export function vpAlphaSigma(sigma: number): AlphaSigma {
  const norm = Math.sqrt(1 + sigma * sigma);
  return { alpha: 1 / norm, sigma: sigma / norm };
}

/**
 * EDM noise level of a pair `x = alpha y + sigma eps`: `sigma / alpha`, since
 * `x / alpha = y + (sigma / alpha) eps`.
 *
 * @example
 * ```ts
 * import { edmSigmaOf } from "./noise_schedule.ts";
 * console.assert(edmSigmaOf(0.6, 0.8) === 0.8 / 0.6);
 * ```
 */
export function edmSigmaOf(alpha: number, sigma: number): number {
  if (!(alpha > 0)) throw new RangeError(`alpha must be positive, got ${alpha}`);
  return sigma / alpha;
}
