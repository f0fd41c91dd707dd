/**
 * iDDPM preconditioning (EDM Table 1 "iDDPM + DDIM" column, Appendix C.3; Nichol and Dhariwal):
 * `c_skip = 1`, `c_out = -sigma`, `c_in = 1 / sqrt(sigma^2 + 1)`,
 * `c_noise = M - 1 - argmin_j |u_j - sigma|`, with the trained levels u_j of
 * `schedules/iddpm.ts`. The network predicts epsilon at its discrete step index.
 *
 * By default (`indexRounding: "trained"`) the argmin runs over j in 0..M-1 (the trained
 * indices), so c_noise stays in [0, M-1] and every sigma below about u_{M-1}/2 gets index M - 1.
 * NVlabs/edm's `iDDPMPrecond` takes the index from its `round_sigma`, whose argmin runs over
 * u_0..u_M including u_M = 0, so sigma below u_{M-1}/2 gets j = M and c_noise = -1, an input the
 * network never saw in training; `indexRounding: "edm"` reproduces that. The two agree for every
 * sigma >= u_{M-1}/2 (~0.0032 with the paper's table), which covers EDM's sampling range
 * (sigma_min is clamped to u_{M-1}). `roundSigma` runs over u_0..u_M either way and maps 0 to
 * u_M = 0, so a step list ending in 0 keeps it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { iddpmSchedule, type IddpmScheduleOptions } from "../schedules/iddpm.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode iddpmPrecond} and {@linkcode iddpmCoefficients}: the table's C1, C2, M. */
export interface IddpmPrecondOptions extends Omit<IddpmScheduleOptions, "j0"> {
  /**
   * Which table c_noise's index is rounded on: "trained" (u_0..u_{M-1}, c_noise in [0, M-1]) or
   * "edm" (NVlabs/edm's `round_sigma`, u_0..u_M: c_noise = -1 below u_{M-1}/2). @default "trained"
   */
  indexRounding?: "trained" | "edm";
}

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
  return coefficientsOf(iddpmSchedule(options), sigma, options.indexRounding ?? "trained");
}

function coefficientsOf(
  schedule: ReturnType<typeof iddpmSchedule>,
  sigma: number,
  rounding: "trained" | "edm",
): PrecondCoefficients {
  const j = rounding === "edm"
    ? schedule.u.indexOf(schedule.roundSigma(sigma))
    : schedule.nearestIndex(sigma);
  return {
    cSkip: 1,
    cOut: -sigma,
    cIn: 1 / Math.sqrt(sigma * sigma + 1),
    cNoise: schedule.M - 1 - j,
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
  const rounding = options.indexRounding ?? "trained";
  if (rounding !== "trained" && rounding !== "edm") {
    throw new RangeError(`indexRounding must be "trained" or "edm", got "${rounding}"`);
  }
  // u_0..u_{M-1} ("trained") or u_0..u_M ("edm", NVlabs/edm round_sigma).
  const size = rounding === "edm" ? M + 1 : M;
  const trained = Float32Array.from(u.subarray(0, size));
  return precondition(network, {
    kind: "iddpm",
    sigmaMin: u[M - 1],
    sigmaMax: u[0],
    roundSigma: schedule.roundSigma,
    coefficients: (sigma) => coefficientsOf(schedule, sigma, rounding),
    tensorCoefficients: (sigma) => {
      const table = tf.tensor2d(trained, [1, size], "float32");
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
