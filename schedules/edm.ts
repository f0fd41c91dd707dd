/**
 * EDM's own process (EDM Table 1, "Ours" column; Section 3): `sigma(t) = t`, `s(t) = 1`, so time
 * and noise level coincide and the probability-flow ODE becomes `dx/dt = (x - D(x; t)) / t`.
 * Its step discretization lives in `karras_steps.ts`.
 *
 * @module
 */
import type { SigmaSchedule } from "./types.ts";

/** Options of {@linkcode edmSchedule}. */
export interface EdmScheduleOptions {
  /** Smallest sampled noise level (Table 1 sigma_min). @default 0.002 */
  sigmaMin?: number;
  /** Largest sampled noise level (Table 1 sigma_max). @default 80 */
  sigmaMax?: number;
  /** Step spacing exponent of the discretization (Table 1 rho). @default 7 */
  rho?: number;
}

/** The EDM schedule with its parameters; `t = sigma` in [sigmaMin, sigmaMax]. */
export interface EdmSchedule extends SigmaSchedule {
  /** Schedule name, the discriminant of the union. */
  readonly name: "edm";
  /** sigma_min. */
  readonly sigmaMin: number;
  /** sigma_max. */
  readonly sigmaMax: number;
  /** rho. */
  readonly rho: number;
  /** sigma_min. */
  readonly tMin: number;
  /** sigma_max. */
  readonly tMax: number;
}

/**
 * Builds EDM's schedule `sigma(t) = t`, `s(t) = 1`.
 *
 * @param options sigma_min, sigma_max and rho; the paper's values by default.
 * @returns An {@linkcode EdmSchedule}.
 * @throws {RangeError} Unless 0 < sigmaMin < sigmaMax and rho > 0.
 * @example Time is the noise level
 * ```ts
 * import { edmSchedule } from "./edm.ts";
 * const edm = edmSchedule();
 * console.assert(edm.sigma(3) === 3 && edm.s(3) === 1);
 * ```
 */
export function edmSchedule(options: EdmScheduleOptions = {}): EdmSchedule {
  const { sigmaMin = 0.002, sigmaMax = 80, rho = 7 } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `EDM needs 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  if (!(rho > 0)) throw new RangeError(`EDM rho must be positive, got ${rho}`);
  return {
    name: "edm",
    sigmaMin,
    sigmaMax,
    rho,
    tMin: sigmaMin,
    tMax: sigmaMax,
    sigma: (t) => t,
    sigmaDeriv: () => 1,
    sigmaInv: (sig) => sig,
    s: () => 1,
    sDeriv: () => 0,
  };
}
