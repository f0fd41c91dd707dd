/**
 * Sampling from a Neural Diffusion Model (NDM paper, Algorithm 2, posterior eq. 8): from
 * z_K ~ N(0, I), for k = K..1, `x_hat = x_hat_theta(z_k, k)` (through the noise prediction,
 * `x0FromEps`) and
 * `z_{k-1} = alpha_{k-1} F(x_hat, u_{k-1}) + sqrt(sigma_{k-1}^2 - s_k^2) / sigma_k (z_k - alpha_k F(x_hat, u_k)) + s_k n`
 * with `s_k^2 = eta^2 betaTilde_k`: eta = 1 is the DDPM-style posterior, eta = 0 the
 * deterministic DDIM-style one. At k = 1 (alpha_0 = 1, sigma_0 = 0) the result is F(x_hat, 0).
 * Any chain works: a `respaceDdpm` subsequence gives "trained with 1000, sampled with 10".
 *
 * For the identity F this IS DDIM (`sampleDdim`, same eta; eta = 1 is DDPM's ancestral sampler
 * with sigma_t^2 = betaTilde_t), and the sampler calls it; the general update gives the same
 * images up to float32 rounding (tested). Noise is drawn as DDIM draws it (only where s_k > 0),
 * one generator per image.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { epsFromDenoiser } from "../models/ddpm_param.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";
import { ndmTime } from "../training/ndm_loss.ts";
import { checkStartStep, predictAtStep, stepInfo } from "./_ddpm.ts";
import { sampleDdim } from "./ddim.ts";
import type { CustomSampler } from "./generate.ts";
import { runSteps } from "./_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleNdm}. */
export interface NdmSamplerOptions extends SamplerOptions {
  /** The chain to walk (the training process or a `respaceDdpm` of it). */
  process: DdpmProcess;
  /** The transformation F (the one the model was trained with). */
  transform: NdmTransform;
  /** Posterior noise: s_k = eta sqrt(betaTilde_k); 1 DDPM-style, 0 deterministic. @default 1 */
  eta?: number;
  /** Source of n, one generator per image; required when eta > 0. @default undefined */
  noise?: NoiseSource;
  /** The step of the chain that `x` is at. @default process.T */
  startStep?: number;
  /** Clip x_hat to [-1, 1] before F (the data range; a common variant Algorithm 2 lacks). @default false */
  clipX0?: boolean;
}

/**
 * Samples with Algorithm 2.
 *
 * @param denoiser The model's denoiser (`ddpmDenoiser(eps, process)`; its eps network is used).
 * @param x z at `startStep` (z_T ~ N(0, I)); never disposed.
 * @param options Chain, transform, eta, noise.
 * @returns z_0 (owned by the caller) and the number of network evaluations.
 * @throws {TypeError} Without `process`/`transform`, or without `noise` when eta > 0.
 * @throws {RangeError} For eta outside [0, 1] or a start step outside 1..T.
 * @example Ten deterministic steps with a fixed linear F
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { ddpmDenoiser, ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { scaleTransform } from "../models/ndm_transform.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { sampleNdm } from "./ndm_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess({ T: 10 });
 * const denoiser = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), process);
 * const zT = perImageNoise([0, 1]).randn([2, 3]);
 * const { x } = await sampleNdm(denoiser, zT, { process, transform: scaleTransform(), eta: 0 });
 * ```
 */
export async function sampleNdm(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: NdmSamplerOptions,
): Promise<SampleResult> {
  const { process, transform, eta = 1, noise, cond, clipX0 = false } = options;
  if (process === undefined || transform === undefined) {
    throw new TypeError("sampleNdm needs options.process and options.transform");
  }
  const startStep = options.startStep ?? process.T;
  checkStartStep(process, startStep, "startStep");
  if (!(eta >= 0 && eta <= 1)) throw new RangeError(`eta must be in [0, 1], got ${eta}`);
  if (eta > 0 && noise === undefined) {
    throw new TypeError(`eta = ${eta} needs a noise source: pass noise: perImageNoise(seeds)`);
  }
  if (transform.kind === "identity") return await sampleDdim(denoiser, x, { ...options, eta });
  const eps = epsFromDenoiser(denoiser, process);
  let nfe = 0;
  const out = await runSteps(x, startStep, options, (zt, i) => {
    const k = startStep - i;
    const step = tf.tidy(() => {
      const pred = predictAtStep(eps, process, zt, k, clipX0, cond);
      const { mean, std: s } = ndmPosterior(pred.x0, zt, { process, transform, k, eta });
      let next = mean;
      if (s > 0 && noise !== undefined) next = tf.add(next, tf.mul(noise.randn(zt.shape), s));
      return { x: next, denoised: pred.x0 };
    });
    nfe++;
    return { ...step, info: stepInfo(process, k, k - 1, nfe) };
  });
  return { x: out, nfe };
}

