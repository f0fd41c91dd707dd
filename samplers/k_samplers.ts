/**
 * The k-diffusion sampler family by name (crowsonkb/k-diffusion `k_diffusion/sampling.py`,
 * Stable-Diffusion front ends' names): one entry point that runs any of them with the options
 * that apply, for tasks and sweeps. Each sampler lives in its own module; this only dispatches.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { sampleEulerAncestral } from "./euler_ancestral.ts";
import { sampleDpm2 } from "./dpm2.ts";
import { sampleDpm2Ancestral } from "./dpm2_ancestral.ts";
import { sampleLms } from "./lms.ts";
import { sampleDpmpp2sAncestral } from "./dpmpp_2s_ancestral.ts";
import { sampleDpmppSde } from "./dpmpp_sde.ts";
import { sampleDpmpp2m } from "./dpmpp_2m.ts";
import { sampleDpmpp2mSde } from "./dpmpp_2m_sde.ts";
import { sampleDpmpp3mSde } from "./dpmpp_3m_sde.ts";
import { sampleDpmSolverFast } from "./dpm_solver_fast.ts";
import { sampleDpmSolverAdaptive } from "./dpm_solver_adaptive.ts";
import type { AncestralOptions, SampleResult } from "./types.ts";

/** Names of the k-diffusion samplers, as the tasks' `--sampler` takes them. */
export const K_SAMPLER_NAMES = [
  "euler-ancestral",
  "dpm2",
  "dpm2-ancestral",
  "lms",
  "dpmpp-2s-ancestral",
  "dpmpp-sde",
  "dpmpp-2m",
  "dpmpp-2m-sde",
  "dpmpp-3m-sde",
  "dpm-fast",
  "dpm-adaptive",
] as const;
/** One of {@linkcode K_SAMPLER_NAMES}. */
export type KSamplerName = typeof K_SAMPLER_NAMES[number];

/** Which option each sampler takes beyond `sigmas` (for tasks: a flag that does not apply is an error). */
export const K_SAMPLER_PARAMS: Record<
  KSamplerName,
  readonly ("eta" | "sNoise" | "order" | "solverType" | "rtol" | "atol")[]
> = {
  "euler-ancestral": ["eta", "sNoise"],
  dpm2: [],
  "dpm2-ancestral": ["eta", "sNoise"],
  lms: ["order"],
  "dpmpp-2s-ancestral": ["eta", "sNoise"],
  "dpmpp-sde": ["eta", "sNoise"],
  "dpmpp-2m": [],
  "dpmpp-2m-sde": ["eta", "sNoise", "solverType"],
  "dpmpp-3m-sde": ["eta", "sNoise"],
  "dpm-fast": ["eta", "sNoise"],
  "dpm-adaptive": ["eta", "sNoise", "order", "rtol", "atol"],
};

/** Options of {@linkcode runKSampler}: the union of the family's options. */
export interface KSamplerOptions extends AncestralOptions {
  /** LMS order. @default 4 */
  order?: number;
  /** DPM++ 2M SDE correction. @default "midpoint" */
  solverType?: "midpoint" | "heun";
  /** Adaptive DPM-Solver's relative tolerance. @default 0.05 */
  rtol?: number;
  /** Adaptive DPM-Solver's absolute tolerance. @default 0.0078 */
  atol?: number;
}

/**
 * Runs the named sampler. `eta` defaults to 1 for the ancestral and SDE samplers (k-diffusion's
 * defaults) and to 0 for the DPM-Solvers. DPM-Solver-fast spends N = `sigmas.length - 1`
 * evaluations between `sigmas[0]` and the last positive sigma, ignoring the spacing; adaptive
 * DPM-Solver uses only that range and chooses its own steps (and NFE) from rtol and atol.
 *
 * @param name Which sampler.
 * @param denoiser The denoiser D(x; sigma).
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options Steps, noise and the sampler's parameters.
 * @returns The sampler's result.
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { runKSampler } from "./k_samplers.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([2, 2]), sigmas[0]);
 * const { x } = await runKSampler("dpmpp-2m", (x) => tf.zerosLike(x), x0, { sigmas });
 * x.dispose();
 * ```
 */
export async function runKSampler(
  name: KSamplerName,
  denoiser: Denoiser,
  x: tf.Tensor,
  options: KSamplerOptions,
): Promise<SampleResult> {
  const { order, solverType, rtol, atol, ...rest } = options;
  switch (name) {
    case "euler-ancestral":
      return await sampleEulerAncestral(denoiser, x, rest);
    case "dpm2":
      return await sampleDpm2(denoiser, x, rest);
    case "dpm2-ancestral":
      return await sampleDpm2Ancestral(denoiser, x, rest);
    case "lms":
      return await sampleLms(denoiser, x, { ...rest, order });
    case "dpmpp-2s-ancestral":
      return await sampleDpmpp2sAncestral(denoiser, x, rest);
    case "dpmpp-sde":
      return await sampleDpmppSde(denoiser, x, rest);
    case "dpmpp-2m":
      return await sampleDpmpp2m(denoiser, x, rest);
    case "dpmpp-2m-sde":
      return await sampleDpmpp2mSde(denoiser, x, { ...rest, solverType });
    case "dpmpp-3m-sde":
      return await sampleDpmpp3mSde(denoiser, x, rest);
    case "dpm-fast": {
      const { sigmas } = rest;
      const n = sigmas.length - 1;
      const sigmaMin = sigmas[n] > 0 ? sigmas[n] : sigmas[n - 1];
      return await sampleDpmSolverFast(denoiser, x, {
        ...rest,
        eta: rest.eta ?? 0,
        sigmaMax: sigmas[0],
        sigmaMin,
        nfe: n,
      });
    }
    case "dpm-adaptive": {
      const { sigmas } = rest;
      const n = sigmas.length - 1;
      if (order !== undefined && order !== 2 && order !== 3) {
        throw new RangeError(`dpm-adaptive: order must be 2 or 3, got ${order}`);
      }
      return await sampleDpmSolverAdaptive(denoiser, x, {
        ...rest,
        order: order as 2 | 3 | undefined,
        rtol,
        atol,
        eta: rest.eta ?? 0,
        sigmaMax: sigmas[0],
        sigmaMin: sigmas[n] > 0 ? sigmas[n] : sigmas[n - 1],
      });
    }
    default:
      throw new RangeError(`unknown sampler "${name}": use one of ${K_SAMPLER_NAMES.join(", ")}`);
  }
}
