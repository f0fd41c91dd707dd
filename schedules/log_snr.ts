/**
 * Noise schedules in signal-to-noise terms with derivatives (S2N paper, Section 3.1, eq. 1 and
 * Table 1): `z_t = alpha(t) x + sigma(t) eps`, `lambda(t) = log(alpha^2 / sigma^2)`, decreasing in
 * t, so `sigma(t) = alpha(t) exp(-lambda(t) / 2)`.
 *
 * {@linkcode fromAlphaSigma} builds one from any pair of functions: missing derivatives come from
 * finite differences, a missing inverse of lambda from bisection on [tMin, tMax]. The closed forms
 * of Table 1 live in `s2n_schedules.ts`; they use the same builder with every piece given.
 *
 * Conventions: `logSnr(t)` is `+Infinity` where sigma(t) = 0 (the data end of VP, FM-OT, EDM) and
 * `-Infinity` where alpha(t) = 0 (the noise end of FM-OT); `tOfLogSnr` maps those back.
 *
 * @module
 */
import type { NoiseSchedule } from "./types.ts";

/**
 * A {@linkcode NoiseSchedule} with the derivatives that the S2N forward and backward SDEs need
 * (Theorems 1-4): alpha'(t), sigma'(t) and lambda'(t) = 2 (alpha'/alpha - sigma'/sigma).
 */
export interface LogSnrSchedule extends NoiseSchedule {
  /** d alpha / dt. */
  alphaDeriv(t: number): number;
  /** d sigma / dt. */
  sigmaDeriv(t: number): number;
  /** d lambda / dt (negative: lambda decreases). */
  logSnrDeriv(t: number): number;
}

/** Options of {@linkcode fromAlphaSigma}: the time range and any closed forms you have. */
export interface FromAlphaSigmaOptions {
  /** Smallest usable time (lambda is largest here). Required. */
  tMin: number;
  /** Largest time (lambda is smallest here). Required. */
  tMax: number;
  /** Name of the schedule. @default "custom" */
  name?: string;
  /** Closed form of alpha'(t). @default a finite difference of alpha */
  alphaDeriv?: (t: number) => number;
  /** Closed form of sigma'(t). @default a finite difference of sigma */
  sigmaDeriv?: (t: number) => number;
  /** Closed form of lambda(t). @default 2 (log alpha(t) - log sigma(t)) */
  logSnr?: (t: number) => number;
  /** Closed form of lambda'(t). @default 2 (alpha'/alpha - sigma'/sigma) */
  logSnrDeriv?: (t: number) => number;
  /** Closed form of the inverse of lambda. @default bisection on [tMin, tMax] */
  tOfLogSnr?: (lambda: number) => number;
}

/**
 * Builds a {@linkcode LogSnrSchedule} from alpha(t) and sigma(t).
 *
 * Finite differences are central (step `5e-6 max(|t|, 1e-3 (tMax - tMin))`), one-sided of second order within a
 * step of tMin or tMax, so functions are only ever evaluated inside [tMin, tMax]; they are
 * accurate to about 1e-9 relative for smooth schedules. The bisection inverse needs lambda to
 * decrease on [tMin, tMax] and returns t to about 1e-15 relative; it accepts any lambda in
 * [lambda(tMax), lambda(tMin)], infinite ends included.
 *
 * @param alpha Signal scale alpha(t) > 0 on [tMin, tMax) (it may reach 0 at tMax).
 * @param sigma Noise scale sigma(t) >= 0 (it may be 0 at tMin).
 * @param options The time range (required) and optional closed forms.
 * @returns The schedule.
 * @throws {RangeError} When tMin >= tMax, a bound is not finite, or lambda(tMin) <= lambda(tMax).
 * @example A user-defined schedule: alpha = cos(pi t / 2), sigma = sin(pi t / 2)
 * ```ts
 * import { fromAlphaSigma } from "./log_snr.ts";
 * const trig = fromAlphaSigma((t) => Math.cos(Math.PI * t / 2), (t) => Math.sin(Math.PI * t / 2), {
 *   tMin: 1e-3,
 *   tMax: 0.999,
 * });
 * const t = trig.tOfLogSnr(trig.logSnr(0.5)); // ~ 0.5
 * ```
 */
