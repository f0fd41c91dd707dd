/**
 * EDM's deterministic sampler: Heun's 2nd order method with arbitrary sigma(t) and s(t)
 * (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
 * Algorithm 1, solving the probability-flow ODE of eq. 4).
 *
 * With `sigmas` the process is EDM's own (sigma(t) = t, s(t) = 1); with `timeSteps` and a
 * `schedule` it is any row of EDM Table 1 (VP, VE, ...). Like NVlabs/edm's `generate.py`, the
 * last step is a plain Euler step unless `secondOrderAtLast` is set, so N steps cost 2N - 1
 * denoiser evaluations; when the last noise level is 0 (the usual case) this is exactly
 * Algorithm 1, which cannot evaluate dx/dt at sigma = 0.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { heunStep, planOdeSteps, runSteps } from "./_util.ts";
import type { OdeSamplerOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleHeun}. */
export interface HeunOptions extends OdeSamplerOptions {
  /**
   * Apply the 2nd order correction on the last step too (2N evaluations instead of 2N - 1).
   * Needs a nonzero final noise level, e.g. steps that stop at sigma_min or integrate forward in
   * time to encode data. @default false
   */
  secondOrderAtLast?: boolean;
}

/**
 * Solves the probability-flow ODE from `timeSteps[0]` (or `sigmas[0]`) to the last step with
 * Heun's method (EDM Algorithm 1).
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample at t_0, e.g. `s(t_0) sigma(t_0) n` with n ~ N(0, I); never disposed.
 * @param options The steps (`sigmas`, or `timeSteps` with `schedule`) and the shared options.
 * @returns The final sample x_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} For missing or conflicting steps.
 * @throws {RangeError} For invalid noise levels, or `secondOrderAtLast` with a final sigma of 0.
 * @example Sample with EDM's 18 steps (35 evaluations)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleHeun } from "./heun.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x); // data all at the origin
 * const sigmas = karrasSigmas({ numSteps: 18 });
 * const noise = tf.randomNormal([4, 2]);
 * const x0 = tf.mul(noise, sigmas[0]);
 * const { x, nfe } = await sampleHeun(denoiser, x0, { sigmas }); // nfe === 35
 * x.dispose();
 * ```
 */
export async function sampleHeun(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: HeunOptions,
): Promise<SampleResult> {
  const { cond, secondOrderAtLast = false } = options;
  const nodes = planOdeSteps(options);
  const numSteps = nodes.length - 1;
  if (secondOrderAtLast && nodes[numSteps].sigma === 0) {
    throw new RangeError(
      "secondOrderAtLast needs a nonzero final noise level (dx/dt is undefined at sigma = 0); " +
        "drop the option or end the steps above 0",
    );
  }
  let nfe = 0;
  const out = await runSteps(x, numSteps, options, (xi, i) => {
    const from = nodes[i], to = nodes[i + 1];
    const correct = i < numSteps - 1 || secondOrderAtLast;
    const step = tf.tidy(() => heunStep(denoiser, xi, from, to, correct, cond));
    nfe += step.nfe;
    return {
      x: step.x,
      denoised: step.denoised,
      info: {
        t: from.t,
        tNext: to.t,
        sigma: from.sigma,
        sigmaNext: to.sigma,
        sigmaHat: from.sigma,
        nfe,
      },
    };
  });
  return { x: out, nfe };
}
