/**
 * Shared step maths of the DDPM samplers (ancestral and DDIM): the noise and x_0 predictions
 * at one step of a chain, from any {@linkcode Denoiser} (through `epsFromDenoiser`, which calls a
 * DDPM model's eps network directly), with optional clipping of x_0 to the data range.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Conditioning } from "../core/types.ts";
import { epsFromX0, type EpsPredictor, x0FromEps } from "../models/ddpm_param.ts";
import { type DdpmProcess, sigmaOfStep } from "../schedules/ddpm.ts";
import type { StepRecord } from "./types.ts";

/** Predictions at one step; both tensors are new. */
export interface DdpmPrediction {
  /** eps_theta(x_t, t) (recomputed from the clipped x_0 when clipping). */
  eps: tf.Tensor;
  /** x0-hat (eq. 15), clipped to [-1, 1] when asked. */
  x0: tf.Tensor;
}

/**
 * Predicts eps and x_0 at step k of `process`. Call inside `tf.tidy`.
 *
 * @example
 * ```ts ignore
 * const { eps, x0 } = tf.tidy(() => predictAtStep(epsFn, process, xt, 10, false));
 * ```
 */
export function predictAtStep(
  eps: EpsPredictor,
  process: DdpmProcess,
  xt: tf.Tensor,
  k: number,
  clipX0: boolean,
  cond?: Conditioning,
): DdpmPrediction {
  const t = tf.fill([xt.shape[0]], process.timesteps[k]) as tf.Tensor1D;
  const epsHat = eps(xt, t, cond);
  const x0 = x0FromEps(process, { xt, eps: epsHat, t: k });
  if (!clipX0) return { eps: epsHat, x0 };
  const clipped = tf.clipByValue(x0, -1, 1);
  return { eps: epsFromX0(process, { xt, x0: clipped, t: k }), x0: clipped };
}

/**
 * The scalar part of a step record for a step from k to k - 1 (or k - 1 to k when encoding).
 *
 * @example
 * ```ts ignore
 * const info = stepInfo(process, 10, 9, nfe);
 * ```
 */
export function stepInfo(
  process: DdpmProcess,
  from: number,
  to: number,
  nfe: number,
): Omit<StepRecord, "i" | "x" | "denoised"> {
  const sigma = sigmaOfStep(process, from);
  return {
    t: process.timesteps[from],
    tNext: process.timesteps[to],
    sigma,
    sigmaNext: sigmaOfStep(process, to),
    sigmaHat: sigma,
    nfe,
  };
}

/**
 * Checks a start step against the chain: an integer in 1..T.
 *
 * @throws {RangeError} Naming the value.
 * @example
 * ```ts ignore
 * checkStartStep(process, 500, "startStep");
 * ```
 */
export function checkStartStep(process: DdpmProcess, k: number, name: string): void {
  if (!Number.isInteger(k) || k < 1 || k > process.T) {
    throw new RangeError(`${name} = ${k}: give an integer step in 1..${process.T}`);
  }
}
