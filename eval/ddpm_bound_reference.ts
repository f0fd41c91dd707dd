/**
 * The DDPM bound's per-term bits/dim as the code behind the published numbers computes them
 * (hojonathanho/diffusion `diffusion_utils_2.py` `_vb_terms_bpd`, openai/improved-diffusion
 * `gaussian_diffusion.py` `_vb_terms_bpd` and `losses.py`), so that a user can compare with a
 * paper. Three conventions differ from the exact bound of `training/ddpm_loss.ts` `ddpmVlbTerms`
 * (which follows Ho et al. 2020 eq. 5, 12, 13 as written):
 *
 * 1. Decoder variance at t = 1: the reference code's `model_log_variance` for sigma_t^2 = beta_t
 *    ("fixedlarge") is `log(append(posterior_variance[1], betas[1:]))`, i.e. the posterior variance
 *    of step 2, betaTilde_2, instead of beta_1 (for sigma_t^2 = betaTilde_t both use betaTilde_2).
 * 2. x0-hat clipping: with `clip_denoised=True` (their evaluation default) the model mean is the
 *    posterior mean `mu~(x0-hat, x_t)` of x0-hat clipped to [-1, 1]; the KL terms are the Gaussian
 *    KL between `q(x_{t-1} | x_t, x_0)` and `N(mu~(clip(x0-hat), x_t), sigma_t^2)` (without clipping
 *    this equals the exact closed form).
 * 3. Discretized Gaussian: the CDF is the tanh approximation
 *    `Phi(z) ~ 1/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))`, the edge bins are chosen by
 *    `x < -0.999` / `x > 0.999`, and every probability is clamped at 1e-12 before the log.
 *
 * The paper (eq. 13) states the exact decoder with Phi and sigma_1^2 = beta_1; the reference code
 * is what produced Table 1's NLL. Both are offered (`eval:ddpm --bpd-convention`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type EpsPredictor, posteriorMean, qSample, x0FromEps } from "../models/ddpm_param.ts";
import { perImageShape } from "../models/_ddpm_steps.ts";
import { reverseVariances } from "../schedules/ddpm.ts";
import type { DdpmVlbTerms, DdpmVlbTermsOptions } from "../training/ddpm_loss.ts";
import { gaussianLogLikelihood } from "./discretized_gaussian.ts";

/** Which convention the bound's terms follow. */
export type BpdConvention = "exact" | "reference";

/** Names of the {@linkcode BpdConvention}s, for flags. */
export const BPD_CONVENTIONS: readonly BpdConvention[] = ["exact", "reference"];

/**
 * The reference code's approximation of the standard normal CDF (improved-diffusion
 * `approx_standard_normal_cdf`): `1/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))`. Call inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { approxStandardNormalCdf } from "./ddpm_bound_reference.ts";
 * const p = approxStandardNormalCdf(tf.scalar(0)); // 0.5
 * ```
 */
