/**
 * DPM++ 3M SDE (k-diffusion's `sample_dpmpp_3m_sde`): the multistep 3rd order solver of the
 * reverse SDE in the data prediction D, extending SDE-DPM-Solver++(2M) (Lu et al. 2022,
 * "DPM-Solver++") with a second divided difference. With lambda = -log sigma,
 * h = lambda_{i+1} - lambda_i, h_eta = (1 + eta) h, r0 = h_{i-1}/h, r1 = h_{i-2}/h:
 * `x' = e^(-h_eta) x - expm1(-h_eta) D_i + phi_2 d1 - phi_3 d2` with
 * `phi_2 = expm1(-h_eta)/h_eta + 1`, `phi_3 = phi_2/h_eta - 1/2`,
 * `d1_0 = (D_i - D_{i-1})/r0`, `d1_1 = (D_{i-1} - D_{i-2})/r1`,
 * `d1 = d1_0 + (d1_0 - d1_1) r0/(r0 + r1)`, `d2 = (d1_0 - d1_1)/(r0 + r1)`
 * (only `phi_2 d1_0` on the second step, nothing on the first), plus noise
 * `sigma_{i+1} sqrt(-expm1(-2 eta h)) sNoise n`. The step to sigma = 0 returns D.
 * N steps cost N evaluations.
 *
 * Reference and theory disagree here, and this module follows the reference (k-diffusion, and
 * DPM-Solver's `multistep_dpm_solver_third_update`, which use the same coefficients): with
 * D(lambda) = D_i + tau D' + tau^2/2 D'', the divided difference d2 above is h^2 D'' / 2, while
 * the exponential integrator's second-derivative term is `h^3 phi_3(h) D''`, twice what
 * `-phi_3 d2` gives. Measured on Gaussian data at eta = 0 (`recipes/sampler_orders.ts`,
 * Karras sigmas, N = 8..256): error ratios per doubling 23.9, 10.8, 2.5, 3.5, 3.7, i.e. 3rd order
 * at few steps but 2nd order asymptotically; with the term doubled the ratios are 6.4, 15.3, 8.9,
 * 8.3, 7.8 (3rd order).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { addNoise, checkAncestral, denoiseAt, runSigmaSteps } from "./_util.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleDpmpp3mSde}: sigmas, eta, sNoise and the noise source. */
export type Dpmpp3mSdeOptions = AncestralOptions;

/**
 * Samples with DPM++ 3M SDE steps.
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
 * import { sampleDpmpp3mSde } from "./dpmpp_3m_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpmpp3mSde(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleDpmpp3mSde(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpmpp3mSdeOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, noise, cond } = options;
  checkAncestral(options, "sampleDpmpp3mSde");
  // Past denoised estimates D_{i-1}, D_{i-2} and step lengths h_{i-1}, h_{i-2}.
  let d1: tf.Tensor | null = null, d2: tf.Tensor | null = null;
  let h1 = NaN, h2 = NaN;
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    let next: tf.Tensor;
    let h = NaN;
    if (sigmaNext === 0) {
      next = tf.clone(denoised);
    } else {
      h = Math.log(sigma / sigmaNext);
      const hEta = h * (eta + 1);
      next = tf.add(tf.mul(xi, Math.exp(-hEta)), tf.mul(denoised, -Math.expm1(-hEta)));
      const phi2 = Math.expm1(-hEta) / hEta + 1;
      if (d2 !== null && d1 !== null) {
        const r0 = h1 / h, r1 = h2 / h;
        const diff0 = tf.div(tf.sub(denoised, d1), r0);
        const diff1 = tf.div(tf.sub(d1, d2), r1);
        const first = tf.add(diff0, tf.mul(tf.sub(diff0, diff1), r0 / (r0 + r1)));
        const second = tf.div(tf.sub(diff0, diff1), r0 + r1);
        const phi3 = phi2 / hEta - 0.5;
        next = tf.sub(tf.add(next, tf.mul(first, phi2)), tf.mul(second, phi3));
      } else if (d1 !== null) {
        next = tf.add(next, tf.mul(tf.div(tf.sub(denoised, d1), h1 / h), phi2));
      }
      next = addNoise(next, noise, sigmaNext * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise);
    }
    d2?.dispose();
    d2 = d1;
    d1 = tf.keep(tf.clone(denoised));
    h2 = h1;
    h1 = h;
    return { x: next, denoised, nfe: 1 };
  }, () => tf.dispose([d1, d2].filter((t): t is tf.Tensor => t !== null)));
}
