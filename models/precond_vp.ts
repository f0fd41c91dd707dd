/**
 * VP preconditioning (EDM Table 1 "VP" column, Appendix C.2.1; DDPM++ of Song et al.):
 * `c_skip = 1`, `c_out = -sigma`, `c_in = 1 / sqrt(sigma^2 + 1)`,
 * `c_noise = (M - 1) sigma^{-1}(sigma)` with the VP schedule's inverse
 * `sigma^{-1}(sigma) = (sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d`.
 * The network predicts the noise epsilon, hence the minus sign of c_out.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { vpSchedule, type VpScheduleOptions } from "../schedules/vp.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode vpPrecond} and {@linkcode vpCoefficients}: the VP schedule and M. */
export interface VpPrecondOptions extends VpScheduleOptions {
  /** Scale of the time input, c_noise = (M - 1) t (Table 1 M). @default 1000 */
  M?: number;
}

function checkM(M: number): void {
  if (!(M > 1)) throw new RangeError(`VP M must be greater than 1, got ${M}`);
}

/**
 * The VP coefficients at one noise level.
 *
 * @param sigma Noise level, >= 0.
 * @param options beta_d, beta_min and M.
 * @returns c_skip, c_out, c_in and c_noise of Table 1.
 * @example c_noise at sigma(1) is M - 1
 * ```ts
 * import { vpCoefficients } from "./precond_vp.ts";
 * import { vpSchedule } from "../schedules/vp.ts";
 * const { cNoise } = vpCoefficients(vpSchedule().sigma(1)); // ~ 999
 * ```
 */
export function vpCoefficients(
  sigma: number,
  options: VpPrecondOptions = {},
): PrecondCoefficients {
  const { M = 1000, ...scheduleOptions } = options;
  checkM(M);
  const schedule = vpSchedule(scheduleOptions);
  return {
    cSkip: 1,
    cOut: -sigma,
    cIn: 1 / Math.sqrt(sigma * sigma + 1),
    cNoise: (M - 1) * schedule.sigmaInv(sigma),
  };
}

/**
 * Wraps a raw network with VP preconditioning. The supported range is
 * [sigma(epsilon_t), sigma(1)], the levels the VP model was trained on.
 *
 * @param network The raw network F(x_in; c_noise), an epsilon predictor.
 * @param options beta_d, beta_min, epsilon_t and M.
 * @returns A {@linkcode Preconditioned} denoiser; `roundSigma` is the identity.
 * @throws {RangeError} For invalid schedule parameters or M <= 1.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { vpPrecond } from "./precond_vp.ts";
 * const denoiser = vpPrecond((x) => tf.zerosLike(x));
 * const sigmaMax = denoiser.sigmaMax; // ~ 152.17
 * ```
 */
export function vpPrecond(network: Network, options: VpPrecondOptions = {}): Preconditioned {
  const { M = 1000, ...scheduleOptions } = options;
  checkM(M);
  const schedule = vpSchedule(scheduleOptions);
  const { betaD, betaMin } = schedule;
  return precondition(network, {
    kind: "vp",
    sigmaMin: schedule.sigma(schedule.epsT),
    sigmaMax: schedule.sigma(1),
    coefficients: (sigma) => ({
      cSkip: 1,
      cOut: -sigma,
      cIn: 1 / Math.sqrt(sigma * sigma + 1),
      cNoise: (M - 1) * schedule.sigmaInv(sigma),
    }),
    tensorCoefficients: (sigma) => {
      const s2 = tf.square(sigma);
      const t = tf.div(
        tf.sub(tf.sqrt(tf.add(betaMin * betaMin, tf.mul(2 * betaD, tf.log1p(s2)))), betaMin),
        betaD,
      );
      return {
        cSkip: 1,
        cOut: tf.neg(sigma),
        cIn: tf.rsqrt(tf.add(s2, 1)),
        cNoise: tf.mul(t, M - 1),
      };
    },
  });
}
