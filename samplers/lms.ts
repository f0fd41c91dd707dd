/**
 * Linear multistep sampler (k-diffusion's `sample_lms`): the Adams-Bashforth family for the
 * sigma-space probability-flow ODE `dx/dsigma = (x - D(x; sigma)) / sigma` (Karras et al. 2022,
 * eq. 4 with sigma(t) = t) on non-uniform steps. Step i uses the last `order` derivatives
 * d_i, d_{i-1}, ...: `x_{i+1} = x_i + sum_j c_ij d_{i-j}` with `c_ij` the integral over
 * [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node sigma_{i-j}. k-diffusion
 * integrates these with `scipy.integrate.quad`; here the polynomial is integrated exactly.
 * The first steps use the lower orders available. N steps cost N evaluations.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { denoiseAt, runSigmaSteps, toD } from "./_util.ts";
import type { SampleResult, SigmaStepOptions } from "./types.ts";

/** Options of {@linkcode sampleLms}. */
export interface LmsOptions extends SigmaStepOptions {
  /** Number of past derivatives used (the method's order), 1 to 6. @default 4 */
  order?: number;
}

/**
 * Integral over [t_i, t_{i+1}] of the Lagrange basis polynomial of node t_{i-j} among the nodes
 * t_i, t_{i-1}, ..., t_{i-order+1} (k-diffusion's `linear_multistep_coeff`), computed exactly.
 *
 * @param t The step points (e.g. sigmas).
 * @param i The current step.
 * @param j Which node, 0 <= j < order.
 * @param order Number of nodes, 1 <= order <= i + 1.
 * @returns The coefficient c_ij.
 * @throws {RangeError} When order or j is out of range.
 * @example Order 1 is Euler: the coefficient is the step length
 * ```ts
 * import { lmsCoefficient } from "./lms.ts";
 * const c = lmsCoefficient(new Float64Array([3, 1, 0]), 0, 0, 1); // -2
 * ```
 */
export function lmsCoefficient(t: ArrayLike<number>, i: number, j: number, order: number): number {
  if (!(order >= 1 && order <= i + 1 && j >= 0 && j < order)) {
    throw new RangeError(
      `lmsCoefficient: need 1 <= order <= i + 1 and 0 <= j < order, got order=${order}, i=${i}, j=${j}`,
    );
  }
  // Coefficients of prod_{k != j} (tau - t_{i-k}) / (t_{i-j} - t_{i-k}), lowest power first.
  let poly = [1];
  for (let k = 0; k < order; k++) {
    if (k === j) continue;
    const root = t[i - k], denom = t[i - j] - t[i - k];
    const next = new Array(poly.length + 1).fill(0);
    poly.forEach((c, p) => {
      next[p + 1] += c / denom;
      next[p] -= c * root / denom;
    });
    poly = next;
  }
  const a = t[i], b = t[i + 1];
  return poly.reduce((sum, c, p) => sum + c * (b ** (p + 1) - a ** (p + 1)) / (p + 1), 0);
}

/**
 * Solves the probability-flow ODE with the linear multistep method.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmas[0] * n`; never disposed.
 * @param options The noise levels, the order and the shared options.
 * @returns The final sample (owned by the caller) and the number of evaluations (N).
 * @throws {RangeError} For invalid sigmas or order.
 * @example Ten steps, 4th order
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleLms } from "./lms.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 10 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x, nfe } = await sampleLms(denoiser, x0, { sigmas, order: 4 });
 * x.dispose();
 * ```
 */
export async function sampleLms(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: LmsOptions,
): Promise<SampleResult> {
  const { sigmas, order = 4, cond } = options;
  if (!Number.isInteger(order) || order < 1 || order > 6) {
    throw new RangeError(`sampleLms: order must be an integer in 1..6, got ${order}`);
  }
  const ds: tf.Tensor[] = []; // newest first
  return await runSigmaSteps(x, options, (xi, i) => {
    const denoised = denoiseAt(denoiser, xi, sigmas[i], cond);
    ds.unshift(tf.keep(toD(xi, sigmas[i], denoised)));
    if (ds.length > order) ds.pop()!.dispose();
    let next = xi;
    ds.forEach((d, j) => {
      next = tf.add(next, tf.mul(d, lmsCoefficient(sigmas, i, j, ds.length)));
    });
    return { x: next, denoised, nfe: 1 };
  }, () => tf.dispose(ds));
}
