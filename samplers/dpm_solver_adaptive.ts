/**
 * DPM-Solver-12 and DPM-Solver-23 with adaptive step size (Lu et al. 2022, "DPM-Solver",
 * Section 3.3 and Algorithm 6 / Appendix C; k-diffusion's `sample_dpm_adaptive`): each attempted
 * step from lambda_s to lambda_t = lambda_s + h (lambda = -log sigma) computes a lower-order
 * solution x_low (DPM-Solver-1, or -2 with r1 = 1/3) and a higher-order one x_high (DPM-Solver-2,
 * or -3 sharing the r1 = 1/3 stage), measures
 * `E = ||(x_low - x_high) / max(atol, rtol max(|x_low|, |x_prev|))||_2 / sqrt(size)`, accepts the
 * step when the controller's factor is at least `acceptSafety`, and scales h by a PID controller
 * (k-diffusion's `PIDStepSizeController`, the paper's rule `h <- h min(.9 E^(-1/order), ...)` in
 * its integral-only default: factor `1 + atan(E^(-1/order) - 1)`). An attempt costs `order`
 * evaluations, accepted or not. With eta > 0 each accepted step adds ancestral noise as in
 * k-diffusion (the controller then uses order 1.5).
 *
 * Unlike every other sampler here, the step sizes depend on the whole batch (the error norm runs
 * over all images, as in k-diffusion), so an image depends on the batch it is sampled in. Like
 * DPM-Solver-fast it stops at sigma_min and returns the sample there.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import type { NoiseSource } from "../core/noise.ts";
import { addNoise, ancestralStep, checkAncestral, eventLoopYielder } from "./_util.ts";
import { dpmSolverStep, epsAt, type EpsCache } from "./_dpm_solver.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleDpmSolverAdaptive}. */
export interface DpmSolverAdaptiveOptions extends SamplerOptions {
  /** Noise level the sampler starts from (x is `sigmaMax * n`). Required. */
  sigmaMax: number;
  /** Noise level it stops at, 0 < sigmaMin < sigmaMax. Required. */
  sigmaMin: number;
  /** 2 (DPM-Solver-12) or 3 (DPM-Solver-23). @default 3 */
  order?: 2 | 3;
  /** Relative tolerance. @default 0.05 */
  rtol?: number;
  /** Absolute tolerance (k-diffusion's default, 1/128 of the data range [-1, 1]). @default 0.0078 */
  atol?: number;
  /** First step size in lambda. @default 0.05 */
  hInit?: number;
  /** PID proportional coefficient. @default 0 */
  pcoeff?: number;
  /** PID integral coefficient. @default 1 */
  icoeff?: number;
  /** PID derivative coefficient. @default 0 */
  dcoeff?: number;
  /** Smallest controller factor that accepts a step. @default 0.81 */
  acceptSafety?: number;
  /** Amount of ancestral noise (0: deterministic). @default 0 */
  eta?: number;
  /** Scale of the ancestral noise. @default 1 */
  sNoise?: number;
  /** Noise source; required when eta > 0. @default undefined */
  noise?: NoiseSource;
  /** Attempts after which the sampler gives up with a RangeError. @default 10000 */
  maxAttempts?: number;
}

/** What {@linkcode sampleDpmSolverAdaptive} returns: the result and the controller's counts. */
export interface DpmSolverAdaptiveResult extends SampleResult {
  /** Accepted steps. */
  accepted: number;
  /** Rejected attempts. */
  rejected: number;
}

/**
 * Samples with adaptive DPM-Solver.
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample `sigmaMax * n`; never disposed.
 * @param options The range, order, tolerances and controller settings.
 * @returns The sample at sigma_min (owned by the caller), NFE, accepted and rejected steps.
 * @throws {RangeError} For invalid settings, or when `maxAttempts` is reached.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { sampleDpmSolverAdaptive } from "./dpm_solver_adaptive.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const x0 = tf.mul(tf.randomNormal([4, 2]), 80);
 * const out = await sampleDpmSolverAdaptive(denoiser, x0, { sigmaMax: 80, sigmaMin: 0.002 });
 * out.x.dispose();
 * ```
 */