export function approxStandardNormalCdf(z: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(z, tf.mul(tf.pow(z, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.add(tf.tanh(inner), 1), 0.5);
}

/**
 * The reference discretized Gaussian log-likelihood of 8-bit data in [-1, 1] (improved-diffusion
 * `discretized_gaussian_log_likelihood`): bins of half-width 1/255 around x, the tanh CDF, the
 * edge bins open below x < -0.999 and above x > 0.999, probabilities clamped at 1e-12.
 *
 * @param x Data in [-1, 1] on the 8-bit grid.
 * @param options The mean (broadcastable to x) and standard deviation (number or broadcastable tensor).
 * @returns Per-element log-likelihoods in nats, shaped like x.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { referenceDiscretizedGaussianLogLikelihood } from "./ddpm_bound_reference.ts";
 * const ll = referenceDiscretizedGaussianLogLikelihood(tf.zeros([2]), { mean: tf.zeros([2]), std: 0.01 });
 * ```
 */
export function referenceDiscretizedGaussianLogLikelihood(
  x: tf.Tensor,
  options: { mean: tf.Tensor; std: number | tf.Tensor },
): tf.Tensor {
  const { mean, std } = options;
  return tf.tidy(() => {
    const centered = tf.sub(x, mean);
    const invStd = tf.reciprocal(typeof std === "number" ? tf.scalar(std) : std);
    const cdfPlus = approxStandardNormalCdf(tf.mul(invStd, tf.add(centered, 1 / 255)));
    const cdfMin = approxStandardNormalCdf(tf.mul(invStd, tf.sub(centered, 1 / 255)));
    const logCdfPlus = tf.log(tf.maximum(cdfPlus, 1e-12));
    const logOneMinusCdfMin = tf.log(tf.maximum(tf.sub(1, cdfMin), 1e-12));
    const logDelta = tf.log(tf.maximum(tf.sub(cdfPlus, cdfMin), 1e-12));
    return tf.where(
      tf.less(x, -0.999),
      logCdfPlus,
      tf.where(tf.greater(x, 0.999), logOneMinusCdfMin, logDelta),
    );
  });
}

/**
 * The bound's term of each image at its step in the reference convention (see the module doc):
 * the same inputs and outputs as `ddpmVlbTerms`; `x0Hat` is returned clipped.
 *
 * @param eps The noise predictor.
 * @param x0 Clean data [N, ...] on the 8-bit grid in [-1, 1] (discretized decoder).
 * @param options Process, variance, decoder, steps and noise.
 * @returns The terms (bits/dim, [N]) and the clipped x0-hat; both the caller's.
 * @throws {RangeError} For steps outside 1..T or noise not shaped like x0.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ddpmVlbTermsReference } from "./ddpm_bound_reference.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const { terms, x0Hat } = ddpmVlbTermsReference(ddpmEpsNetwork((x) => tf.zerosLike(x)), tf.zeros([2, 3]), {
 *   process: ddpmProcess(), t: 1, noise: tf.randomNormal([2, 3]),
 * });
 * ```
 */
export function ddpmVlbTermsReference(
  eps: EpsPredictor,
  x0: tf.Tensor,
  options: DdpmVlbTermsOptions,
): DdpmVlbTerms {
  const { process, variance = "beta", decoder = "discretized", t, noise, cond, opts } = options;
  if (!tf.util.arraysEqual(noise.shape, x0.shape)) {
    throw new RangeError(`noise must have the shape of x0 [${x0.shape}], got [${noise.shape}]`);
  }
  const n = x0.shape[0], dims = x0.size / n;
  const steps = typeof t === "number" ? new Array<number>(n).fill(t) : Array.from(t);
  if (steps.length !== n) {
    throw new RangeError(`t has ${steps.length} steps for a batch of ${n}; give one per image`);
  }
  const sigma2 = reverseVariances(process, variance);
  // Convention 1: the decoder's variance is betaTilde_2 for both choices of sigma_t^2.
  const decoderVar = process.T >= 2 ? process.posteriorVariance[2] : process.betas[1];
  const klConst = new Float32Array(n), invTwoVar = new Float32Array(n);
  const isDecoder = new Float32Array(n), decoderStd = new Float32Array(n).fill(1);
  const netT = new Float32Array(n);
  steps.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || k > process.T) {
      throw new RangeError(`t[${i}] = ${k}: steps must be integers in 1..${process.T}`);
    }
    netT[i] = process.timesteps[k];
    if (k === 1) {
      isDecoder[i] = 1;
      decoderStd[i] = Math.sqrt(decoderVar);
      return;
    }
    const s2 = sigma2[k], bt = process.posteriorVariance[k];
    klConst[i] = 0.5 * dims * (Math.log(s2 / bt) + bt / s2 - 1);
    invTwoVar[i] = 1 / (2 * s2);
  });
  return tf.tidy(() => {
    const xt = qSample(process, { x0, noise, t: steps });
    const epsHat = eps(xt, tf.tensor1d(netT), cond, opts);
    // Convention 2: the model mean is the posterior mean of the clipped x0-hat.
    const x0Hat = tf.clipByValue(x0FromEps(process, { xt, eps: epsHat, t: steps }), -1, 1);
    const modelMean = posteriorMean(process, { xt, x0: x0Hat, t: steps });
    const axes = x0.shape.slice(1).map((_, i) => i + 1);
    const trueMean = posteriorMean(process, { xt, x0, t: steps });
    const kl = tf.add(
      tf.tensor1d(klConst),
      tf.mul(tf.tensor1d(invTwoVar), tf.sum(tf.square(tf.sub(trueMean, modelMean)), axes)),
    );
    const std = tf.reshape(tf.tensor1d(decoderStd), perImageShape(x0));
    // Convention 3: tanh CDF, clamped at 1e-12.
    const logLikelihood = decoder === "discretized"
      ? referenceDiscretizedGaussianLogLikelihood(x0, { mean: modelMean, std })
      : gaussianLogLikelihood(x0, { mean: modelMean, std });
    const l0 = tf.neg(tf.sum(logLikelihood, axes));
    const isDec = tf.tensor1d(isDecoder);
    const nats = tf.add(tf.mul(kl, tf.sub(1, isDec)), tf.mul(l0, isDec));
    return { terms: tf.div(nats, dims * Math.LN2) as tf.Tensor1D, x0Hat };
  });
}
