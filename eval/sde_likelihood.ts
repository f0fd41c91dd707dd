/**
 * Likelihood and bits/dim of score-SDE models (Song et al. 2021, Section 4.3 and Appendix D.2;
 * score_sde_pytorch `likelihood.py`) through the probability-flow ODE code of `likelihood.ts`.
 *
 * Every process `z = alpha(t) x + sigma(t) eps` (VE, VP, sub-VP) has the same probability-flow
 * ODE in EDM's unscaled space `x = z / alpha`, `dx/dsigma_edm = (x - D(x; sigma_edm)) / sigma_edm`,
 * with `sigma_edm = sigma / alpha`; the process only sets the interval. So the likelihood of a
 * score-SDE model integrates `likelihood.ts`'s ODE from `sigma_edm(eps)` (eps = 1e-5, as the
 * reference) to `sigma_edm(tEnd)`, and the prior N(0, sigma_edm(T)^2 I) in x is score_sde's
 * N(0, sigma(T)^2 I) in z. Departures from the reference, all below 1e-4 bits/dim with the
 * defaults: the density is that of x = z / alpha(eps) (score_sde's of z; they differ by
 * dim log alpha(eps), alpha(1e-5) > 1 - 5e-7), and VP / sub-VP priors use sigma(1) = 1 - 2e-5 /
 * 1 - 4.3e-5 where score_sde uses 1. The dequantization and the +7 bits/dim offset are
 * `likelihood.ts`'s (score_sde's convention).
 *
 * With `tEnd < T` and `prior` (a log-density of z at tEnd, e.g. DiNof's flow at T_m), the ODE
 * stops at tEnd and `prior` scores its end points, mapped to z = alpha(tEnd) x with the
 * Jacobian term `dim log alpha(tEnd)`.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { SCORE_SDE_EPS } from "../schedules/score_sde.ts";
import { type LikelihoodOptions, type LikelihoodResult, pfOdeLikelihood } from "./likelihood.ts";

/** The ODE interval of {@linkcode sdeLikelihoodRange}. */
export interface SdeLikelihoodRangeOptions {
  /** Data end of the ODE. @default 1e-5 */
  eps?: number;
  /** Other end of the ODE. @default schedule.tMax */
  tEnd?: number;
}

/**
 * The EDM noise levels of the ODE interval [eps, tEnd], as `pfOdeLikelihood`'s options.
 *
 * @param schedule The process.
 * @param options eps and tEnd.
 * @returns `{ sigmaMin: sigma_edm(eps), sigmaMax: sigma_edm(tEnd) }`.
 * @throws {RangeError} Unless tMin <= eps < tEnd <= tMax.
 * @example VP: sigma_edm(1) is about 152
 * ```ts
 * import { sdeLikelihoodRange } from "./sde_likelihood.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * const { sigmaMin, sigmaMax } = sdeLikelihoodRange(scoreSdeSchedule("vp"));
 * ```
 */
export function sdeLikelihoodRange(
  schedule: LogSnrSchedule,
  options: SdeLikelihoodRangeOptions = {},
): { sigmaMin: number; sigmaMax: number } {
  const { eps = SCORE_SDE_EPS, tEnd = schedule.tMax } = options;
  if (!(eps >= schedule.tMin && eps < tEnd && tEnd <= schedule.tMax)) {
    throw new RangeError(
      `need ${schedule.tMin} <= eps < tEnd <= ${schedule.tMax}, got eps ${eps}, tEnd ${tEnd}`,
    );
  }
  const level = (t: number): number => schedule.sigma(t) / schedule.alpha(t);
  return { sigmaMin: level(eps), sigmaMax: level(tEnd) };
}

/** Options of {@linkcode sdeLikelihood}. */
export interface SdeLikelihoodOptions
  extends Omit<LikelihoodOptions, "sigmaMin" | "sigmaMax" | "prior">, SdeLikelihoodRangeOptions {
  /** The process. Required. */
  schedule: LogSnrSchedule;
  /**
   * log p(z) at tEnd of the end points z = alpha(tEnd) x(tEnd), [N, ...shape] row-major, one value
   * per image. @default N(0, sigma(tEnd)^2 I)
   */
  prior?: (zEnd: Float64Array, shape: readonly number[]) => Float64Array | Promise<Float64Array>;
}

/**
 * NLL and bits/dim of `x` under a score-SDE model (see the module doc).
 *
 * @param denoiser The model in EDM's unscaled space.
 * @param x Images [N, ...shape] in [-1, 1] (or any data with `dequantize: false`); not disposed.
 * @param options The process, the interval, an optional prior at tEnd and `likelihood.ts`'s options.
 * @returns `pfOdeLikelihood`'s result.
 * @throws {RangeError} For a bad interval or options.
 * @example Bits/dim of Gaussian data under its exact denoiser on the sub-VP SDE
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { sdeLikelihood } from "./sde_likelihood.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x = tf.tensor2d([[0.1, -0.2]]);
 * const { nll } = await sdeLikelihood(idealGaussianDenoiser({ std: 0.5 }), x, {
 *   schedule: scoreSdeSchedule("subvp"),
 *   rng: new Rng(0),
 *   dequantize: false,
 * });
 * ```
 */
export async function sdeLikelihood(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: SdeLikelihoodOptions,
): Promise<LikelihoodResult> {
  const { schedule, eps, tEnd = schedule.tMax, prior, ...rest } = options;
  const range = sdeLikelihoodRange(schedule, { eps, tEnd });
  const a = schedule.alpha(tEnd);
  return await pfOdeLikelihood(denoiser, x, {
    ...rest,
    ...range,
    prior: prior &&
      (async (xEnd, shape) => {
        const dim = xEnd.length / shape[0];
        const logP = await prior(xEnd.map((v) => a * v), shape);
        return Float64Array.from(logP, (v) => v + dim * Math.log(a));
      }),
  });
}
