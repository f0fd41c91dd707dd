/**
 * DPM-Solver-fast (Lu et al. 2022, "DPM-Solver", Section 3.4 and Appendix D.1; k-diffusion's
 * `sample_dpm_fast`): for a budget of K evaluations, M = floor(K/3) + 1 steps uniform in
 * lambda = -log sigma from sigma_max to sigma_min, all DPM-Solver-3 steps except the last one
 * or two (orders [3, ..., 3, 2, 1] when K is divisible by 3, else [3, ..., 3, K mod 3]), so the
 * budget is met exactly. With eta > 0 each step is split ancestrally (`ancestralStep`) as in
 * k-diffusion. Like the paper and k-diffusion it stops at sigma_min and returns the sample there
 * (no final denoising).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { addNoise, ancestralStep, checkAncestral, runSigmaSteps } from "./_util.ts";
import { dpmSolverStep, epsAt } from "./_dpm_solver.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleDpmSolverFast}. */
export interface DpmSolverFastOptions extends SamplerOptions {
  /** Noise level the sampler starts from (x is `sigmaMax * n`). Required. */
  sigmaMax: number;
  /** Noise level it stops at, 0 < sigmaMin < sigmaMax. Required. */
  sigmaMin: number;
  /** Number of denoiser evaluations K >= 1. Required. */
  nfe: number;
  /** Amount of ancestral noise (0: deterministic). @default 0 */
  eta?: number;
  /** Scale of the ancestral noise. @default 1 */
  sNoise?: number;
  /** Noise source, one generator per image; required when eta > 0. @default undefined */
  noise?: NoiseSource;
}

/**
 * The orders of the DPM-Solver-fast steps for a budget of `nfe` evaluations (paper Appendix D.1).
 *
 * @example
 * ```ts
 * import { dpmSolverFastOrders } from "./dpm_solver_fast.ts";
 * dpmSolverFastOrders(10); // [3, 3, 3, 1]
 * ```
 */
export function dpmSolverFastOrders(nfe: number): (1 | 2 | 3)[] {
  if (!Number.isInteger(nfe) || nfe < 1) {
    throw new RangeError(`DPM-Solver-fast: nfe must be a positive integer, got ${nfe}`);
  }
  const m = Math.floor(nfe / 3) + 1;
  if (nfe % 3 === 0) return [...Array(m - 2).fill(3), 2, 1];
  return [...Array(m - 1).fill(3), (nfe % 3) as 1 | 2];
}

/**
 * Samples with DPM-Solver-fast.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmaMax * n`; never disposed.
 * @param options sigmaMax, sigmaMin, the evaluation budget, and optional ancestral noise.
 * @returns The sample at sigma_min (owned by the caller) and the evaluations made (= nfe).
 * @throws {RangeError} For an invalid range, budget, eta or sNoise.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @example Ten evaluations
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleDpmSolverFast } from "./dpm_solver_fast.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const x0 = tf.mul(tf.randomNormal([4, 2]), 80);
 * const opts = { sigmaMax: 80, sigmaMin: 0.002, nfe: 10 };
 * const { x, nfe } = await sampleDpmSolverFast(denoiser, x0, opts);
 * x.dispose();
 * ```
 */
export async function sampleDpmSolverFast(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DpmSolverFastOptions,
): Promise<SampleResult> {
  const { sigmaMax, sigmaMin, nfe, eta = 0, sNoise = 1, noise, cond } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !Number.isFinite(sigmaMax)) {
    throw new RangeError(
      `DPM-Solver-fast needs 0 < sigmaMin < sigmaMax < infinity, got ${sigmaMin}, ${sigmaMax}`,
    );
  }
  checkAncestral({ eta, sNoise, noise }, "sampleDpmSolverFast");
  const orders = dpmSolverFastOrders(nfe);
  const tStart = -Math.log(sigmaMax), tEnd = -Math.log(sigmaMin);
  const ts = Float64Array.from(
    { length: orders.length + 1 },
    (_, i) => tStart + (tEnd - tStart) * i / orders.length,
  );
  const sigmas = ts.map((t) => Math.exp(-t));
  return await runSigmaSteps(x, { ...options, sigmas }, (xi, i) => {
    const t = ts[i];
    let tNext = ts[i + 1], sigmaUp = 0;
    if (eta > 0) {
      const { sigmaDown } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
      tNext = Math.min(tEnd, -Math.log(sigmaDown));
      sigmaUp = Math.sqrt(Math.max(sigmas[i + 1] ** 2 - Math.exp(-2 * tNext), 0));
    }
    const { eps, denoised } = epsAt(denoiser, xi, t, cond);
    const cache = { eps, stages: new Map<string, tf.Tensor>(), nfe: 1 };
    const stepped = dpmSolverStep(denoiser, xi, t, tNext, orders[i], cache, cond);
    return { x: addNoise(stepped, noise, sigmaUp * sNoise), denoised, nfe: cache.nfe };
  });
}
