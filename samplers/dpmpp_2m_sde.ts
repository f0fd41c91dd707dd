/**
 * DPM++ 2M SDE (k-diffusion's `sample_dpmpp_2m_sde`): the multistep 2nd order solver of the
 * reverse SDE in the data prediction D (Lu et al. 2022, "DPM-Solver++", Section 5 and Appendix
 * B, SDE-DPM-Solver++(2M)). With lambda = -log sigma, h = lambda_{i+1} - lambda_i, r = h_{i-1}/h
 * and eta scaling the noise (eta = 0 gives an ODE solver close to DPM++ 2M):
 * `x' = (sigma_{i+1}/sigma_i) e^(-eta h) x - expm1(-(1 + eta) h) D_i`, plus the correction
 * `-expm1(-(1+eta)h) / (2r) (D_i - D_{i-1})` ("midpoint") or
 * `(-expm1(-(1+eta)h) / (-(1+eta)h) + 1) / r (D_i - D_{i-1})` ("heun"), plus noise
 * `sigma_{i+1} sqrt(-expm1(-2 eta h)) sNoise n`. The step to sigma = 0 returns D.
 * N steps cost N evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { addNoise, checkAncestral, denoiseAt, runSigmaSteps } from "./_util.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Options of {@linkcode sampleDpmpp2mSde}. */
export interface Dpmpp2mSdeOptions extends AncestralOptions {
  /** The 2nd order correction: "midpoint" (k-diffusion's default) or "heun". @default "midpoint" */
  solverType?: "midpoint" | "heun";
}

/**
 * Samples with DPM++ 2M SDE steps.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, eta (default 1), sNoise, solver type and the noise source.
 * @returns The final sample (owned by the caller) and the number of evaluations (N).
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @throws {RangeError} For invalid sigmas, eta, sNoise or solver type.
 * @example Ten steps, per-image noise
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleDpmpp2mSde } from "./dpmpp_2m_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleDpmpp2mSde(denoiser, x0, { sigmas, noise: perImageNoise([0, 1, 2, 3]) });
 * x.dispose();
 * ```
 */
export async function sampleDpmpp2mSde(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: Dpmpp2mSdeOptions,
): Promise<SampleResult> {
  const { sigmas, eta = 1, sNoise = 1, noise, cond, solverType = "midpoint" } = options;
  checkAncestral(options, "sampleDpmpp2mSde");
  if (solverType !== "midpoint" && solverType !== "heun") {
    throw new RangeError(
      `sampleDpmpp2mSde: solverType must be "midpoint" or "heun", got "${solverType}"`,
    );
  }
  let old: tf.Tensor | null = null;
  let hLast = NaN;
  return await runSigmaSteps(x, options, (xi, i) => {
    const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
    const denoised = denoiseAt(denoiser, xi, sigma, cond);
    let next: tf.Tensor;
    if (sigmaNext === 0) {
      next = tf.clone(denoised);
    } else {
      const h = Math.log(sigma / sigmaNext), etaH = eta * h;
      const phi = -Math.expm1(-h - etaH);
      next = tf.add(tf.mul(xi, (sigmaNext / sigma) * Math.exp(-etaH)), tf.mul(denoised, phi));
      if (old !== null) {
        const r = hLast / h;
        const c = solverType === "midpoint" ? 0.5 * phi / r : (phi / (-h - etaH) + 1) / r;
        next = tf.add(next, tf.mul(tf.sub(denoised, old), c));
      }
      next = addNoise(next, noise, sigmaNext * Math.sqrt(-Math.expm1(-2 * etaH)) * sNoise);
      hLast = h;
    }
    old?.dispose();
    old = tf.keep(tf.clone(denoised));
    return { x: next, denoised, nfe: 1 };
  }, () => old?.dispose());
}
