/**
 * The DDPM bound's per-term bits/dim conventions of the code behind the published numbers computes them
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
 * is what produced Table 1's NLL. Both are offered (`ddpmVlbTerms` / `ddpmBound` option
 * `convention`, `eval:ddpm --bpd-convention`); this module holds the reference code's CDF and
 * discretized likelihood (convention 3), `training/ddpm_loss.ts` applies conventions 1 and 2.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

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
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { approxStandardNormalCdf } from "./discretized_gaussian_reference.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
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
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { referenceDiscretizedGaussianLogLikelihood } from "./discretized_gaussian_reference.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
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
