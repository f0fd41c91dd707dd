/**
 * Sampling from a Neural Diffusion Model with its deterministic dynamics (NDM paper, eq. 12-13
 * with constant nu; the drift is `ndmOdeDrift` in `eval/ndm_likelihood.ts`): z_1 ~ N(0, I)
 * integrated from t = 1 down to t0 = `schedule.tMin` with the adaptive RK45 solver of
 * `eval/rk45.ts` (the one the likelihood uses). The result is z_{t0} ~ x.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { epsFromDenoiser } from "../models/ddpm_param.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { ndmOdeDrift, type NdmOdeModel } from "../eval/ndm_likelihood.ts";
import { solveRk45 } from "../eval/rk45.ts";
import type { CustomSampler } from "./generate.ts";
import type { SampleResult } from "./types.ts";

/** Options of {@linkcode sampleNdmOde}. */
export interface NdmOdeSampleOptions {
  /** RK45 relative tolerance. @default 1e-3 */
  rtol?: number;
  /** RK45 absolute tolerance. @default 1e-3 */
  atol?: number;
  /** Aborts the solve. @default undefined */
  signal?: AbortSignal;
}

/**
 * Integrates the NDM ODE from z_1 = `x` at t = 1 to t0.
 *
 * @param model eps_theta, F and the schedule.
 * @param x z_1 [N, ...]; never disposed.
 * @param options Tolerances.
 * @returns z_{t0} (owned by the caller) and the number of drift evaluations.
 * @example
 * ```ts ignore
 * const { x } = await sampleNdmOde({ eps, transform, schedule }, perImageNoise(seeds).randn(shape));
 * ```
 */
export async function sampleNdmOde(
  model: NdmOdeModel,
  x: tf.Tensor,
  options: NdmOdeSampleOptions = {},
): Promise<SampleResult> {
  const { rtol = 1e-3, atol = 1e-3, signal } = options;
  const shape = x.shape;
  const rhs = async (t: number, y: Float64Array): Promise<Float64Array> => {
    const drift = tf.tidy(() => ndmOdeDrift(model, tf.tensor(Float32Array.from(y), shape), t));
    const out = Float64Array.from(await drift.data());
    drift.dispose();
    return out;
  };
  const solution = await solveRk45(rhs, Float64Array.from(await x.data()), {
    t0: 1,
    t1: model.schedule.tMin,
    rtol,
    atol,
    signal,
  });
  return { x: tf.tensor(Float32Array.from(solution.y), shape), nfe: solution.nfe };
}

/**
 * The ODE sampler as a {@linkcode CustomSampler} (for `sampleToFiles`).
 *
 * @param process The model's T-step process (its eps network is found from the denoiser).
 * @param transform F.
 * @param options The continuous schedule, network time scale and tolerances.
 * @returns The sampler.
 * @example
 * ```ts ignore
 * const sampler = ndmOdeSampler(process, transform, { schedule: ndmContinuousSchedule(1000) });
 * ```
 */
export function ndmOdeSampler(
  process: DdpmProcess,
  transform: NdmTransform,
  options: NdmOdeSampleOptions & { schedule: LogSnrSchedule; T?: number },
): CustomSampler {
  const { schedule, T = process.T, ...rest } = options;
  return {
    initialScale: 1,
    run: (denoiser: Denoiser, x, { signal }) =>
      sampleNdmOde({ eps: epsFromDenoiser(denoiser, process), transform, schedule, T }, x, {
        ...rest,
        signal,
      }),
  };
}
