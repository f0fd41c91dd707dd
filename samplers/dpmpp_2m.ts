/**
 * DPM++ 2M (k-diffusion's `sample_dpmpp_2m`): DPM-Solver++(2M) (Lu et al. 2022,
 * "DPM-Solver++", Algorithm 2), the multistep 2nd order exponential integrator in the data
 * prediction D and lambda = -log sigma. With h = lambda_{i+1} - lambda_i, r = h_{i-1} / h:
 * `D' = (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}`, `x_{i+1} = (sigma_{i+1} / sigma_i) x_i - expm1(-h) D'`.
 * The first step, and the step to sigma = 0 (x = D), are 1st order. N steps cost N evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { dataStep, denoiseAt, runSigmaSteps } from "./_util.ts";
import type { SampleResult, SigmaStepOptions } from "./types.ts";

/** Options of {@linkcode sampleDpmpp2m}: the noise levels and the shared options. */
export type Dpmpp2mOptions = SigmaStepOptions;

/**
 * Solves the probability-flow ODE with DPM-Solver++(2M).
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels and the shared options.
 * @returns The final sample (owned by the caller) and the number of evaluations (N).
 * @throws {RangeError} For invalid sigmas.
 * @example Ten steps (10 evaluations)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpmpp2m } from "./dpmpp_2m.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpmpp2m(denoiser, x0, { sigmas });
 * x.dispose();
 * ```
 */
export async function sampleDpmpp2m(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpmpp2mOptions,
): Promise<SampleResult> {
  const { sigmas, cond } = options;
  let old: tf.Tensor | null = null;
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    let target = denoised;
    if (old !== null && sigmaNext > 0) {
      const r = Math.log(sigmas[i - 1] / sigma) / Math.log(sigma / sigmaNext);
      const fac = 1 / (2 * r);
      target = tf.sub(tf.mul(denoised, 1 + fac), tf.mul(old, fac));
    }
    old?.dispose();
    old = tf.keep(tf.clone(denoised));
    return { x: dataStep(xi, target, sigma, sigmaNext), denoised, nfe: 1 };
  }, () => old?.dispose());
}
