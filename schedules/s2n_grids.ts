/**
 * Step grids for any {@linkcode LogSnrSchedule} (S2N paper, Section 4: the samplers step from
 * t to s < t on a grid): times spaced uniformly in t, uniformly in lambda, or Karras-style, i.e.
 * EDM eq. 5's spacing of the EDM noise level `sigma / alpha = exp(-lambda / 2)` uniformly in its
 * `1 / rho` power. Spacings in lambda and in sigma/alpha depend only on lambda, so two schedules
 * with the same lambda range get grids of matching lambda (S2N Theorem 5).
 *
 * Like `karrasSigmas`, a grid has `numSteps + 1` decreasing times; with `endTime` the last spaced
 * time is followed by `endTime` (e.g. 0, where sigma(0) = 0 for VP, iDDPM, FM-OT and EDM), as
 * EDM's discretization appends sigma = 0.
 *
 * @module
 */
import type { LogSnrSchedule } from "./log_snr.ts";

/** How {@linkcode s2nTimeGrid} spaces the times. */
export type GridSpacing = "time" | "logSnr" | "karras";

/** Options of {@linkcode s2nTimeGrid}. */
export interface S2nTimeGridOptions {
  /** Number of steps N; the grid has N + 1 times. @default 18 */
  numSteps?: number;
  /** Spacing: uniform in t, uniform in lambda, or uniform in (sigma/alpha)^(1/rho). @default "karras" */
  spacing?: GridSpacing;
  /** Exponent of the Karras spacing (EDM's rho, not the S2N rho). @default 7 */
  rho?: number;
  /** First (largest) time. @default schedule.tMax */
  tMax?: number;
  /** Last spaced (smallest) time. @default schedule.tMin */
  tMin?: number;
  /** A time appended after tMin (below it), e.g. 0 to end at zero noise. @default undefined */
  endTime?: number;
}

/**
 * Times `t_0 = tMax > t_1 > ... > t_N` for a sampler.
 *
 * @param schedule The schedule that maps times to lambda and back.
 * @param options Steps, spacing and range.
 * @returns A Float64Array of N + 1 decreasing times (N spaced in [tMin, tMax] then `endTime`
 *   when given, else N + 1 spaced times).
 * @throws {RangeError} For numSteps not a positive integer, rho <= 0, tMin >= tMax, an endTime
 *   not below tMin, or an infinite lambda at tMin/tMax with the "logSnr" or "karras" spacing.
 * @example 10 VP steps uniform in lambda, ending at t = 0
 * ```ts
 * import { s2nTimeGrid } from "./s2n_grids.ts";
 * import { vpLogSnrSchedule } from "./s2n_schedules.ts";
 * const t = s2nTimeGrid(vpLogSnrSchedule(), { numSteps: 10, spacing: "logSnr", endTime: 0 });
 * ```
 */
export function s2nTimeGrid(
  schedule: LogSnrSchedule,
  options: S2nTimeGridOptions = {},
): Float64Array {
  const {
    numSteps = 18,
    spacing = "karras",
    rho = 7,
    tMax = schedule.tMax,
    tMin = schedule.tMin,
    endTime,
  } = options;
  if (!Number.isInteger(numSteps) || numSteps < 1) {
    throw new RangeError(`numSteps must be a positive integer, got ${numSteps}`);
  }
  if (!(tMin < tMax) || !Number.isFinite(tMin) || !Number.isFinite(tMax)) {
    throw new RangeError(`need finite tMin < tMax, got tMin=${tMin}, tMax=${tMax}`);
  }
  if (endTime !== undefined && !(endTime < tMin)) {
    throw new RangeError(`endTime must lie below tMin=${tMin}, got ${endTime}`);
  }
  if (!(rho > 0)) throw new RangeError(`rho must be positive, got ${rho}`);
  // Number of spaced times: with endTime the last entry is not spaced.
  const count = endTime === undefined ? numSteps + 1 : numSteps;
  const frac = (i: number): number => (count === 1 ? 0 : i / (count - 1));
  const out = new Float64Array(numSteps + 1);
  if (spacing === "time") {
    for (let i = 0; i < count; i++) out[i] = tMax + frac(i) * (tMin - tMax);
    out[count - 1] = count === 1 ? tMax : tMin;
  } else if (spacing === "logSnr" || spacing === "karras") {
    const lambdaLo = schedule.logSnr(tMax), lambdaHi = schedule.logSnr(tMin);
    if (!Number.isFinite(lambdaLo) || !Number.isFinite(lambdaHi)) {
      throw new RangeError(
        `"${spacing}" spacing needs a finite lambda at both ends, got lambda(${tMax}) = ` +
          `${lambdaLo}, lambda(${tMin}) = ${lambdaHi}; move tMin/tMax inside the schedule ` +
          `(use endTime: ${tMin} to still end there)`,
      );
    }
    // Karras: sigma/alpha = exp(-lambda / 2), uniform in its 1/rho power (EDM eq. 5).
    const a = Math.exp(-lambdaLo / (2 * rho)), b = Math.exp(-lambdaHi / (2 * rho));
    for (let i = 0; i < count; i++) {
      const lambda = spacing === "logSnr"
        ? lambdaLo + frac(i) * (lambdaHi - lambdaLo)
        : -2 * rho * Math.log(a + frac(i) * (b - a));
      // The ends are exact: no round trip through the inverse.
      out[i] = i === 0 ? tMax : i === count - 1 ? tMin : schedule.tOfLogSnr(lambda);
    }
  } else {
    throw new RangeError(`unknown spacing "${spacing}"; use "time", "logSnr" or "karras"`);
  }
  if (endTime !== undefined) out[numSteps] = endTime;
  return out;
}
