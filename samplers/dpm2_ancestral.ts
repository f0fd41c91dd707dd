/**
 * DPM-2 ancestral (k-diffusion's `sample_dpm_2_ancestral`): the ancestral split of
 * `ancestralStep` (a deterministic step to sigma_down, then noise of standard deviation
 * sigma_up) with the deterministic part a DPM-2 step (`dpm2Step`, midpoint at
 * sqrt(sigma_i sigma_down)) instead of Euler. Steps whose sigma_down is 0 are Euler steps.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { addNoise, ancestralStep, checkAncestral, denoiseAt, runSigmaSteps } from "./_util.ts";
import { dpm2Step } from "./dpm2.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleDpm2Ancestral}: sigmas, eta, sNoise and the noise source. */
export type Dpm2AncestralOptions = AncestralOptions;

/**
 * Samples with DPM-2 ancestral steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, eta (default 1), sNoise and the noise source.
 * @returns The final sample (owned by the caller) and the number of evaluations.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @throws {RangeError} For invalid sigmas, eta or sNoise.
 * @example Ten steps, per-image noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpm2Ancestral } from "./dpm2_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpm2Ancestral(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleDpm2Ancestral(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpm2AncestralOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, noise, cond } = options;
  checkAncestral(options, "sampleDpm2Ancestral");
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i];
    const { sigmaDown, sigmaUp } = ancestralStep(sigma, sigmas[i + 1], eta);
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    const step = dpm2Step(denoiser, xi, denoised, sigma, sigmaDown, cond);
    return { ...step, x: addNoise(step.x, noise, sigmaUp * sNoise) };
  });
}
