/**
 * The probability-flow ODE of a score SDE (Song et al. 2021, Section 4.3, eq. 13;
 * score_sde_pytorch `sampling.py` `get_ode_sampler`):
 * `dz/dt = f(t) z - g(t)^2 / 2 score(z, t)`, solved with the adaptive Dormand-Prince RK45 of
 * `eval/rk45.ts` (the reference uses scipy's RK45 with rtol = atol = 1e-5).
 *
 * It runs in either direction between any two times of the schedule: from T (or an
 * intermediate tStart) down to eps to sample, or from the data end up to any t to encode.
 * With `denoise` (score_sde's `noise_removal`; on by default when running backwards) one
 * reverse-diffusion predictor step without noise follows at tEnd, as the reference does: one
 * more score evaluation. NFE counts the score evaluations (RK45's right-hand sides + denoising).
 *
 * Its path is EDM's ODE in `x = z / alpha` (Heun with the same levels gives the same samples),
 * and unlike the PC sampler nothing pulls it back to the marginals: a network whose epsilon
 * error at high noise (t > 0.7 for VP) is above the data's tiny signal there gives saturated or
 * blank samples while PC still gives digits (a briefly trained eps-prediction model; see
 * tests/sde_consistency_test.ts for the closed-form checks of the query path).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { solveRk45 } from "../eval/rk45.ts";
import { scoreFromDenoiser } from "../models/ddpm_param.ts";
import { forwardSdeCoefficients } from "../schedules/forward_sde.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { sdeSamplingEps } from "../schedules/score_sde.ts";
import { reverseDiffusionPredictor } from "./sde_predictors.ts";
import type { SampleResult } from "./types.ts";

/** Options of {@linkcode samplePfOde}. */
export interface PfOdeOptions {
  /** The process. Required. */
  schedule: LogSnrSchedule;
  /** Time of `z`. @default schedule.tMax */
  tStart?: number;
  /** Time to integrate to. @default sdeSamplingEps(schedule) */
  tEnd?: number;
  /** Relative tolerance of RK45. @default 1e-5 */
  rtol?: number;
  /** Absolute tolerance of RK45. @default 1e-5 */
  atol?: number;
  /** A noise-free reverse-diffusion step at tEnd (only when tEnd < tStart). @default tEnd < tStart */
  denoise?: boolean;
  /** Levels N of the denoising step's discrete form. @default 1000 */
  numScales?: number;
  /** Conditioning of the model. @default undefined */
  cond?: Conditioning;
  /** Most RK45 steps. @default 100_000 */
  maxSteps?: number;
  /** Called after each accepted RK45 step. @default undefined */
  onStep?: (record: { t: number; steps: number; nfe: number }) => void;
  /** Aborts the solve. @default undefined */
  signal?: AbortSignal;
}

/**
 * Solves the probability-flow ODE from `z` at tStart to tEnd (see the module doc).
 *
 * @param denoiser The model in EDM's unscaled space.
 * @param z The state at tStart in the schedule's space; never disposed.
 * @param options Schedule, times, tolerances, denoising.
 * @returns The state at tEnd (owned by the caller) and the number of score evaluations.
 * @throws {RangeError} For times outside [tMin, tMax], equal times, or denoise when encoding.
 * @example Encode data at eps to the latent at T, then decode it
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { samplePfOde } from "./pf_ode.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const schedule = scoreSdeSchedule("vp"), d = idealGaussianDenoiser({ std: 0.5 });
 * const x = tf.tensor2d([[0.2, -0.4]]);
 * const latent = await samplePfOde(d, x, { schedule, tStart: 1e-3, tEnd: 1 });
 * const back = await samplePfOde(d, latent.x, { schedule, denoise: false }); // ~ x
 * ```
 */
export async function samplePfOde(
  denoiser: Denoiser,
  z: tf.Tensor,
  options: PfOdeOptions,
): Promise<SampleResult> {
  const { schedule, rtol = 1e-5, atol = 1e-5, numScales = 1000, cond } = options;
  const tStart = options.tStart ?? schedule.tMax;
  const tEnd = options.tEnd ?? sdeSamplingEps(schedule);
  const denoise = options.denoise ?? tEnd < tStart;
  for (const [name, v] of [["tStart", tStart], ["tEnd", tEnd]] as const) {
    if (!(v >= schedule.tMin && v <= schedule.tMax)) {
      throw new RangeError(
        `${name} = ${v} must lie in [${schedule.tMin}, ${schedule.tMax}] of schedule ` +
          `"${schedule.name}"`,
      );
    }
  }
  if (tStart === tEnd) throw new RangeError(`tStart and tEnd are both ${tStart}; give two times`);
  if (denoise && tEnd > tStart) {
    throw new RangeError("denoise applies when integrating towards the data (tEnd < tStart)");
  }
  const score = scoreFromDenoiser(denoiser, schedule);
  const shape = z.shape;
  const rhs = async (t: number, y: Float64Array): Promise<Float64Array> => {
    const { f, g2 } = forwardSdeCoefficients(schedule, t);
    const s = tf.tidy(() => score(tf.tensor(Float32Array.from(y), shape, "float32"), t, cond));
    const sv = await s.data();
    s.dispose();
    const dy = new Float64Array(y.length);
    for (let i = 0; i < y.length; i++) dy[i] = f * y[i] - 0.5 * g2 * sv[i];
    return dy;
  };
  const y0 = Float64Array.from(await z.data());
  const sol = await solveRk45(rhs, y0, {
    t0: tStart,
    t1: tEnd,
    rtol,
    atol,
    maxSteps: options.maxSteps,
    signal: options.signal,
    onStep: options.onStep && ((r) => options.onStep?.({ t: r.t, steps: r.steps, nfe: r.nfe })),
  });
  const end = tf.tensor(Float32Array.from(sol.y), shape, "float32");
  if (!denoise) return { x: end, nfe: sol.nfe };
  const x = tf.tidy(() =>
    reverseDiffusionPredictor.step(end, {
      schedule,
      score,
      t: tEnd,
      dt: schedule.tMax / numScales,
      numScales,
      noise: { randn: (sh) => tf.zeros(sh) },
      cond,
    }).mean
  );
  end.dispose();
  return { x, nfe: sol.nfe + 1 };
}
