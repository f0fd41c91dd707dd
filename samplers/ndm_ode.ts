/**
 * Sampling from a Neural Diffusion Model along its continuous-time dynamics (NDM paper, eq.
 * 12-13): z_1 ~ N(0, I) taken from t = 1 down to t0 = `schedule.tMin`; the result is z_{t0} ~ x.
 *
 * - {@linkcode sampleNdmOde}: constant nu, the ODE (drift `ndmOdeDrift` of
 *   `eval/ndm_likelihood.ts`) with the adaptive RK45 solver of `eval/rk45.ts`.
 * - {@linkcode sampleNdmSde}: the reverse SDE with the noise injection of the DDPM/VP choice,
 *   `g^2 = dsigma^2/dt - 2 r sigma^2`, by Euler-Maruyama on a uniform grid of t:
 *   `z <- z - dt [f_ODE(z, t) + g^2 / (2 sigma^2) (z - alpha F(x_hat, t))] + g sqrt(dt) n`
 *   (no noise on the last step). This is the limit of Algorithm 2 with
 *   `sigmaTilde^2_{s|t} ~ g^2 dt`; in eq. 12's terms the score coefficient is
 *   `1/2 (dsigma^2/dt - 2 r sigma^2 + g^2)` (the extracted text reads `(g^2 - 2 r sigma^2)`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { epsFromDenoiser } from "../models/ddpm_param.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { ndmDriftParts, ndmOdeDrift, type NdmOdeModel } from "../eval/ndm_likelihood.ts";
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

/** Options of {@linkcode sampleNdmSde}. */
export interface NdmSdeSampleOptions {
  /** Euler-Maruyama steps on [t0, 1]. Required. */
  steps: number;
  /** Source of the injected noise, one generator per image. Required. */
  noise: NoiseSource;
  /** Aborts between steps. @default undefined */
  signal?: AbortSignal;
}

/**
 * Samples the reverse SDE (see the module doc) with Euler-Maruyama.
 *
 * @param model eps_theta, F and the schedule.
 * @param x z_1 [N, ...]; never disposed.
 * @param options Steps and noise.
 * @returns z_{t0} (owned by the caller) and the number of drift evaluations (steps).
 * @throws {RangeError} For steps not a positive integer.
 * @example
 * ```ts ignore
 * const { x } = await sampleNdmSde({ eps, transform, schedule }, zT, { steps: 500, noise });
 * ```
 */
export async function sampleNdmSde(
  model: NdmOdeModel,
  x: tf.Tensor,
  options: NdmSdeSampleOptions,
): Promise<SampleResult> {
  const { steps, noise, signal } = options;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`steps must be a positive integer, got ${steps}`);
  }
  const { schedule } = model, t0 = schedule.tMin, dt = (1 - t0) / steps;
  let z = tf.clone(x);
  for (let i = 0; i < steps; i++) {
    signal?.throwIfAborted();
    const t = 1 - i * dt;
    const a = schedule.alpha(t), s = schedule.sigma(t);
    const g2 = 2 * s * schedule.sigmaDeriv(t) - 2 * (schedule.alphaDeriv(t) / a) * s * s;
    const next = tf.tidy(() => {
      const { drift, fHat } = ndmDriftParts(model, z, t);
      const sde = tf.add(drift, tf.mul(tf.sub(z, tf.mul(fHat, a)), g2 / (2 * s * s)));
      const mean = tf.sub(z, tf.mul(sde, dt));
      return i < steps - 1 ? tf.add(mean, tf.mul(noise.randn(z.shape), Math.sqrt(g2 * dt))) : mean;
    });
    z.dispose();
    z = next;
    await new Promise((r) => setTimeout(r, 0));
  }
  return { x: z, nfe: steps };
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

/**
 * The reverse-SDE sampler as a {@linkcode CustomSampler} (for `sampleToFiles`); the noise is each
 * image's own generator.
 *
 * @param process The model's T-step process.
 * @param transform F.
 * @param options The continuous schedule, network time scale and Euler-Maruyama steps.
 * @returns The sampler.
 * @example
 * ```ts ignore
 * const sampler = ndmSdeSampler(process, transform, { schedule, steps: 500 });
 * ```
 */
export function ndmSdeSampler(
  process: DdpmProcess,
  transform: NdmTransform,
  options: { schedule: LogSnrSchedule; steps: number; T?: number },
): CustomSampler {
  const { schedule, steps, T = process.T } = options;
  return {
    initialScale: 1,
    run: (denoiser: Denoiser, x, { noise, signal }) =>
      sampleNdmSde({ eps: epsFromDenoiser(denoiser, process), transform, schedule, T }, x, {
        steps,
        noise,
        signal,
      }),
  };
}
