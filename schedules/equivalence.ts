/**
 * Equivalence classes of signal-to-noise schedules (S2N paper, Section 3.3, eq. 11, Theorem 5).
 *
 * In signal-to-noise space a schedule is `z_lambda = alpha~(lambda) x + alpha~(lambda)
 * exp(-lambda/2) eps`, `alpha~ = alpha o lambda^-1`. Theorem 5: two schedules with the same
 * lambda range and the same alpha~ induce the same process there. Dividing by alpha removes even
 * that condition: `z / alpha = x + exp(-lambda/2) eps` depends on lambda alone (Kingma et al.
 * 2021, VDM Appendix; Kingma & Gao 2024), so any two schedules with the same lambda range share
 * the process of z / alpha, and the generalized step of `s2n_backward.ts` gives the same z / alpha
 * on grids matched in lambda (its coefficients depend on lambda only).
 *
 * {@linkcode mapTimes} and {@linkcode mapPath} move a grid or a sample path of one schedule to
 * another through lambda (`t' = lambda_to^-1(lambda_from(t))`, `z' = alpha_to(t')/alpha_from(t) z`);
 * {@linkcode snrEquivalence} checks Theorem 5's conditions.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { LogSnrSchedule } from "./log_snr.ts";

/** The lambda range of a schedule. */
export interface LogSnrRange {
  /** lambda(tMax). */
  min: number;
  /** lambda(tMin). */
  max: number;
}

/**
 * The lambda range [lambda(tMax), lambda(tMin)] of a schedule.
 *
 * @example VE's range is set by sigma_min and sigma_max
 * ```ts
 * import { logSnrRange } from "./equivalence.ts";
 * import { veLogSnrSchedule } from "./s2n_schedules.ts";
 * const { min, max } = logSnrRange(veLogSnrSchedule()); // -2 log 50, -2 log 0.01
 * ```
 */
export function logSnrRange(schedule: LogSnrSchedule): LogSnrRange {
  return { min: schedule.logSnr(schedule.tMax), max: schedule.logSnr(schedule.tMin) };
}

/** Source and target schedule of a mapping. */
export interface ScheduleMapOptions {
  /** The schedule the times or path belong to. */
  from: LogSnrSchedule;
  /** The schedule to express them in. */
  to: LogSnrSchedule;
}

/**
 * Times of `to` with the same lambda as `times` of `from`: `t' = lambda_to^-1(lambda_from(t))`.
 *
 * @param times Times of `from`; not modified.
 * @param options The two schedules.
 * @returns A new Float64Array.
 * @throws {RangeError} From `to.tOfLogSnr` when a lambda lies outside what `to` can invert.
 * @example A VP grid as VE times
 * ```ts
 * import { mapTimes } from "./equivalence.ts";
 * import { veLogSnrSchedule, vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const t = mapTimes([1, 0.5, 0.1], { from: vpLogSnrSchedule(), to: veLogSnrSchedule() });
 * ```
 */
export function mapTimes(times: ArrayLike<number>, options: ScheduleMapOptions): Float64Array {
  const { from, to } = options;
  return Float64Array.from(times, (t) => to.tOfLogSnr(from.logSnr(t)));
}

/** A sample path: one tensor per time. */
export interface SamplePath {
  /** The times. */
  times: ArrayLike<number>;
  /** The samples z_{t_i}, one per time, same shapes. */
  samples: tf.Tensor[];
}

/**
 * Maps a sample path of `from` to the path of `to` with the same z / alpha at the same lambda:
 * `t'_i = lambda_to^-1(lambda_from(t_i))`, `z'_i = alpha_to(t'_i) / alpha_from(t_i) z_i`.
 *
 * @param path Times and samples of `from`; the samples are not disposed.
 * @param options The two schedules.
 * @returns The mapped path; its samples are new tensors owned by the caller.
 * @throws {RangeError} When the numbers of times and samples differ, or a lambda cannot be
 *   inverted by `to`.
 * @example A VP path in VE terms
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { mapPath } from "./equivalence.ts";
 * import { veLogSnrSchedule, vpLogSnrSchedule } from "./s2n_schedules.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const path = { times: [0.5], samples: [tf.ones([1, 2])] };
 * const ve = mapPath(path, { from: vpLogSnrSchedule(), to: veLogSnrSchedule() });
 * ```
 */
