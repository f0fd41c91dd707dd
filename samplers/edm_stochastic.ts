/**
 * EDM's stochastic sampler (Karras et al. 2022, Algorithm 2, with sigma(t) = t and s(t) = 1):
 * each step first adds fresh noise to raise the noise level from t_i to t-hat_i = (1 + gamma_i) t_i
 * ("churn"), then takes one Heun step of the probability-flow ODE from t-hat_i to t_{i+1}.
 * `gamma_i = min(sChurn / N, sqrt(2) - 1)` when t_i lies in [sTmin, sTmax], else 0; with
 * sChurn = 0 it is the deterministic sampler of Algorithm 1.
 *
 * Noise comes from an injected {@linkcode NoiseSource}; with `perImageNoise` each image depends
 * only on its own seed, never on the batch. Noise is drawn only in steps with gamma_i > 0. As in
 * `sampleHeun`, the last step is an Euler step unless `secondOrderAtLast` is set.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Denoiser } from "../core/types.ts";
import { checkSigmas, heunStep, runSteps, sigmaNode } from "./_util.ts";
import type { SampleResult, SamplerOptions } from "./types.ts";

/** Options of {@linkcode sampleEdmStochastic}. */
export interface EdmStochasticOptions extends SamplerOptions {
  /** Noise levels t_0, ..., t_N, decreasing and ending in 0 (see `karrasSigmas`). */
  sigmas: Float64Array;
  /** Overall amount of stochasticity S_churn; 0 gives the deterministic sampler. @default 0 */
  sChurn?: number;
  /** Churn only where t_i >= sTmin (S_tmin). @default 0 */
  sTmin?: number;
  /** Churn only where t_i <= sTmax (S_tmax). @default Infinity */
  sTmax?: number;
  /** Standard deviation S_noise of the added noise, slightly above 1 to offset detail loss. @default 1 */
  sNoise?: number;
  /** Source of the churn noise, one generator per image (`perImageNoise`); required when sChurn > 0. @default undefined */
  noise?: NoiseSource;
  /** Apply the 2nd order correction on the last step too; needs a nonzero final sigma. @default false */
  secondOrderAtLast?: boolean;
}

/**
 * Samples with EDM's stochastic sampler (Algorithm 2).
 *
 * @param denoiser The denoiser D(x; sigma), called with sigma as a [N] tensor.
 * @param x The initial sample at t_0: `sigmas[0] * n` with n ~ N(0, I); never disposed.
 * @param options The noise levels, churn settings and noise source.
 * @returns The final sample x_N (owned by the caller) and the number of denoiser evaluations.
 * @throws {TypeError} When `sChurn > 0` and no `noise` is given.
 * @throws {RangeError} For invalid noise levels or churn settings.
 * @example Churned sampling, reproducible per image
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { sampleEdmStochastic } from "./edm_stochastic.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = karrasSigmas({ numSteps: 18 });
 * const noise = perImageNoise([0, 1, 2, 3]);
 * const n = noise.randn([4, 2]);
 * const x0 = tf.mul(n, sigmas[0]);
 * const { x } = await sampleEdmStochastic(denoiser, x0, { sigmas, sChurn: 40, noise });
 * x.dispose();
 * ```
 */
export async function sampleEdmStochastic(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: EdmStochasticOptions,
): Promise<SampleResult> {
  const {
    sigmas,
    sChurn = 0,
    sTmin = 0,
    sTmax = Infinity,
    sNoise = 1,
    noise,
    secondOrderAtLast = false,
    cond,
  } = options;
  checkSigmas(sigmas, "sigmas");
  if (!Number.isFinite(sChurn) || sChurn < 0) {
    throw new RangeError(`sChurn must be a finite number >= 0, got ${sChurn}`);
  }
  if (!(sTmin >= 0) || !(sTmax >= sTmin)) {
    throw new RangeError(`need 0 <= sTmin <= sTmax, got sTmin=${sTmin}, sTmax=${sTmax}`);
  }
  if (!Number.isFinite(sNoise) || sNoise < 0) {
    throw new RangeError(`sNoise must be a finite number >= 0, got ${sNoise}`);
  }
  if (sChurn > 0 && noise === undefined) {
    throw new TypeError(
      `sChurn = ${sChurn} needs a noise source: pass noise: perImageNoise(seeds), or sChurn: 0`,
    );
  }
  const numSteps = sigmas.length - 1;
  if (secondOrderAtLast && sigmas[numSteps] === 0) {
    throw new RangeError(
      "secondOrderAtLast needs a nonzero final noise level (dx/dt is undefined at sigma = 0); " +
        "drop the option or end the sigmas above 0",
    );
  }
  const gammaMax = Math.min(sChurn / numSteps, Math.SQRT2 - 1);
  let nfe = 0;
  const out = await runSteps(x, numSteps, options, (xi, i) => {
    const t = sigmas[i], tNext = sigmas[i + 1];
    const gamma = t >= sTmin && t <= sTmax ? gammaMax : 0;
    const tHat = t + gamma * t;
    const correct = i < numSteps - 1 || secondOrderAtLast;
    const to = tNext > 0 ? sigmaNode(tNext) : { t: 0, sigma: 0, s: 1, a: NaN, b: NaN };
    const step = tf.tidy(() => {
      // gamma > 0 implies sChurn > 0, so noise was checked above.
      const xHat = gamma > 0 && noise !== undefined
        ? tf.add(xi, tf.mul(noise.randn(xi.shape), Math.sqrt(tHat * tHat - t * t) * sNoise))
        : xi;
      return heunStep(denoiser, xHat, sigmaNode(tHat), to, correct, cond);
    });
    nfe += step.nfe;
    return {
      x: step.x,
      denoised: step.denoised,
      info: { t, tNext, sigma: t, sigmaNext: tNext, sigmaHat: tHat, nfe },
    };
  });
  return { x: out, nfe };
}
