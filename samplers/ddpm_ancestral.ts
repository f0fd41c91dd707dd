/**
 * DDPM's ancestral sampler (Ho et al. 2020, Algorithm 2): from x_T ~ N(0, I), for t = T..1,
 * `x_{t-1} = (x_t - beta_t / sqrt(1 - alphaBar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z`
 * with `z ~ N(0, I)` for t > 1 and `z = 0` at t = 1 (so the result is mu_theta(x_1, 1), shown
 * "noiselessly", Section 3.3). `sigma_t^2` is beta_t or betaTilde_t (Section 3.2).
 *
 * Runs on any chain: the full process, or a respaced one (improved DDPM's fewer-step sampling,
 * with its recomputed betas). x lives in the DDPM (variance-preserving) space. The denoiser is any
 * EDM {@linkcode Denoiser}; a DDPM model wrapped by `ddpmDenoiser` has its eps network called
 * directly. `clipX0` clips x0-hat to [-1, 1] and uses the posterior mean muTilde(x_t, x0-hat)
 * (eq. 7) instead, a common variant that Algorithm 2 does not have.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { epsFromDenoiser, muFromEps, posteriorMean } from "../models/ddpm_param.ts";
import { type DdpmProcess, type ReverseVariance, reverseVariances } from "../schedules/ddpm.ts";
import { checkStartStep, predictAtStep, stepInfo } from "./_ddpm.ts";
import { runSteps } from "./_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleDdpmAncestral}. */
export interface DdpmAncestralOptions extends SamplerOptions {
  /** The chain to walk (e.g. `ddpmProcess()` or a `respaceDdpm` of it). */
  process: DdpmProcess;
  /** Reverse variance sigma_t^2: "beta" or "betaTilde". @default "beta" */
  variance?: ReverseVariance;
  /** Source of z, one generator per image (`perImageNoise`); required when startStep > 1. @default undefined */
  noise?: NoiseSource;
  /** Clip x0-hat to [-1, 1] and step to muTilde(x_t, x0-hat). @default false */
  clipX0?: boolean;
  /** The step k of the chain that `x` is at; the sampler runs k, k-1, ..., 1. @default process.T */
  startStep?: number;
}

/**
 * Samples with Algorithm 2. Each step reports `denoised` = x0-hat (eq. 15): progressive
 * generation (Section 4.3) is an `onStep` away.
 *
 * @param denoiser The denoiser (`ddpmDenoiser(eps, process)` for a DDPM model).
 * @param x x at `startStep`, in DDPM space (x_T ~ N(0, I) for a full run); never disposed.
 * @param options The chain, variance, noise source and start.
 * @returns x_0 (owned by the caller) and the number of denoiser evaluations (startStep).
 * @throws {TypeError} When steps with noise are to run and no `noise` is given.
 * @throws {RangeError} For an unknown variance or a start step outside 1..T.
 * @example 1000 steps from per-image seeds
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { ddpmDenoiser, ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { sampleDdpmAncestral } from "./ddpm_ancestral.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess();
 * const denoiser = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), process);
 * const noise = perImageNoise([0, 1]);
 * const xT = noise.randn([2, 3]);
 * const { x, nfe } = await sampleDdpmAncestral(denoiser, xT, { process, noise }); // nfe 1000
 * ```
 */
export async function sampleDdpmAncestral(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DdpmAncestralOptions,
): Promise<SampleResult> {
  const { process, variance = "beta", noise, clipX0 = false, cond } = options;
  const startStep = options.startStep ?? process?.T;
  if (process === undefined) {
    throw new TypeError("options.process is required: pass e.g. ddpmProcess()");
  }
  checkStartStep(process, startStep, "startStep");
  const sigma2 = reverseVariances(process, variance);
  if (startStep > 1 && noise === undefined) {
    throw new TypeError(
      "ancestral sampling needs a noise source for z: pass noise: perImageNoise(seeds)",
    );
  }
  const eps = epsFromDenoiser(denoiser, process);
  let nfe = 0;
  const out = await runSteps(x, startStep, options, (xt, i) => {
    const k = startStep - i;
    const step = tf.tidy(() => {
      const pred = predictAtStep(eps, process, xt, k, clipX0, cond);
      const mean = clipX0
        ? posteriorMean(process, { xt, x0: pred.x0, t: k })
        : muFromEps(process, { xt, eps: pred.eps, t: k });
      // Algorithm 2 line 3: z = 0 at the last step. noise is defined whenever k > 1.
      const next = k > 1 && noise !== undefined
        ? tf.add(mean, tf.mul(noise.randn(xt.shape), Math.sqrt(sigma2[k])))
        : mean;
      return { x: next, denoised: pred.x0 };
    });
    nfe++;
    return { ...step, info: stepInfo(process, k, k - 1, nfe) };
  });
  return { x: out, nfe };
}