export function fromAlphaSigma(
  alpha: (t: number) => number,
  sigma: (t: number) => number,
  options: FromAlphaSigmaOptions,
): LogSnrSchedule {
  const { tMin, tMax, name = "custom" } = options;
  if (!Number.isFinite(tMin) || !Number.isFinite(tMax) || !(tMin < tMax)) {
    throw new RangeError(
      `schedule "${name}" needs finite tMin < tMax, got tMin=${tMin}, tMax=${tMax}`,
    );
  }
  const alphaDeriv = options.alphaDeriv ?? finiteDifference(alpha, tMin, tMax);
  const sigmaDeriv = options.sigmaDeriv ?? finiteDifference(sigma, tMin, tMax);
  const logSnr = options.logSnr ?? ((t: number) => 2 * (Math.log(alpha(t)) - Math.log(sigma(t))));
  const logSnrDeriv = options.logSnrDeriv ??
    ((t: number) => 2 * (alphaDeriv(t) / alpha(t) - sigmaDeriv(t) / sigma(t)));
  const lambdaHi = logSnr(tMin), lambdaLo = logSnr(tMax);
  if (!(lambdaHi > lambdaLo)) {
    throw new RangeError(
      `schedule "${name}": lambda must decrease on [tMin, tMax], got lambda(${tMin}) = ` +
        `${lambdaHi} and lambda(${tMax}) = ${lambdaLo}; swap the bounds or check alpha/sigma`,
    );
  }
  const tOfLogSnr = options.tOfLogSnr ?? bisectInverse(logSnr, tMin, tMax, name);
  return { name, tMin, tMax, alpha, sigma, logSnr, tOfLogSnr, alphaDeriv, sigmaDeriv, logSnrDeriv };
}

// Derivative by finite differences that stay inside [lo, hi].
function finiteDifference(
  fn: (t: number) => number,
  lo: number,
  hi: number,
): (t: number) => number {
  // Step ~ eps^(1/3) times the scale of t: near t = 0 the scale is t itself (sqrt-like sigma).
  const floor = 1e-3 * (hi - lo);
  return (t) => {
    const h = 5e-6 * Math.max(Math.abs(t), floor);
    if (t - h >= lo && t + h <= hi) return (fn(t + h) - fn(t - h)) / (2 * h);
    // Second-order one-sided differences at the ends of the range.
    if (t + 2 * h <= hi) return (-3 * fn(t) + 4 * fn(t + h) - fn(t + 2 * h)) / (2 * h);
    return (3 * fn(t) - 4 * fn(t - h) + fn(t - 2 * h)) / (2 * h);
  };
}

// Inverse of a decreasing function by bisection on [lo, hi].
function bisectInverse(
  logSnr: (t: number) => number,
  lo: number,
  hi: number,
  name: string,
): (lambda: number) => number {
  const lambdaHi = logSnr(lo), lambdaLo = logSnr(hi);
  // Round-off slack at the ends: a lambda computed by another schedule may overshoot slightly.
  const slack = (l: number): number => 1e-12 * Math.max(1, Math.abs(l));
  return (lambda) => {
    if (lambda > lambdaHi && lambda <= lambdaHi + slack(lambdaHi)) return lo;
    if (lambda < lambdaLo && lambda >= lambdaLo - slack(lambdaLo)) return hi;
    if (Number.isNaN(lambda) || lambda > lambdaHi || lambda < lambdaLo) {
      throw new RangeError(
        `schedule "${name}": lambda = ${lambda} lies outside its range ` +
          `[${lambdaLo}, ${lambdaHi}] on t in [${lo}, ${hi}]; pick a lambda inside it`,
      );
    }
    if (lambda === lambdaHi) return lo;
    if (lambda === lambdaLo) return hi;
    let a = lo, b = hi;
    // Invariant: logSnr(a) >= lambda >= logSnr(b). Stops when the midpoint no longer moves.
    for (let k = 0; k < 200; k++) {
      const mid = 0.5 * (a + b);
      if (mid === a || mid === b) break;
      if (logSnr(mid) >= lambda) a = mid;
      else b = mid;
    }
    return 0.5 * (a + b);
  };
}
