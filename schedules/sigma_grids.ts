/**
 * k-diffusion's other noise-level grids beside EDM's `karrasSigmas` (EDM eq. 5): noise levels
 * uniform in log sigma (`get_sigmas_exponential`; the VE row of EDM Table 1 in sigma) and the
 * polyexponential grid (`get_sigmas_polyexponential`), `log sigma_i = log sigma_min + ramp_i^rho
 * (log sigma_max - log sigma_min)` with `ramp_i = 1 - i/(N-1)`, which is the exponential grid at
 * rho = 1 and spends more steps at low noise as rho grows. Both end in 0.
 *
 * @module
 */

/** Options of {@linkcode exponentialSigmas} and {@linkcode polyexponentialSigmas}. */
export interface SigmaGridOptions {
  /** Number of noise levels before the final zero (N). @default 18 */
  numSteps?: number;
  /** Smallest noise level sigma_min. @default 0.002 */
  sigmaMin?: number;
  /** Largest noise level sigma_max. @default 80 */
  sigmaMax?: number;
}

/** Options of {@linkcode polyexponentialSigmas}. */
export interface PolyexponentialSigmasOptions extends SigmaGridOptions {
  /** Exponent of the ramp; 1 gives the exponential grid. @default 1 */
  rho?: number;
}

/**
 * Noise levels uniform in log sigma from sigma_max to sigma_min, then 0.
 *
 * @returns A Float64Array of length N + 1, decreasing, ending in 0.
 * @throws {RangeError} For a bad step count or range.
 * @example
 * ```ts
 * import { exponentialSigmas } from "./sigma_grids.ts";
 * const sigmas = exponentialSigmas({ numSteps: 3, sigmaMin: 1, sigmaMax: 100 }); // [100, 10, 1, 0]
 * ```
 */
export function exponentialSigmas(options: SigmaGridOptions = {}): Float64Array {
  return polyexponentialSigmas({ ...options, rho: 1 });
}

/**
 * The polyexponential grid: `sigma_i = exp(log sigma_min + (1 - i/(N-1))^rho (log sigma_max -
 * log sigma_min))` for i = 0..N-1, then 0.
 *
 * @returns A Float64Array of length N + 1, decreasing, ending in 0.
 * @throws {RangeError} For a bad step count, range or rho.
 * @example
 * ```ts
 * import { polyexponentialSigmas } from "./sigma_grids.ts";
 * const sigmas = polyexponentialSigmas({ numSteps: 10, rho: 2 });
 * ```
 */
export function polyexponentialSigmas(options: PolyexponentialSigmasOptions = {}): Float64Array {
  const { numSteps = 18, sigmaMin = 0.002, sigmaMax = 80, rho = 1 } = options;
  if (!Number.isInteger(numSteps) || numSteps < 1) {
    throw new RangeError(`numSteps must be a positive integer, got ${numSteps}`);
  }
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !Number.isFinite(sigmaMax)) {
    throw new RangeError(
      `need 0 < sigmaMin < sigmaMax < infinity, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  if (!(rho > 0) || !Number.isFinite(rho)) {
    throw new RangeError(`rho must be a positive number, got ${rho}`);
  }
  const lo = Math.log(sigmaMin), hi = Math.log(sigmaMax);
  const out = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) {
    const ramp = numSteps === 1 ? 1 : 1 - i / (numSteps - 1);
    out[i] = Math.exp(lo + ramp ** rho * (hi - lo));
  }
  out[numSteps] = 0;
  return out;
}
