/**
 * The variance-exploding (VE) process of Song et al. in EDM's form (EDM Table 1, "VE" column):
 * `sigma(t) = sqrt(t)`, `s(t) = 1`, with noise levels between sigma_min and sigma_max, i.e.
 * t in [sigma_min^2, sigma_max^2].
 *
 * @module
 */
import type { SigmaSchedule } from "./types.ts";

/** Options of {@linkcode veSchedule}. */
export interface VeScheduleOptions {
  /** Smallest noise level (Table 1 sigma_min). @default 0.02 */
  sigmaMin?: number;
  /** Largest noise level (Table 1 sigma_max). @default 100 */
  sigmaMax?: number;
}

/** The VE schedule with its parameters; `t` ranges over [sigmaMin^2, sigmaMax^2]. */
export interface VeSchedule extends SigmaSchedule {
  /** Schedule name, the discriminant of the union. */
  readonly name: "ve";
  /** sigma_min. */
  readonly sigmaMin: number;
  /** sigma_max. */
  readonly sigmaMax: number;
  /** sigma_min^2. */
  readonly tMin: number;
  /** sigma_max^2. */
  readonly tMax: number;
}

/**
 * Builds the VE schedule of EDM Table 1.
 *
 * @param options sigma_min and sigma_max; the paper's values by default.
 * @returns A {@linkcode VeSchedule}.
 * @throws {RangeError} Unless 0 < sigmaMin < sigmaMax.
 * @example sigma is the square root of t
 * ```ts
 * import { veSchedule } from "./ve.ts";
 * const ve = veSchedule();
 * console.assert(ve.sigma(ve.tMax) === 100);
 * ```
 */
export function veSchedule(options: VeScheduleOptions = {}): VeSchedule {
  const { sigmaMin = 0.02, sigmaMax = 100 } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `VE needs 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  return {
    name: "ve",
    sigmaMin,
    sigmaMax,
    tMin: sigmaMin * sigmaMin,
    tMax: sigmaMax * sigmaMax,
    sigma: (t) => Math.sqrt(t),
    sigmaDeriv: (t) => 0.5 / Math.sqrt(t),
    sigmaInv: (sig) => sig * sig,
    s: () => 1,
    sDeriv: () => 0,
  };
}
