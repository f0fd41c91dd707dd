/**
 * DPM-Solver-1, -2 and -3 single steps in the noise prediction (Lu et al. 2022, "DPM-Solver",
 * eqs. 3.7-3.9 and Algorithms 4-5; k-diffusion's `DPMSolver.dpm_solver_{1,2,3}_step`) for the
 * sigma-space process x = y + sigma n (alpha = 1), in t = lambda = -log sigma:
 * eps(x, t) = (x - D(x; e^-t)) / e^-t. Shared by `sampleDpmSolverFast` and
 * `sampleDpmSolverAdaptive`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { denoiseAt } from "./_util.ts";

/** Evaluates eps at (x, t) once per key and remembers it for the other steps of the same stage. */
export interface EpsCache {
  /** eps(x, t) for the step's start point, computed by the caller. */
  eps: tf.Tensor;
  /** Stage evaluations by key (e.g. "r1"). */
  stages: Map<string, tf.Tensor>;
  /** Evaluations made. */
  nfe: number;
}

/** eps(x, t) = (x - D(x; sigma)) / sigma with sigma = e^-t. Call inside `tf.tidy`. */
export function epsAt(
  denoiser: Denoiser,
  x: tf.Tensor,
  t: number,
  cond?: Conditioning,
): { eps: tf.Tensor; denoised: tf.Tensor } {
  const sigma = Math.exp(-t);
  const denoised = denoiseAt(denoiser, x, sigma, cond);
  return { eps: tf.div(tf.sub(x, denoised), sigma), denoised };
}

/**
 * One DPM-Solver step of order 1, 2 or 3 from t to tNext (lambda = -log sigma); `r1`, `r2` place
 * the intermediate stages. Stage evaluations are cached in `cache` under their r. Call inside
 * `tf.tidy`.
 *
 * @returns The new sample.
 */
export function dpmSolverStep(
  denoiser: Denoiser,
  x: tf.Tensor,
  t: number,
  tNext: number,
  order: 1 | 2 | 3,
  cache: EpsCache,
  cond?: Conditioning,
  r1 = order === 2 ? 0.5 : 1 / 3,
  r2 = 2 / 3,
): tf.Tensor {
  const sigma = (u: number) => Math.exp(-u);
  const h = tNext - t;
  const { eps } = cache;
  const stage = (r: number, u: tf.Tensor): tf.Tensor => {
    const key = String(r);
    let e = cache.stages.get(key);
    if (e === undefined) {
      e = epsAt(denoiser, u, t + r * h, cond).eps;
      cache.stages.set(key, e);
      cache.nfe++;
    }
    return e;
  };
  const base = tf.sub(x, tf.mul(eps, sigma(tNext) * Math.expm1(h)));
  if (order === 1) return base;
  const u1 = tf.sub(x, tf.mul(eps, sigma(t + r1 * h) * Math.expm1(r1 * h)));
  const eps1 = stage(r1, u1);
  if (order === 2) {
    return tf.sub(base, tf.mul(tf.sub(eps1, eps), sigma(tNext) / (2 * r1) * Math.expm1(h)));
  }
  const s2 = sigma(t + r2 * h);
  const u2 = tf.sub(
    tf.sub(x, tf.mul(eps, s2 * Math.expm1(r2 * h))),
    tf.mul(tf.sub(eps1, eps), s2 * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1)),
  );
  const eps2 = stage(r2, u2);
  return tf.sub(base, tf.mul(tf.sub(eps2, eps), sigma(tNext) / r2 * (Math.expm1(h) / h - 1)));
}
