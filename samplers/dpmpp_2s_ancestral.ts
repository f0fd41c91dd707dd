/**
 * DPM++ 2S ancestral (k-diffusion's `sample_dpmpp_2s_ancestral`): DPM-Solver++(2S) (Lu et al.
 * 2022, "DPM-Solver++", Algorithm 1, single-step 2nd order in the data prediction D) with
 * r = 1/2 in lambda = -log sigma, inside the ancestral split of `ancestralStep`: a DPM-Solver++
 * step from sigma_i to sigma_down, then noise of standard deviation sigma_up. With
 * h = log(sigma_i / sigma_down) and s the midpoint in lambda:
 * `u = (sigma_s / sigma_i) x - expm1(-h/2) D(x; sigma_i)`,
 * `x' = (sigma_down / sigma_i) x - expm1(-h) D(u; sigma_s)`.
 * Steps with sigma_down = 0 are Euler steps. N steps cost 2N - 1 evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import {
  addNoise,
  ancestralStep,
  checkAncestral,
  dataStep,
  denoiseAt,
  runSigmaSteps,
} from "./_util.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleDpmpp2sAncestral}: sigmas, eta, sNoise and the noise source. */
export type Dpmpp2sAncestralOptions = AncestralOptions;

/**
 * Samples with DPM++ 2S ancestral steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, eta (default 1; 0 gives deterministic DPM-Solver++(2S)), sNoise, noise.
 * @returns The final sample (owned by the caller) and the number of evaluations.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @throws {RangeError} For invalid sigmas, eta or sNoise.
 * @example Ten steps, per-image noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpmpp2sAncestral } from "./dpmpp_2s_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpmpp2sAncestral(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleDpmpp2sAncestral(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpmpp2sAncestralOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, noise, cond } = options;
  checkAncestral(options, "sampleDpmpp2sAncestral");
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i];
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, sigmas[i + 1], eta);
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    if (sigmaDown === 0) {
      // Euler to 0: x + (x - D) / sigma * (0 - sigma) = D.
      return { x: addNoise(tf.clone(denoised), noise, sigmaUp * sNoise), denoised, nfe: 1 };
    }
    const sigmaS = Math.sqrt(sigma * sigmaDown); // lambda midpoint, r = 1/2
    const u = dataStep(xi, denoised, sigma, sigmaS);
    const stepped = dataStep(xi, denoiseAt(denoiser, u, sigmaS, cond), sigma, sigmaDown);
    return { x: addNoise(stepped, noise, sigmaUp * sNoise), denoised, nfe: 2 };
  });
}