export async function sampleDpmSolverAdaptive(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: DpmSolverAdaptiveOptions,
): Promise<DpmSolverAdaptiveResult> {
  const {
    sigmaMax,
    sigmaMin,
    order = 3,
    rtol = 0.05,
    atol = 0.0078,
    hInit = 0.05,
    pcoeff = 0,
    icoeff = 1,
    dcoeff = 0,
    acceptSafety = 0.81,
    eta = 0,
    sNoise = 1,
    noise,
    maxAttempts = 10000,
    cond,
    onStep,
    signal,
  } = options;
  if (!(sigmaMin > 0) || !(sigmaMax > sigmaMin) || !Number.isFinite(sigmaMax)) {
    throw new RangeError(
      `adaptive DPM-Solver needs 0 < sigmaMin < sigmaMax < infinity, got ${sigmaMin}, ${sigmaMax}`,
    );
  }
  if (order !== 2 && order !== 3) throw new RangeError(`order must be 2 or 3, got ${order}`);
  for (const [name, v] of Object.entries({ rtol, atol, hInit })) {
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be positive, got ${v}`);
  }
  checkAncestral({ eta, sNoise, noise }, "sampleDpmSolverAdaptive");
  const tEnd = -Math.log(sigmaMin);
  // PID step-size controller (k-diffusion's PIDStepSizeController).
  const controllerOrder = eta > 0 ? 1.5 : order;
  const b1 = (pcoeff + icoeff + dcoeff) / controllerOrder;
  const b2 = -(pcoeff + 2 * dcoeff) / controllerOrder;
  const b3 = dcoeff / controllerOrder;
  let errs: number[] = [];
  let h = hInit;
  const pause = eventLoopYielder();
  let s = -Math.log(sigmaMax);
  let cur = x, prev = tf.clone(x);
  let nfe = 0, accepted = 0, rejected = 0;
  try {
    while (s < tEnd - 1e-5) {
      await pause();
      signal?.throwIfAborted();
      if (accepted + rejected >= maxAttempts) {
        throw new RangeError(
          `adaptive DPM-Solver made ${maxAttempts} attempts without reaching sigmaMin; ` +
            `raise rtol/atol or maxAttempts`,
        );
      }
      const t = Math.min(tEnd, s + h);
      let tTo = t, sigmaUp = 0;
      if (eta > 0) {
        const { sigmaDown } = ancestralStep(Math.exp(-s), Math.exp(-t), eta);
        tTo = Math.min(tEnd, -Math.log(sigmaDown));
        sigmaUp = Math.sqrt(Math.max(Math.exp(-2 * t) - Math.exp(-2 * tTo), 0));
      }
      const xi = cur;
      const step = tf.tidy(() => {
        const { eps, denoised } = epsAt(denoiser, xi, s, cond);
        const cache: EpsCache = { eps, stages: new Map(), nfe: 1 };
        const low = order === 2
          ? dpmSolverStep(denoiser, xi, s, tTo, 1, cache, cond)
          : dpmSolverStep(denoiser, xi, s, tTo, 2, cache, cond, 1 / 3);
        const high = dpmSolverStep(denoiser, xi, s, tTo, order, cache, cond);
        const delta = tf.maximum(atol, tf.mul(tf.maximum(tf.abs(low), tf.abs(prev)), rtol));
        const error = tf.div(tf.norm(tf.div(tf.sub(low, high), delta)), Math.sqrt(xi.size));
        return { low, high, denoised, error, nfe: cache.nfe };
      });
      nfe += step.nfe;
      const error = (await step.error.data())[0];
      const inv = 1 / (error + 1e-8);
      if (errs.length === 0) errs = [inv, inv, inv];
      errs[0] = inv;
      const raw = errs[0] ** b1 * errs[1] ** b2 * errs[2] ** b3;
      const factor = 1 + Math.atan(raw - 1);
      const accept = factor >= acceptSafety;
      h *= factor;
      if (accept) {
        errs[2] = errs[1];
        errs[1] = errs[0];
        prev.dispose();
        prev = step.low;
        const next = tf.tidy(() => addNoise(step.high, noise, sigmaUp * sNoise));
        if (next !== step.high) step.high.dispose();
        try {
          onStep?.({
            i: accepted,
            t: Math.exp(-s),
            tNext: Math.exp(-t),
            sigma: Math.exp(-s),
            sigmaNext: Math.exp(-t),
            sigmaHat: Math.exp(-s),
            x: next,
            denoised: step.denoised,
            nfe,
          });
        } finally {
          if (cur !== x) cur.dispose();
          cur = next;
          s = t;
          accepted++;
        }
      } else {
        rejected++;
        tf.dispose([step.low, step.high]);
      }
      tf.dispose([step.denoised, step.error]);
    }
  } catch (e) {
    if (cur !== x) cur.dispose();
    throw e;
  } finally {
    prev.dispose();
  }
  return { x: cur === x ? tf.clone(x) : cur, nfe, accepted, rejected };
}
