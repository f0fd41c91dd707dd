/**
 * The predictor-corrector sampler of score SDEs (Song et al. 2021, Section 4.2, Algorithm 1;
 * score_sde_pytorch `sampling.py` `get_pc_sampler`), composing any {@linkcode Predictor} with any
 * {@linkcode Corrector}, for any {@linkcode LogSnrSchedule} (VE, VP, sub-VP...).
 *
 * As the reference: the grid is `linspace(tStart, eps, steps)`; at each grid time the corrector
 * runs first, then the predictor (Algorithm 1 writes the predictor first; the code, which users
 * compare numbers with, does the corrector first, and so does this sampler); the predictor's
 * step is `dt = tStart / steps` (score_sde's 1/N when tStart = T = 1 and steps = N), and with
 * `denoise` (score_sde's `noise_removal`, on by default) the result is the last predictor step's
 * mean, without its noise. NFE counts every score evaluation:
 * `steps (nStepsEach + 1)` for one corrector step and any predictor but `none`.
 *
 * A start time `tStart` below T and a start tensor make the sampler continue a trajectory from
 * an intermediate time (DiNof's T_m): pass `z(tStart)` and `steps = round(tStart N)`. The discrete
 * forms of the predictors and of alpha_i use `numScales` levels, by default
 * `round(steps T / tStart)` (N again in both cases).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { scoreFromDenoiser } from "../models/ddpm_param.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { sdePriorStd, sdeSamplingEps } from "../schedules/score_sde.ts";
import { runSteps } from "./_util.ts";
import { type Corrector, noneCorrector } from "./sde_correctors.ts";
import {
  type Predictor,
  reverseDiffusionPredictor,
  type SdeStepContext,
} from "./sde_predictors.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode samplePc}. */
export interface PcSamplerOptions extends SamplerOptions {
  /** The process. Required. */
  schedule: LogSnrSchedule;
  /** Per-image noise of the predictor and corrector. Required. */
  noise: NoiseSource;
  /** The predictor. @default reverseDiffusionPredictor */
  predictor?: Predictor;
  /** The corrector. @default noneCorrector */
  corrector?: Corrector;
  /** Time of the start tensor. @default schedule.tMax */
  tStart?: number;
  /** End time of the grid. @default sdeSamplingEps(schedule): 1e-5 VE, 1e-3 VP / sub-VP */
  eps?: number;
  /** Number of grid times. @default round(numScales tStart / T) */
  steps?: number;
  /** Levels N of the discrete forms. @default 1000, or round(steps T / tStart) when steps is given */
  numScales?: number;
  /** Return the last predictor step's mean (score_sde's `noise_removal`). @default true */
  denoise?: boolean;
}

/** The resolved time grid of a PC or ODE sampler. */
export interface PcPlan {
  /** Grid times, decreasing from tStart to eps. */
  times: Float64Array;
  /** Predictor step dt. */
  dt: number;
  /** Levels N of the discrete forms. */
  numScales: number;
}

/**
 * The grid of {@linkcode samplePc} (see the module doc), with its checks.
 *
 * @param options The schedule and the grid options.
 * @returns Times, dt and N.
 * @throws {RangeError} For tStart outside (eps, T], eps outside (0, tStart), or bad counts.
 * @example DiNof: 300 steps from T_m = 0.3
 * ```ts
 * import { planPc } from "./pc_sampler.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * const plan = planPc({ schedule: scoreSdeSchedule("vp"), tStart: 0.3, steps: 300 });
 * // plan.numScales === 1000, plan.dt === 1e-3
 * ```
 */
export function planPc(
  options: Pick<PcSamplerOptions, "schedule" | "tStart" | "eps" | "steps" | "numScales">,
): PcPlan {
  const { schedule } = options;
  const T = schedule.tMax;
  const tStart = options.tStart ?? T;
  const eps = options.eps ?? sdeSamplingEps(schedule);
  if (!(tStart > 0 && tStart <= T)) {
    throw new RangeError(`tStart = ${tStart} must lie in (0, ${T}] of schedule "${schedule.name}"`);
  }
  if (!(eps > 0 && eps < tStart)) {
    throw new RangeError(`eps = ${eps} must lie in (0, tStart = ${tStart}); use e.g. 1e-3`);
  }
  const numScales = options.numScales ??
    (options.steps !== undefined ? Math.max(2, Math.round(options.steps * T / tStart)) : 1000);
  const steps = options.steps ?? Math.max(1, Math.round(numScales * tStart / T));
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`steps must be an integer >= 1, got ${steps}`);
  }
  if (!Number.isInteger(numScales) || numScales < 2) {
    throw new RangeError(`numScales must be an integer >= 2, got ${numScales}`);
  }
  const times = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    times[i] = steps === 1 ? tStart : tStart + (eps - tStart) * i / (steps - 1);
  }
  return { times, dt: tStart / steps, numScales };
}

