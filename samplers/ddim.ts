/**
 * DDIM (Song, Meng and Ermon 2021, eq. 12 and 16) on a DDPM chain: from step k to k - 1,
 * `x_{k-1} = sqrt(alphaBar_{k-1}) x0-hat + sqrt(1 - alphaBar_{k-1} - s_k^2) eps_theta + s_k z`
 * with `s_k = eta sqrt((1 - alphaBar_{k-1}) / (1 - alphaBar_k)) sqrt(1 - alphaBar_k / alphaBar_{k-1})`.
 * eta = 0 is deterministic (an Euler step of the probability-flow ODE in sigma); eta = 1 is the
 * ancestral sampler with `sigma_k^2 = betaTilde_k` (DDPM Algorithm 2). Any subsequence of steps
 * is a `respaceDdpm` of the process (e.g. 10, 50 or 100 of T = 1000).
 *
 * Also the deterministic inverse at eta = 0, {@linkcode ddimEncode}: from x_0 up to x_K,
 * `x_k = sqrt(alphaBar_k) x0-hat + sqrt(1 - alphaBar_k) eps_theta(x_{k-1})`, with eps evaluated at
 * the previous step (at the first step, the clean x_0 is fed at step 1's time). Decoding the
 * result recovers x_0 up to the discretization error of both Euler schemes.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { epsFromDenoiser } from "../models/ddpm_param.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";
import { checkStartStep, predictAtStep, stepInfo } from "./_ddpm.ts";
import { runSteps } from "./_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleDdim}. */
export interface DdimOptions extends SamplerOptions {
  /** The chain to walk; respace it for fewer steps. */
  process: DdpmProcess;
  /** Stochasticity eta >= 0: 0 deterministic, 1 ancestral with betaTilde. @default 0 */
  eta?: number;
  /** Source of z, one generator per image; required when eta > 0. @default undefined */
  noise?: NoiseSource;
  /** Clip x0-hat to [-1, 1] (eps is then recomputed from the clipped x0-hat). @default false */
  clipX0?: boolean;
  /** The step k of the chain that `x` is at. @default process.T */
  startStep?: number;
}

/**
 * Samples with DDIM.
 *
 * @param denoiser The denoiser (`ddpmDenoiser(eps, process)` for a DDPM model).
 * @param x x at `startStep` in DDPM space (x_T ~ N(0, I)); never disposed.
 * @param options The chain, eta, noise source and start.
 * @returns x_0 (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} When eta > 0 and no `noise` is given.
 * @throws {RangeError} For eta < 0 or a start step outside 1..T.
 * @example 50 deterministic steps of DDPM's 1000
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { ddpmDenoiser, ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
 * import { sampleDdim } from "./ddim.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const full = ddpmProcess();
 * const process = respaceDdpm(full, spaceTimesteps(full.T, { numSteps: 50 }));
 * const denoiser = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), full);
 * const xT = perImageNoise([0, 1]).randn([2, 3]);
 * const { x, nfe } = await sampleDdim(denoiser, xT, { process }); // nfe 50
 * ```
 */
export async function sampleDdim(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DdimOptions,
): Promise<SampleResult> {
  const { process, eta = 0, noise, clipX0 = false, cond } = options;
  if (process === undefined) {
    throw new TypeError("options.process is required: pass e.g. ddpmProcess()");
  }
  const startStep = options.startStep ?? process.T;
  checkStartStep(process, startStep, "startStep");
  if (!(eta >= 0) || !Number.isFinite(eta)) {
    throw new RangeError(`eta must be a finite number >= 0, got ${eta}`);
  }
  if (eta > 0 && noise === undefined) {
    throw new TypeError(`eta = ${eta} needs a noise source: pass noise: perImageNoise(seeds)`);
  }
  const eps = epsFromDenoiser(denoiser, process);
  const ab = process.alphaBar;
  let nfe = 0;
  const out = await runSteps(x, startStep, options, (xt, i) => {
    const k = startStep - i;
    const s = eta * Math.sqrt(((1 - ab[k - 1]) / (1 - ab[k])) * (1 - ab[k] / ab[k - 1]));
    const step = tf.tidy(() => {
      const pred = predictAtStep(eps, process, xt, k, clipX0, cond);
      const direction = Math.sqrt(Math.max(1 - ab[k - 1] - s * s, 0));
      let next = tf.add(tf.mul(pred.x0, Math.sqrt(ab[k - 1])), tf.mul(pred.eps, direction));
      if (s > 0 && noise !== undefined) next = tf.add(next, tf.mul(noise.randn(xt.shape), s));
      return { x: next, denoised: pred.x0 };
    });
    nfe++;
    return { ...step, info: stepInfo(process, k, k - 1, nfe) };
  });
  return { x: out, nfe };
}

/** Options of {@linkcode ddimEncode}. */
export interface DdimEncodeOptions extends SamplerOptions {
  /** The chain; respace it for fewer steps. */
  process: DdpmProcess;
  /** The step to encode up to. @default process.T */
  endStep?: number;
  /** Clip x0-hat to [-1, 1] on the way. @default false */
  clipX0?: boolean;
}

/**
 * Encodes data into DDIM's latent x_K by running the eta = 0 update forwards (DDIM Section 5.4).
 * Steps are reported with `t` the step left and `tNext` the step reached.
 *
 * @param denoiser The denoiser.
 * @param x Clean data x_0 in [-1, 1]; never disposed.
 * @param options The chain and the end step.
 * @returns x at `endStep` (owned by the caller) and the number of denoiser evaluations.
 * @throws {RangeError} For an end step outside 1..T.
 * @example Encode and decode back
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { ddpmDenoiser, ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ddimEncode, sampleDdim } from "./ddim.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess({ T: 100 });
 * const denoiser = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), process);
 * const latent = await ddimEncode(denoiser, tf.ones([1, 2]), { process });
 * const back = await sampleDdim(denoiser, latent.x, { process }); // ~ [[1, 1]]
 * ```
 */
export async function ddimEncode(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DdimEncodeOptions,
): Promise<SampleResult> {
  const { process, clipX0 = false, cond } = options;
  if (process === undefined) {
    throw new TypeError("options.process is required: pass e.g. ddpmProcess()");
  }
  const endStep = options.endStep ?? process.T;
  checkStartStep(process, endStep, "endStep");
  const eps = epsFromDenoiser(denoiser, process);
  const ab = process.alphaBar;
  let nfe = 0;
  const out = await runSteps(x, endStep, options, (xPrev, i) => {
    const from = i, to = i + 1;
    const step = tf.tidy(() => {
      // x_0 has no noise level of its own: predict eps there at step 1's time, keep x0 = x_0.
      const pred = predictAtStep(eps, process, xPrev, Math.max(from, 1), clipX0, cond);
      const x0 = from === 0 ? (clipX0 ? tf.clipByValue(xPrev, -1, 1) : xPrev) : pred.x0;
      const next = tf.add(tf.mul(x0, Math.sqrt(ab[to])), tf.mul(pred.eps, Math.sqrt(1 - ab[to])));
      return { x: next, denoised: from === 0 ? tf.clone(x0) : pred.x0 };
    });
    nfe++;
    return { ...step, info: stepInfo(process, from, to, nfe) };
  });
  return { x: out, nfe };
}
