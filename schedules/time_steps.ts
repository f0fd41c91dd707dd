/**
 * The time-step discretizations of EDM Table 1 ("Time steps t_{i<N}") for the VP, VE and
 * iDDPM columns, each returning `t_0 > t_1 > ... > t_{N-1}` followed by `t_N = 0`:
 * - VP: `t_i = 1 + i/(N-1) (epsilon_s - 1)` (uniform in t from 1 down to epsilon_s);
 * - VE: `t_i = sigma_max^2 (sigma_min^2 / sigma_max^2)^(i/(N-1))` (geometric in sigma = sqrt(t));
 * - iDDPM: `t_i = u_{floor(j0 + (M-1-j0)/(N-1) i + 1/2)}` (a subset of the trained levels).
 *
 * EDM's own rho-spaced steps are `karrasSigmas` in `karras_steps.ts` (there t = sigma).
 * {@linkcode sigmasOfTimes} turns any of these into noise levels.
 *
 * @module
 */
import { iddpmSchedule, type IddpmScheduleOptions } from "./iddpm.ts";
import type { SigmaSchedule } from "./types.ts";

/** Options of {@linkcode vpTimeSteps}. */
export interface VpTimeStepsOptions {
  /** Number of steps N (times before the final zero). @default 18 */
  numSteps?: number;
  /** Last nonzero time (Table 1 epsilon_s). @default 1e-3 */
  epsS?: number;
}

/** Options of {@linkcode veTimeSteps}. */
export interface VeTimeStepsOptions {
  /** Number of steps N (times before the final zero). @default 18 */
  numSteps?: number;
  /** Noise level of the last nonzero time (Table 1 sigma_min). @default 0.02 */
  sigmaMin?: number;
  /** Noise level of the first time (Table 1 sigma_max). @default 100 */
  sigmaMax?: number;
}

/** Options of {@linkcode iddpmTimeSteps}: the table's parameters and N. */
export interface IddpmTimeStepsOptions extends IddpmScheduleOptions {
  /** Number of steps N (times before the final zero); at most M - j0. @default 18 */
  numSteps?: number;
}

function checkSteps(numSteps: number): void {
  if (!Number.isInteger(numSteps) || numSteps < 1) {
    throw new RangeError(`numSteps must be a positive integer, got ${numSteps}`);
  }
}

// i / (N - 1), with a single step standing at i = 0.
const frac = (i: number, n: number): number => (n === 1 ? 0 : i / (n - 1));

/**
 * VP time steps of EDM Table 1: uniform in t from 1 to epsilon_s, then 0.
 *
 * @returns A Float64Array of N + 1 decreasing times, `t_0 = 1`, `t_{N-1} = epsS`, `t_N = 0`.
 * @throws {RangeError} For numSteps not a positive integer or epsS outside (0, 1).
 * @example Noise levels for a VP sampler
 * ```ts
 * import { vpTimeSteps, sigmasOfTimes } from "./time_steps.ts";
 * import { vpSchedule } from "./vp.ts";
 * const t = vpTimeSteps({ numSteps: 10 }); // [1, ..., 0.001, 0]
 * const sigmas = sigmasOfTimes(t, vpSchedule());
 * ```
 */
export function vpTimeSteps(options: VpTimeStepsOptions = {}): Float64Array {
  const { numSteps = 18, epsS = 1e-3 } = options;
  checkSteps(numSteps);
  if (!(epsS > 0 && epsS < 1)) throw new RangeError(`epsS must lie in (0, 1), got ${epsS}`);
  const out = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) out[i] = 1 + frac(i, numSteps) * (epsS - 1);
  return out;
}

/**
 * VE time steps of EDM Table 1: sigma = sqrt(t) geometric from sigma_max to sigma_min, then 0.
 *
 * @returns A Float64Array of N + 1 decreasing times, `t_0 = sigmaMax^2`,
 *   `t_{N-1} = sigmaMin^2`, `t_N = 0`.
 * @throws {RangeError} For numSteps not a positive integer, or not 0 < sigmaMin < sigmaMax.
 * @example Times for 10 VE steps
 * ```ts
 * import { veTimeSteps } from "./time_steps.ts";
 * const t = veTimeSteps({ numSteps: 10 }); // [10000, ..., 0.0004, 0]
 * ```
 */
export function veTimeSteps(options: VeTimeStepsOptions = {}): Float64Array {
  const { numSteps = 18, sigmaMin = 0.02, sigmaMax = 100 } = options;
  checkSteps(numSteps);
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `need 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  const out = new Float64Array(numSteps + 1);
  const ratio = (sigmaMin * sigmaMin) / (sigmaMax * sigmaMax);
  for (let i = 0; i < numSteps; i++) out[i] = sigmaMax * sigmaMax * ratio ** frac(i, numSteps);
  return out;
}

/**
 * iDDPM time steps of EDM Table 1: N of the trained levels u_j, from u_{j0} down to u_{M-1},
 * then `u_M = 0`. With `sigma(t) = t` these times are also the noise levels.
 *
 * @returns A Float64Array of N + 1 decreasing times, `t_0 = u_{j0}`, `t_{N-1} = u_{M-1}`, 0.
 * @throws {RangeError} For numSteps not a positive integer or above M - j0, or a bad table option.
 * @example The 18-step iDDPM/DDIM discretization
 * ```ts
 * import { iddpmTimeSteps } from "./time_steps.ts";
 * const t = iddpmTimeSteps({ numSteps: 18 }); // [80.2, ..., 0.0064, 0]
 * ```
 */
export function iddpmTimeSteps(options: IddpmTimeStepsOptions = {}): Float64Array {
  const { numSteps = 18, ...tableOptions } = options;
  checkSteps(numSteps);
  const { u, M, j0 } = iddpmSchedule(tableOptions);
  if (numSteps > M - j0) {
    throw new RangeError(
      `iDDPM numSteps=${numSteps} exceeds the ${M - j0} trained levels from j0=${j0}; ` +
        `use numSteps <= M - j0`,
    );
  }
  const out = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) {
    out[i] = u[Math.floor(j0 + ((M - 1 - j0) * frac(i, numSteps)) + 0.5)];
  }
  out[numSteps] = u[M]; // = 0
  return out;
}

/**
 * Maps times to noise levels, `sigma_i = sigma(t_i)`; the final `t_N = 0` maps to 0 for every
 * Table 1 schedule.
 *
 * @param times Times, e.g. from {@linkcode vpTimeSteps}. Not modified.
 * @param schedule The process that gives sigma(t).
 * @returns A new Float64Array of the same length.
 * @example VE times to noise levels
 * ```ts
 * import { sigmasOfTimes, veTimeSteps } from "./time_steps.ts";
 * import { veSchedule } from "./ve.ts";
 * const sigmas = sigmasOfTimes(veTimeSteps(), veSchedule()); // [100, ..., 0.02, 0]
 * ```
 */
export function sigmasOfTimes(times: ArrayLike<number>, schedule: SigmaSchedule): Float64Array {
  return Float64Array.from(times, (t) => schedule.sigma(t));
}
