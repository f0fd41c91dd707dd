/**
 * The likelihood of a DiNof model (shared/papers/dinof.txt, eq. 8 for the flow; score SDE, Song
 * et al. 2021, Section 4.3 and Appendix D.2 for the ODE part):
 *
 * ```
 * log p(x) = log p_flow(x(T_m)) + int_eps^{T_m} div f(x(t), t) dt
 * ```
 * i.e. the probability-flow ODE from the data (eps = 1e-5) up to T_m and the flow there, through
 * `sdeLikelihood` (`likelihood.ts`'s RK45 + Hutchinson code with an end time and a prior at it;
 * dequantization of 8-bit data and the +7 bits/dim offset). The authors' `likelihood.py` keeps
 * score_sde's ODE from eps to T with the Gaussian prior and never uses the flow, so it scores the
 * score model alone (`sdeLikelihood` without `tEnd`); this one scores the model that samples.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type DinofModel, flowLogProb } from "../models/dinof.ts";
import type { LikelihoodResult } from "./likelihood.ts";
import { sdeLikelihood, type SdeLikelihoodOptions } from "./sde_likelihood.ts";

/** Options of {@linkcode dinofLikelihood}: `sdeLikelihood`'s, less the process, end and prior. */
export type DinofLikelihoodOptions = Omit<SdeLikelihoodOptions, "schedule" | "tEnd" | "prior">;

/**
 * NLL and bits/dim of `x` under a DiNof model (see the module doc).
 *
 * @param model The DiNof model.
 * @param x Data [N, ...shape] in [-1, 1] (any data with `dequantize: false`); not disposed.
 * @param options The generator (required), eps, tolerances, probes, dequantization.
 * @returns As `pfOdeLikelihood`; `priorLogP` is the flow's term (with the Jacobian of z = alpha x).
 * @throws {RangeError} For invalid options.
 * @example
 * ```ts ignore
 * const { meanBitsPerDim } = await dinofLikelihood(model, images, { rng: new Rng(0) });
 * ```
 */
export async function dinofLikelihood(
  model: DinofModel,
  x: tf.Tensor,
  options: DinofLikelihoodOptions,
): Promise<LikelihoodResult> {
  return await sdeLikelihood(model.denoiser, x, {
    ...options,
    schedule: model.schedule,
    tEnd: model.tm,
    prior: async (zEnd, shape) => {
      const logp = tf.tidy(() =>
        flowLogProb(model, tf.tensor(Float32Array.from(zEnd), [...shape]))
      );
      const values = Float64Array.from(await logp.data());
      logp.dispose();
      return values;
    },
  });
}
