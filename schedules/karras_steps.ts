/**
 * EDM's time-step discretization (EDM eq. 5, Table 1 "EDM" column): noise levels spaced
 * uniformly in `sigma^(1/rho)` between sigma_max and sigma_min, with a final 0 appended
 * (`t_N = 0`), as in k-diffusion's `get_sigmas_karras`.
 *
 * @module
 */

/** Options of {@linkcode karrasSigmas}. */
export interface KarrasSigmasOptions {
  /** Number of noise levels before the final zero (N). @default 18 */
  numSteps?: number;
  /** Smallest noise level sigma_min. @default 0.002 */
  sigmaMin?: number;
  /** Largest noise level sigma_max. @default 80 */
  sigmaMax?: number;
  /** Spacing exponent rho; 7 is EDM's choice. @default 7 */
  rho?: number;
}

/**
 * Noise levels `sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho`
 * for i = 0..N-1, followed by 0.
 *
 * @returns A Float64Array of length N + 1, decreasing, ending in 0.
 * @example 18 steps, EDM defaults
 * ```ts
 * import { karrasSigmas } from "./karras_steps.ts";
 * const sigmas = karrasSigmas({ numSteps: 18 }); // [80, ..., 0.002, 0]
 * ```
 */
export function karrasSigmas(options: KarrasSigmasOptions = {}): Float64Array {
  const { numSteps = 18, sigmaMin = 0.002, sigmaMax = 80, rho = 7 } = options;
  if (!Number.isInteger(numSteps) || numSteps < 1) {
    throw new RangeError(`numSteps must be a positive integer, got ${numSteps}`);
  }
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `need 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  if (!(rho > 0)) throw new RangeError(`rho must be positive, got ${rho}`);
  const out = new Float64Array(numSteps + 1);
  const a = sigmaMax ** (1 / rho), b = sigmaMin ** (1 / rho);
  for (let i = 0; i < numSteps; i++) {
    out[i] = (a + (numSteps === 1 ? 0 : i / (numSteps - 1)) * (b - a)) ** rho;
  }
  out[numSteps] = 0;
  return out;
}
