/**
 * Euler's method for the probability-flow ODE with arbitrary sigma(t) and s(t): EDM Algorithm 1
 * without the 2nd order correction (lines 6-8), as the paper describes it (Karras et al. 2022,
 * Section 2 "Solution by discretization"). First order; N steps cost N denoiser evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { heunStep, planOdeSteps, runSteps } from "./_util.ts";
import type { OdeSamplerOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleEuler}: the steps and the shared sampler options. */
export type EulerOptions = OdeSamplerOptions;

/**
 * Solves the probability-flow ODE with Euler steps from `timeSteps[0]` (or `sigmas[0]`) to the
 * last step.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample at t_0, e.g. `s(t_0) sigma(t_0) n` with n ~ N(0, I); never disposed.
 * @param options The steps (`sigmas`, or `timeSteps` with `schedule`) and the shared options.
 * @returns The final sample x_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} For missing or conflicting steps.
 * @throws {RangeError} For invalid noise levels.
 * @example Sample with 50 Euler steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleEuler } from "./euler.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 50 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleEuler(denoiser, x0, { sigmas }); // nfe === 50
 * x.dispose();
 * ```
 */
export async function sampleEuler(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: EulerOptions,
): Promise<SampleResult> {
  const { cond } = options;
  const nodes = planOdeSteps(options);
  let nfe = 0;
  const out = await runSteps(x, nodes.length - 1, options, (xi, i) => {
    const from = nodes[i], to = nodes[i + 1];
    const step = tf.tidy(() => heunStep(denoiser, xi, from, to, false, cond));
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