/**
 * A draw of the prior N(0, sigma(T)^2 I) (score_sde's `prior_sampling`).
 *
 * @param schedule The process.
 * @param shape The batch shape [N, ...].
 * @param noise Per-image noise.
 * @returns The draw, owned by the caller.
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { sdePriorSample } from "./pc_sampler.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const z = sdePriorSample(scoreSdeSchedule("ve"), [2, 4], perImageNoise([0, 1]));
 * ```
 */
export function sdePriorSample(
  schedule: LogSnrSchedule,
  shape: number[],
  noise: NoiseSource,
): tf.Tensor {
  return tf.tidy(() => tf.mul(noise.randn(shape), sdePriorStd(schedule)));
}

/**
 * Predictor-corrector sampling of the reverse SDE from `z` at `tStart` (see the module doc).
 *
 * @param denoiser The model as a denoiser in EDM's unscaled space (any preconditioned network,
 *   or an ideal denoiser); its score is `scoreFromDenoiser`.
 * @param z The start tensor z(tStart) in the schedule's space (e.g. {@linkcode sdePriorSample});
 *   never disposed.
 * @param options Schedule, noise, predictor, corrector, grid and the shared sampler options.
 * @returns The sample at eps (owned by the caller) and the number of score evaluations.
 * @throws {RangeError} For a bad grid.
 * @example Reverse diffusion + Langevin (snr 0.16) on the VE SDE, 100 levels
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { samplePc, sdePriorSample } from "./pc_sampler.ts";
 * import { langevinCorrector } from "./sde_correctors.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = scoreSdeSchedule("ve"), noise = perImageNoise([0, 1]);
 * const z = sdePriorSample(schedule, [2, 3], noise);
 * const { x, nfe } = await samplePc(idealGaussianDenoiser(), z, {
 *   schedule,
 *   noise,
 *   corrector: langevinCorrector({ snr: 0.16 }),
 *   steps: 100,
 * }); // nfe = 200
 * ```
 */
export async function samplePc(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: PcSamplerOptions,
): Promise<SampleResult> {
  const {
    schedule,
    noise,
    predictor = reverseDiffusionPredictor,
    corrector = noneCorrector,
    denoise = true,
    cond,
  } = options;
  const { times, dt, numScales } = planPc(options);
  const score = scoreFromDenoiser(denoiser, schedule);
  const steps = times.length;
  const level = (t: number): number => schedule.sigma(t) / schedule.alpha(t);
  let nfe = 0;
  const x = await runSteps(z, steps, options, (zi, i) => {
    const t = times[i];
    const ctx: SdeStepContext = { schedule, score, t, dt, numScales, noise, cond };
    const out = tf.tidy(() => {
      const c = corrector.step(zi, ctx);
      const p = predictor.step(c.z, ctx);
      const s = p.score ?? c.score;
      // The clean-data estimate of the last score: x_hat = (z + sigma^2 s) / alpha.
      const denoised = s === null
        ? tf.div(p.mean, schedule.alpha(t))
        : tf.div(tf.add(p.score ? c.z : zi, tf.mul(s, schedule.sigma(t) ** 2)), schedule.alpha(t));
      nfe += c.nfe + p.nfe;
      const last = i === steps - 1 && denoise;
      return { z: last ? p.mean : p.z, denoised };
    });
    const tNext = i + 1 < steps ? times[i + 1] : t - dt;
    return {
      x: out.z,
      denoised: out.denoised,
      info: {
        t,
        tNext,
        sigma: level(t),
        sigmaNext: tNext > 0 ? level(tNext) : 0,
        sigmaHat: level(t),
        nfe,
      },
    };
  });
  return { x, nfe };
}
