/**
 * DPM-2 (k-diffusion's `sample_dpm_2`, after Lu et al. 2022, "DPM-Solver", Algorithm 1 with
 * r = 1/2 written for the sigma-space ODE of Karras et al. 2022 eq. 4): a 2nd order midpoint
 * method whose midpoint is the geometric mean `sigma_mid = sqrt(sigma_i sigma_{i+1})` (half way in
 * log sigma, i.e. in DPM-Solver's lambda): `x_mid = x + (sigma_mid - sigma_i) d_i`, then
 * `x_{i+1} = x + (sigma_{i+1} - sigma_i) d(x_mid; sigma_mid)`. A step ending at sigma = 0 is a
 * plain Euler step, so N steps cost 2N - 1 evaluations. k-diffusion's optional churn is not
 * included (use `sampleEdmStochastic` for churn).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { denoiseAt, runSigmaSteps, toD } from "./_util.ts";
import type { SampleResult, SigmaStepOptions } from "./types.ts";
import type { Conditioning } from "../core/types.ts";

/** Options of {@linkcode sampleDpm2}: the noise levels and the shared options. */
export type Dpm2Options = SigmaStepOptions;

/**
 * Solves the probability-flow ODE with DPM-2 steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels and the shared options.
 * @returns The final sample (owned by the caller) and the number of evaluations.
 * @throws {RangeError} For invalid sigmas.
 * @example Ten steps (19 evaluations)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpm2 } from "./dpm2.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpm2(denoiser, x0, { sigmas });
 * x.dispose();
 * ```
 */
export async function sampleDpm2(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpm2Options,
): Promise<SampleResult> {
  const { sigmas, cond } = options;
  return await runSigmaSteps(x, options, (xi, i) => {
    const denoised = denoiseAt(denoiser, xi, sigmas[i], cond);
    return dpm2Step(denoiser, xi, denoised, sigmas[i], sigmas[i + 1], cond);
  });
}

/**
 * One DPM-2 step from `sigma` to `sigmaNext` given the denoised estimate at sigma (Euler when
 * sigmaNext is 0). Call inside `tf.tidy`; shared with `sampleDpm2Ancestral`.
 *
 * @returns The new sample, `denoised` itself and the evaluations made (1 or 2).
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { dpm2Step } from "./dpm2.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const x = tf.ones([1, 2]);
 * const step = dpm2Step(zero, x, tf.zerosLike(x), 2, 1);
 * ```
 */
export function dpm2Step(
  denoiser: Denoiser,
  x: tf.Tensor,
  denoised: tf.Tensor,
  sigma: number,
  sigmaNext: number,
  cond?: Conditioning,
): { x: tf.Tensor; denoised: tf.Tensor; nfe: number } {
  const d = toD(x, sigma, denoised);
  if (sigmaNext === 0) return { x: tf.add(x, tf.mul(d, -sigma)), denoised, nfe: 1 };
  const sigmaMid = Math.sqrt(sigma * sigmaNext);
  const xMid = tf.add(x, tf.mul(d, sigmaMid - sigma));
  const dMid = toD(xMid, sigmaMid, denoiseAt(denoiser, xMid, sigmaMid, cond));
  return { x: tf.add(x, tf.mul(dMid, sigmaNext - sigma)), denoised, nfe: 2 };
}
