/**
 * Preconditioning for the sub-VP SDE (Song et al. 2021, Section 3.4) in the form of EDM's VP
 * column (EDM Table 1): the network predicts the noise of `z = alpha x + sigma eps` from z itself
 * and the time, as score_sde's DDPM++ continuous models do (`score = -F(z, 999 t) / sigma`):
 *
 * `c_skip = 1`, `c_out = -sigma_edm`, `c_in = alpha(t)`, `c_noise = (M - 1) t`,
 *
 * with `sigma_edm = sigma / alpha = 2 sinh(B/2)` (sub-VP: alpha = e^{-B/2}, sigma = 1 - e^{-B}), so
 * `B = 2 asinh(sigma_edm / 2)`, `alpha = exp(-B / 2)` and t solves
 * `beta_min t + (beta_max - beta_min) t^2 / 2 = B`. (For VP the same rule gives EDM's VP
 * column, `c_in = 1 / sqrt(1 + sigma^2)`: use `vpPrecond`.)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode subVpPrecond}. */
export interface SubVpPrecondOptions {
  /** beta(0). @default 0.1 */
  betaMin?: number;
  /** beta(1). @default 20 */
  betaMax?: number;
  /** Smallest trained time (sets sigmaMin). @default 1e-5 */
  epsT?: number;
  /** Scale of the time input, c_noise = (M - 1) t. @default 1000 */
  M?: number;
}

/**
 * The sub-VP preconditioner (see the module doc).
 *
 * @param network The raw network F, trained to output the noise.
 * @param options beta_min, beta_max, eps_t and M.
 * @returns The denoiser, supporting sigma_edm in [sigma_edm(eps_t), sigma_edm(1)].
 * @throws {RangeError} For betaMax <= betaMin, betaMin < 0, M <= 1 or eps_t outside (0, 1).
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { subVpPrecond } from "./precond_subvp.ts";
 * const d = subVpPrecond((x) => tf.zerosLike(x));
 * console.assert(d.kind === "subvp");
 * ```
 */
export function subVpPrecond(network: Network, options: SubVpPrecondOptions = {}): Preconditioned {
  const { betaMin = 0.1, betaMax = 20, epsT = 1e-5, M = 1000 } = options;
  if (!(betaMin >= 0) || !(betaMax > betaMin) || !(M > 1) || !(epsT > 0 && epsT < 1)) {
    throw new RangeError(
      `sub-VP needs 0 <= betaMin < betaMax, M > 1 and 0 < epsT < 1, got betaMin=${betaMin}, ` +
        `betaMax=${betaMax}, M=${M}, epsT=${epsT}`,
    );
  }
  const betaD = betaMax - betaMin;
  const bOfT = (t: number): number => betaMin * t + 0.5 * betaD * t * t;
  const sigmaOfT = (t: number): number => 2 * Math.sinh(0.5 * bOfT(t));
  const tOfB = (b: number): number =>
    (Math.sqrt(betaMin * betaMin + 2 * betaD * b) - betaMin) / betaD;
  const coefficients = (sigma: number): PrecondCoefficients => {
    const b = 2 * Math.asinh(0.5 * sigma);
    return { cSkip: 1, cOut: -sigma, cIn: Math.exp(-0.5 * b), cNoise: (M - 1) * tOfB(b) };
  };
  return precondition(network, {
    kind: "subvp",
    sigmaMin: sigmaOfT(epsT),
    sigmaMax: sigmaOfT(1),
    coefficients,
    tensorCoefficients: (sigma) => {
      const b = tf.mul(tf.asinh(tf.mul(sigma, 0.5)), 2);
      const t = tf.div(
        tf.sub(tf.sqrt(tf.add(betaMin * betaMin, tf.mul(2 * betaD, b))), betaMin),
        betaD,
      );
      return {
        cSkip: 1,
        cOut: tf.neg(sigma),
        cIn: tf.exp(tf.mul(b, -0.5)),
        cNoise: tf.mul(t, M - 1),
      } as const;
    },
  });
}
