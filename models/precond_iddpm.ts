/**
 * iDDPM preconditioning (EDM Table 1 "iDDPM + DDIM" column, Appendix C.3; Nichol and Dhariwal):
 * `c_skip = 1`, `c_out = -sigma`, `c_in = 1 / sqrt(sigma^2 + 1)`,
 * `c_noise = M - 1 - argmin_j |u_j - sigma|`, with the trained levels u_j of
 * `schedules/iddpm.ts`. The network predicts epsilon at its discrete step index.
 *
 * The argmin runs over j in 0..M-1 (the trained indices), so c_noise stays in [0, M-1];
 * `roundSigma` runs over u_0..u_M and maps 0 to u_M = 0, so a step list ending in 0 keeps it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { iddpmSchedule, type IddpmScheduleOptions } from "../schedules/iddpm.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode iddpmPrecond} and {@linkcode iddpmCoefficients}: the table's C1, C2, M. */
export type IddpmPrecondOptions = Omit<IddpmScheduleOptions, "j0">;

/**
 * The iDDPM coefficients at one noise level (builds the table u_j; a precond's own
 * `coefficients` reuses its table).
 *
 * @param sigma Noise level, >= 0.
 * @param options C1, C2 and M.
 * @returns c_skip, c_out, c_in and c_noise of Table 1.
 * @example c_noise at the smallest trained level is M - 1
 * ```ts
 * import { iddpmCoefficients } from "./precond_iddpm.ts";
 * import { iddpmSchedule } from "../schedules/iddpm.ts";
 * const { cNoise } = iddpmCoefficients(iddpmSchedule().u[999]); // 999
 * ```
 */
export function iddpmCoefficients(
  sigma: number,
  options: IddpmPrecondOptions = {},
): PrecondCoefficients {
  return coefficientsOf(iddpmSchedule(options), sigma);
}

function coefficientsOf(
  schedule: ReturnType<typeof iddpmSchedule>,
  sigma: number,
): PrecondCoefficients {
  return {
    cSkip: 1,
    cOut: -sigma,
    cIn: 1 / Math.sqrt(sigma * sigma + 1),
    cNoise: schedule.M - 1 - schedule.nearestIndex(sigma),
  };
}

/**
 * Wraps a raw network with iDDPM preconditioning. The supported range is [u_{M-1}, u_0] and
 * `roundSigma` snaps a level to the nearest table entry.
 *
 * @param network The raw network F(x_in; c_noise), an epsilon predictor over step indices.
 * @param options C1, C2 and M.
 * @returns A {@linkcode Preconditioned} denoiser.
 * @throws {RangeError} For invalid table parameters.
 * @example Round a sampler's noise levels to the trained ones
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { iddpmPrecond } from "./precond_iddpm.ts";
 * const denoiser = iddpmPrecond((x) => tf.zerosLike(x));
 * const s = denoiser.roundSigma(1.0); // the u_j nearest to 1
 * ```
 */
export function iddpmPrecond(network: Network, options: IddpmPrecondOptions = {}): Preconditioned {
  const schedule = iddpmSchedule({ ...options, j0: 0 });
  const { M, u } = schedule;
  const trained = Float32Array.from(u.subarray(0, M)); // u_0..u_{M-1}
  return precondition(network, {
    kind: "iddpm",
    sigmaMin: u[M - 1],
    sigmaMax: u[0],
    roundSigma: schedule.roundSigma,
    coefficients: (sigma) => coefficientsOf(schedule, sigma),
    tensorCoefficients: (sigma) => {
      const table = tf.tensor2d(trained, [1, M], "float32");
      const j = tf.argMin(tf.abs(tf.sub(tf.reshape(sigma, [-1, 1]), table)), 1);
      return {
        cSkip: 1,
        cOut: tf.neg(sigma),
        cIn: tf.rsqrt(tf.add(tf.square(sigma), 1)),
        cNoise: tf.sub(M - 1, tf.cast(j, "float32")),
      };
    },
  });
}
