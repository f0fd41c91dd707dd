/**
 * DPM++ SDE (k-diffusion's `sample_dpmpp_sde`): a stochastic 2-stage DPM-Solver++ step (Lu et
 * al. 2022, "DPM-Solver++", single-step 2nd order in the data prediction D; the SDE variant of
 * k-diffusion). With lambda = -log sigma, h = lambda_{i+1} - lambda_i and s = lambda_i + r h:
 * 1. an ancestral DPM-Solver++(1) step (`ancestralStep` with eta) from sigma_i to sigma_s gives u;
 * 2. D_s = D(u; sigma_s); `D' = (1 - 1/(2r)) D_i + 1/(2r) D_s`;
 * 3. an ancestral DPM-Solver++(1) step from sigma_i to sigma_{i+1} with D'.
 *
 * The two noises of a step are increments of one Brownian motion W in sigma, as k-diffusion's
 * default Brownian-tree noise sampler gives them: `n1 = (W(sigma_s) - W(sigma_i)) / sqrt(sigma_i -
 * sigma_s)` and `n2 = (W(sigma_{i+1}) - W(sigma_i)) / sqrt(sigma_i - sigma_{i+1})`, so they are
 * correlated; with independent draws the sampler loses accuracy in distribution (measured: a
 * variance 12% low on Gaussian data at 100 steps). They are drawn from the per-image generators
 * (two normals per step) rather than from a tree, so results do change with the step count.
 * A step ending at sigma = 0 is an Euler step (x = D). N steps cost 2N - 1 evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { ancestralStep, checkAncestral, dataStep, denoiseAt, runSigmaSteps } from "./_util.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleDpmppSde}. */
export interface DpmppSdeOptions extends AncestralOptions {
  /** Position of the intermediate stage in lambda, 0 < r <= 1. @default 0.5 */
  r?: number;
}

/**
 * Samples with DPM++ SDE steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, eta (default 1), sNoise, r and the noise source.
 * @returns The final sample (owned by the caller) and the number of evaluations.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @throws {RangeError} For invalid sigmas, eta, sNoise or r.
 * @example Ten steps, per-image noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpmppSde } from "./dpmpp_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpmppSde(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleDpmppSde(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DpmppSdeOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, r = 0.5, noise, cond } = options;
  checkAncestral(options, "sampleDpmppSde");
  if (!(r > 0 && r <= 1)) throw new RangeError(`sampleDpmppSde: r must be in (0, 1], got ${r}`);
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    if (sigmaNext === 0) return { x: tf.clone(denoised), denoised, nfe: 1 };
    const sigmaS = sigma * (sigmaNext / sigma) ** r;
    // Brownian increments over [sigma_s, sigma_i] and [sigma_{i+1}, sigma_s].
    const z1 = eta > 0 && noise ? noise.randn(xi.shape) : null;
    const z2 = eta > 0 && noise ? noise.randn(xi.shape) : null;
    const first = ancestralStep(sigma, sigmaS, eta);
    let u = dataStep(xi, denoised, sigma, first.sigmaDown);
    if (z1) u = tf.add(u, tf.mul(z1, first.sigmaUp * sNoise));
    const denoisedS = denoiseAt(denoiser, u, sigmaS, cond);
    const fac = 1 / (2 * r);
    const mixed = tf.add(tf.mul(denoised, 1 - fac), tf.mul(denoisedS, fac));
    const second = ancestralStep(sigma, sigmaNext, eta);
    let stepped = dataStep(xi, mixed, sigma, second.sigmaDown);
    if (z1 && z2) {
      const d1 = sigma - sigmaS, d2 = sigmaS - sigmaNext;
      const n2 = tf.div(
        tf.add(tf.mul(z1, Math.sqrt(d1)), tf.mul(z2, Math.sqrt(d2))),
        Math.sqrt(d1 + d2),
      );
      stepped = tf.add(stepped, tf.mul(n2, second.sigmaUp * sNoise));
    }
    return { x: stepped, denoised, nfe: 2 };
  });
}