export function mapPath(path: SamplePath, options: ScheduleMapOptions): SamplePath {
  const { times, samples } = path;
  if (times.length !== samples.length) {
    throw new RangeError(
      `a path needs one sample per time, got ${times.length} times and ${samples.length} samples`,
    );
  }
  const mapped = mapTimes(times, options);
  const { from, to } = options;
  return {
    times: mapped,
    samples: samples.map((z, i) =>
      tf.tidy(() => tf.mul(z, to.alpha(mapped[i]) / from.alpha(times[i])))
    ),
  };
}

/** Options of {@linkcode snrEquivalence}. */
export interface SnrEquivalenceOptions {
  /** Number of lambda values compared, uniform over the common range. @default 101 */
  numPoints?: number;
  /** Relative tolerance on the range ends and alpha~. @default 1e-9 */
  tolerance?: number;
}

/** What {@linkcode snrEquivalence} found. */
export interface SnrEquivalenceReport {
  /** Same lambda range (Theorem 5's lambda_1(0) = lambda_2(0), lambda_1(T) = lambda_2(T)). */
  sameRange: boolean;
  /** Largest relative gap |alpha~_1 - alpha~_2| / alpha~_1 over the sampled lambdas. */
  alphaGap: number;
  /**
   * Both conditions of Theorem 5 hold: the same process of z in signal-to-noise space. (With
   * `sameRange` alone, the processes of z / alpha already agree.)
   */
  equivalent: boolean;
}

/**
 * Checks Theorem 5's conditions for two schedules: equal lambda ranges and
 * `alpha_1 o lambda_1^-1 = alpha_2 o lambda_2^-1` (then sigma~ agrees too, as
 * `sigma~ = alpha~ exp(-lambda/2)`).
 *
 * @param a First schedule.
 * @param b Second schedule.
 * @param options Points and tolerance.
 * @returns The report.
 * @throws {RangeError} For numPoints < 2 or a negative tolerance.
 * @example VP and a VE with VP's lambda range: same z / alpha, different alpha~
 * ```ts
 * import { logSnrRange, snrEquivalence } from "./equivalence.ts";
 * import { veLogSnrSchedule, vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const vp = vpLogSnrSchedule();
 * const { min, max } = logSnrRange(vp);
 * const ve = veLogSnrSchedule({ sigmaMin: Math.exp(-max / 2), sigmaMax: Math.exp(-min / 2) });
 * const report = snrEquivalence(vp, ve); // sameRange true, equivalent false
 * ```
 */
export function snrEquivalence(
  a: LogSnrSchedule,
  b: LogSnrSchedule,
  options: SnrEquivalenceOptions = {},
): SnrEquivalenceReport {
  const { numPoints = 101, tolerance = 1e-9 } = options;
  if (!Number.isInteger(numPoints) || numPoints < 2) {
    throw new RangeError(`numPoints must be an integer >= 2, got ${numPoints}`);
  }
  if (!(tolerance >= 0)) throw new RangeError(`tolerance must be >= 0, got ${tolerance}`);
  const ra = logSnrRange(a), rb = logSnrRange(b);
  const near = (x: number, y: number): boolean =>
    x === y || Math.abs(x - y) <= tolerance * Math.max(1, Math.abs(x));
  const sameRange = near(ra.min, rb.min) && near(ra.max, rb.max);
  // Compare alpha~ inside the common range (both ends may be infinite).
  const lo = Math.max(ra.min, rb.min), hi = Math.min(ra.max, rb.max);
  // Infinite ends (zero noise, zero signal) are sampled up to |lambda| = 30.
  const l0 = Math.max(lo, -30), l1 = Math.min(hi, 30);
  if (!(l0 < l1)) return { sameRange, alphaGap: Infinity, equivalent: false };
  let alphaGap = 0;
  for (let i = 0; i < numPoints; i++) {
    const lambda = l0 + (i / (numPoints - 1)) * (l1 - l0);
    const alphaA = a.alpha(a.tOfLogSnr(lambda)), alphaB = b.alpha(b.tOfLogSnr(lambda));
    alphaGap = Math.max(alphaGap, Math.abs(alphaA - alphaB) / alphaA);
  }
  return {
    sameRange,
    alphaGap,
    equivalent: sameRange && alphaGap <= tolerance,
  };
}
