/**
 * DiNof sampling (shared/papers/dinof.txt, Section 3.2, "New samples are generated in the
 * backward process by simulating remaining stochastic trajectories from t = T_m to t = 0"):
 * x(T_m) = flow(T n) with n ~ N(0, I) at temperature T, then
 * - `method: "pc"`: the predictor-corrector sampler of score SDEs (`samplePc`, any predictor and
 *   corrector) from T_m to eps with `round(T_m N)` steps of dt = T_m / steps (= 1/N) and the
 *   final noise removal, as in the authors' `get_pc_sampler` with `start = T_m`;
 * - `method: "ode"`: the probability-flow ODE (`samplePfOde`, RK45) from T_m to eps with its final
 *   denoising step. The authors' code has no ODE sampler from T_m; this one is ours.
 *
 * As a {@linkcode CustomSampler} of `generateSamples`, so sampling tasks write it through
 * `sampleToFiles`: the per-image latent `n_i` comes from seed i, the flow's latents are cut from
 * it in order (`dinofPrior`), and the predictor/corrector noise continues from the same per-image
 * generators. `nfe` counts score evaluations only; the flow adds one inverse pass per image.
 *
 * Reference vs paper vs this code: the authors' sampler runs `int(N T_m)` steps (truncation; the
 * paper and the issue say T_m N, and this code rounds, so 0.29 N gives 290 and not 289) on
 * `linspace(T_m, eps, steps)`; their flow is trained on x at `T_m (1 - eps) + eps` while the
 * sampler starts at T_m; here both use T_m exactly. The temperature is Glow's (latent std), 1 by
 * default as in the authors' `flow.sample`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { CustomSampler } from "./generate.ts";
import { type DinofModel, dinofPrior } from "../models/dinof.ts";
import { samplePc } from "./pc_sampler.ts";
import { samplePfOde } from "./pf_ode.ts";
import type { Predictor } from "./sde_predictors.ts";
import type { Corrector } from "./sde_correctors.ts";

/** Options of {@linkcode dinofSampler}. */
export interface DinofSamplerOptions {
  /** Latent temperature of the flow (std of its base draws). @default 1 */
  temperature?: number;
  /** Reverse SDE with predictor-corrector steps, or the probability-flow ODE. @default "pc" */
  method?: "pc" | "ode";
  /** PC predictor. @default reverseDiffusionPredictor */
  predictor?: Predictor;
  /** PC corrector. @default noneCorrector */
  corrector?: Corrector;
  /** Noise scales N of the full process; PC takes round(T_m N) steps. @default 1000 */
  numScales?: number;
  /** End time. @default sdeSamplingEps(schedule) */
  eps?: number;
  /** Final noise removal (PC) / denoising step (ODE). @default true */
  denoise?: boolean;
  /** RK45 relative tolerance (ODE). @default 1e-5 */
  rtol?: number;
  /** RK45 absolute tolerance (ODE). @default 1e-5 */
  atol?: number;
}

/**
 * The number of PC steps from T_m: `max(1, round(T_m N / T))`.
 *
 * @param tm The start time T_m.
 * @param options N and T.
 * @returns The step count.
 * @example
 * ```ts
 * import { dinofSteps } from "./dinof_sampler.ts";
 * const steps = dinofSteps(0.6, { numScales: 1000, T: 1 }); // 600
 * ```
 */
export function dinofSteps(tm: number, options: { numScales: number; T: number }): number {
  return Math.max(1, Math.round(tm * options.numScales / options.T));
}

/**
 * A `generateSamples` sampler that draws x(T_m) from the flow and runs the reverse process from
 * T_m (see the module doc).
 *
 * @param model The DiNof model (its denoiser is the one `generateSamples` passes in).
 * @param options Temperature, method, predictor, corrector, N, eps, denoising, tolerances.
 * @returns The sampler.
 * @throws {RangeError} For a negative temperature, an unknown method or a bad N.
 * @example 16 digits from a DiNof model
 * ```ts ignore
 * const out = await generateSamples(model.denoiser, {
 *   seeds: [...Array(16).keys()], shape: [28, 28, 1],
 *   sampler: dinofSampler(model, { corrector: langevinCorrector({ snr: 0.16 }) }),
 * });
 * ```
 */
export function dinofSampler(model: DinofModel, options: DinofSamplerOptions = {}): CustomSampler {
  const {
    temperature = 1,
    method = "pc",
    predictor,
    corrector,
    numScales = 1000,
    eps,
    denoise = true,
    rtol,
    atol,
  } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (method !== "pc" && method !== "ode") {
    throw new RangeError(`method must be "pc" or "ode", got "${method}"`);
  }
  if (!Number.isInteger(numScales) || numScales < 2) {
    throw new RangeError(`numScales N must be an integer >= 2, got ${numScales}`);
  }
  const { schedule, tm } = model;
  const steps = dinofSteps(tm, { numScales, T: schedule.tMax });
  return {
    initialScale: temperature,
    async run(denoiser, n, { noise, cond, signal }) {
      const zTm = dinofPrior(model, n);
      try {
        return method === "pc"
          ? await samplePc(denoiser, zTm, {
            schedule,
            noise,
            predictor,
            corrector,
            tStart: tm,
            steps,
            numScales,
            eps,
            denoise,
            cond,
            signal,
          })
          : await samplePfOde(denoiser, zTm, {
            schedule,
            tStart: tm,
            tEnd: eps,
            denoise,
            numScales,
            rtol,
            atol,
            cond,
            signal,
          });
      } finally {
        tf.dispose(zTm);
      }
    },
  };
}