/** Options of {@linkcode ndmPosterior}. */
export interface NdmPosteriorOptions {
  /** The chain. */
  process: DdpmProcess;
  /** F. */
  transform: NdmTransform;
  /** The step k >= 1 of z_k; the posterior is of z_{k-1}. */
  k: number;
  /** Posterior noise scale. @default 1 */
  eta?: number;
}

/**
 * The NDM posterior q(z_{k-1} | z_k, x) of eq. 8: its mean
 * `alpha_{k-1} F(x, u_{k-1}) + sqrt(sigma_{k-1}^2 - s^2) / sigma_k (z_k - alpha_k F(x, u_k))`
 * and standard deviation `s = eta sqrt(betaTilde_k)`. With x = x_hat it is the model's
 * p_theta(z_{k-1} | z_k).
 *
 * @param x The data point (or x_hat) [N, ...]; never disposed.
 * @param zt z_k, shaped like x; never disposed.
 * @param options Chain, transform, step, eta.
 * @returns The mean (a new tensor) and the standard deviation.
 * @throws {RangeError} For k outside 1..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { scaleTransform } from "../models/ndm_transform.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmPosterior } from "./ndm_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const { mean, std } = ndmPosterior(tf.ones([1, 2]), tf.zeros([1, 2]), {
 *   process: ddpmProcess({ T: 10 }),
 *   transform: scaleTransform(),
 *   k: 5,
 * });
 * ```
 */
export function ndmPosterior(
  x: tf.Tensor,
  zt: tf.Tensor,
  options: NdmPosteriorOptions,
): { mean: tf.Tensor; std: number } {
  const { process, transform, k, eta = 1 } = options;
  checkStartStep(process, k, "k");
  const ab = process.alphaBar, n = x.shape[0];
  const s = eta * Math.sqrt(((1 - ab[k - 1]) / (1 - ab[k])) * (1 - ab[k] / ab[k - 1]));
  const c = Math.sqrt(Math.max(1 - ab[k - 1] - s * s, 0)) / Math.sqrt(1 - ab[k]);
  const mean = tf.tidy(() => {
    const times = tf.tensor1d(
      Float32Array.from({ length: 2 * n }, (_, j) => ndmTime(process, j < n ? k - 1 : k)),
    );
    const [fS, fT] = tf.split(transform.apply(tf.concat([x, x]), times), 2);
    return tf.add(
      tf.mul(fS, Math.sqrt(ab[k - 1])),
      tf.mul(tf.sub(zt, tf.mul(fT, Math.sqrt(ab[k]))), c),
    );
  });
  return { mean, std: s };
}

/**
 * Algorithm 2 as a {@linkcode CustomSampler} for `generateSamples` / `sampleToFiles` and the
 * training previews.
 *
 * @param process The chain.
 * @param transform F.
 * @param options eta and x_hat clipping (both @default as in {@linkcode sampleNdm}).
 * @returns The sampler.
 * @example
 * ```ts ignore
 * await sampleToFiles(denoiser, { seeds, shape, sampler: ndmSampler(chain, f, { eta: 1 }) }, { out });
 * ```
 */
export function ndmSampler(
  process: DdpmProcess,
  transform: NdmTransform,
  options: { eta?: number; clipX0?: boolean } = {},
): CustomSampler {
  const { eta = 1, clipX0 = false } = options;
  return {
    initialScale: 1,
    run: (denoiser, x, { noise, cond, signal }) =>
      sampleNdm(denoiser, x, { process, transform, eta, noise, cond, signal, clipX0 }),
  };
}
