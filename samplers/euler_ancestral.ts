/**
 * Euler ancestral sampler (k-diffusion's `sample_euler_ancestral`): each step splits the move
 * from sigma_i to sigma_{i+1} into an Euler step of the probability-flow ODE (Karras et al. 2022,
 * eq. 4 with sigma(t) = t) down to sigma_down, then fresh noise of standard deviation sigma_up,
 * with `sigma_down^2 + sigma_up^2 = sigma_{i+1}^2` (`ancestralStep`). With eta = 1 this is DDPM's
 * ancestral sampler (Ho et al. 2020, Algorithm 2) written in sigma space; with eta = 0 it is Euler.
 * No noise is added on a step that ends at sigma = 0. N steps cost N evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { addNoise, ancestralStep, checkAncestral, denoiseAt, runSigmaSteps, toD } from "./_util.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleEulerAncestral}: sigmas, eta, sNoise and the noise source. */
export type EulerAncestralOptions = AncestralOptions;

/**
 * Samples with Euler ancestral steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, eta (default 1), sNoise and the noise source.
 * @returns The final sample (owned by the caller) and the number of evaluations (N).
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @throws {RangeError} For invalid sigmas, eta or sNoise.
 * @example Ten steps, per-image noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleEulerAncestral } from "./euler_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleEulerAncestral(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleEulerAncestral(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: EulerAncestralOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, noise, cond } = options;
  checkAncestral(options, "sampleEulerAncestral");
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i];
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, sigmas[i + 1], eta);
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    const stepped = tf.add(xi, tf.mul(toD(xi, sigma, denoised), sigmaDown - sigma));
    return { x: addNoise(stepped, noise, sigmaUp * sNoise), denoised, nfe: 1 };
  });
}
