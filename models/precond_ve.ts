/**
 * VE preconditioning (EDM Table 1 "VE" column, Appendix C.2.2; NCSN++ of Song et al.):
 * `c_skip = 1`, `c_out = sigma`, `c_in = 1`, `c_noise = ln(sigma / 2)`.
 *
 * The noise label follows NVlabs/edm's `VEPrecond` (`0.5 * sigma` inside the log);
 * score_sde_pytorch feeds NCSN++ `ln sigma` instead. The two differ by the constant ln 2, which a
 * network trained with one learns around; training and every sampler here use the same label, but
 * weights ported from score_sde would need the shift.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode vePrecond}. */
export interface VePrecondOptions {
  /** Smallest trained noise level (Table 1 sigma_min). @default 0.02 */
  sigmaMin?: number;
  /** Largest trained noise level (Table 1 sigma_max). @default 100 */
  sigmaMax?: number;
}

/**
 * The VE coefficients at one noise level.
 *
 * @param sigma Noise level, > 0.
 * @returns c_skip, c_out, c_in and c_noise of Table 1.
 * @example
 * ```ts
 * import { veCoefficients } from "./precond_ve.ts";
 * const { cOut, cNoise } = veCoefficients(2); // 2 and 0
 * ```
 */
export function veCoefficients(sigma: number): PrecondCoefficients {
  return { cSkip: 1, cOut: sigma, cIn: 1, cNoise: Math.log(0.5 * sigma) };
}

/**
 * Wraps a raw network with VE preconditioning.
 *
 * @param network The raw network F(x; c_noise).
 * @param options The trained sigma range.
 * @returns A {@linkcode Preconditioned} denoiser; `roundSigma` is the identity.
 * @throws {RangeError} Unless 0 < sigmaMin < sigmaMax.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { vePrecond } from "./precond_ve.ts";
 * const denoiser = vePrecond((x) => tf.zerosLike(x));
 * console.assert(denoiser.sigmaMax === 100);
 * ```
 */
export function vePrecond(network: Network, options: VePrecondOptions = {}): Preconditioned {
  const { sigmaMin = 0.02, sigmaMax = 100 } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `VE needs 0 < sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  return precondition(network, {
    kind: "ve",
    sigmaMin,
    sigmaMax,
    coefficients: veCoefficients,
    tensorCoefficients: (sigma) => ({
      cSkip: 1,
      cOut: sigma,
      cIn: tf.onesLike(sigma),
      cNoise: tf.log(tf.mul(sigma, 0.5)),
    }),
  });
}
