/**
 * The discrete-time NDM objective (NDM paper, eq. 7-10, Algorithm 1) on a DDPM chain
 * (`schedules/ddpm.ts`: `alpha_k = sqrt(alphaBar_k)`, `sigma_k = sqrt(1 - alphaBar_k)`), for a
 * transformation F (`models/ndm_transform.ts`) evaluated at `u_k = timesteps[k] / T_base` in
 * [0, 1]:
 *
 * - marginal (eq. 7): `z_k = alpha_k F(x, u_k) + sigma_k eps`;
 * - x-prediction through the noise prediction (Section 4.1): `x_hat = (z_k - sigma_k eps_theta(z_k, k)) / alpha_k`
 *   (`x0FromEps`), so the model predicts F(x, u_k) through F(x_hat, u_k);
 * - L_prior = KL(N(alpha_T F(x, u_T), sigma_T^2 I) || N(0, I))
 *   `= 1/2 sum(alphaBar_T F^2 + (1 - alphaBar_T) - 1 - log(1 - alphaBar_T))`;
 * - the diffusion KL of step k >= 2 (eq. 10), s = k - 1:
 *   `1 / (2 sigmaTilde^2) ||alpha_s (F(x, u_s) - F(x_hat, u_s)) + sqrt(sigma_s^2 - sigmaTilde^2) / sigma_k alpha_k (F(x_hat, u_k) - F(x, u_k))||^2`
 *   with the posterior variance `sigmaTilde^2 = eta^2 betaTilde_k` (eta = 1: the DDPM choice,
 *   DDIM's eta otherwise; eta = 0 is deterministic and has no finite KL: sampling only);
 * - L_rec = -log p(x | z_1) (step 1, where alpha_0 = 1, sigma_0 = 0): the posterior of eq. 8
 *   puts z_0 at F(x_hat, 0), so the decoder is DDPM's discretized Gaussian (eq. 13 of DDPM) with
 *   mean F(x_hat, 0) and DDPM's standard deviation `sqrt(betaTilde_2)` (its "betaTilde" choice);
 *   a Gaussian density for continuous data.
 *
 * Everything is in bits per dimension. With importance weights, the Algorithm 1 loss
 * `L_prior + T w_i L_{k_i}` is an unbiased estimate of the NELBO (eq. 9) per image.
 *
 * For the identity F with eta = 1 the terms ARE DDPM's: {@linkcode ndmTerms} then calls
 * `ddpmVlbTerms` with sigma_t^2 = betaTilde, so DDPM is literally the special case; the general
 * formula gives the same numbers up to float32 rounding (tested).
 *
 * L_simple is not offered: it ignores F, and for a learned F lets it collapse to 0 (NDM Section 6).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Conditioning } from "../core/types.ts";
import {
  discretizedGaussianLogLikelihood,
  gaussianLogLikelihood,
} from "../eval/discretized_gaussian.ts";
import { type EpsPredictor, x0FromEps } from "../models/ddpm_param.ts";
import { perImageShape } from "../models/_ddpm_steps.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import { type DdpmProcess, reverseVariances } from "../schedules/ddpm.ts";
import { type DdpmDecoder, type DdpmVlbTerms, ddpmVlbTerms } from "./ddpm_loss.ts";

/** Settings of the discrete NDM objective. */
export interface NdmObjectiveOptions {
  /** The chain (the training process, or a respacing of it). */
  process: DdpmProcess;
  /** Posterior noise scale: sigmaTilde^2 = eta^2 betaTilde_k; 1 is the DDPM choice. @default 1 */
  eta?: number;
  /** Decoder: "discretized" for 8-bit data in [-1, 1], "gaussian" for continuous data. @default "discretized" */
  decoder?: DdpmDecoder;
}

/** Options of {@linkcode ndmTerms}: the objective's settings and one draw. */
export interface NdmTermsOptions extends NdmObjectiveOptions {
  /** Step per image (1..T), or one step for the whole batch. */
  t: number | ArrayLike<number>;
  /** Standard normal noise eps shaped like x0 (z_k = alpha_k F(x, u_k) + sigma_k eps). */
  noise: tf.Tensor;
  /** Conditioning passed to the predictor. @default undefined */
  cond?: Conditioning;
  /** Apply options passed to the predictor and F. @default undefined */
  opts?: ApplyOptions;
}

/**
 * The time in [0, 1] at which F is evaluated for step k of a chain: `timesteps[k] / T_base`.
 *
 * @param process The chain.
 * @param k Step 0..T.
 * @returns u_k (0 at k = 0, 1 at the last step of the base process).
 * @example
 * ```ts
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmTime } from "./ndm_loss.ts";
 * console.assert(ndmTime(ddpmProcess({ T: 10 }), 5) === 0.5);
 * ```
 */
export function ndmTime(process: DdpmProcess, k: number): number {
  return process.timesteps[k] / (process.baseAlphaBar.length - 1);
}

/**
 * Per-image NDM terms at each image's step: the diffusion KL of eq. 10 (k >= 2) or L_rec (k = 1),
 * in bits per dimension, and x_hat. Both tensors belong to the caller.
 *
 * @param eps The noise predictor eps_theta.
 * @param transform F.
 * @param x0 Data [N, ...] (on the 8-bit grid in [-1, 1] for the discretized decoder).
 * @param options Chain, eta, decoder, steps, noise.
 * @returns The terms (`terms` [N]) and x_hat (`x0Hat`).
 * @throws {RangeError} For eta <= 0, steps outside 1..T, or noise not shaped like x0.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { scaleTransform } from "../models/ndm_transform.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmTerms } from "./ndm_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const { terms } = ndmTerms(ddpmEpsNetwork((x) => tf.zerosLike(x)), scaleTransform(), tf.zeros([2, 3]), {
 *   process: ddpmProcess({ T: 10 }),
 *   t: [3, 1],
 *   noise: tf.randomNormal([2, 3]),
 *   decoder: "gaussian",
 * });
 * ```
 */
export function ndmTerms(
  eps: EpsPredictor,
  transform: NdmTransform,
  x0: tf.Tensor,
  options: NdmTermsOptions,
): DdpmVlbTerms {
  const { process, eta = 1, decoder = "discretized", t, noise, cond, opts } = options;
  checkEta(eta);
  if (transform.kind === "identity" && eta === 1) {
    return ddpmVlbTerms(eps, x0, { process, variance: "betaTilde", decoder, t, noise, cond, opts });
  }
  if (decoder !== "discretized" && decoder !== "gaussian") {
    throw new RangeError(`unknown decoder "${decoder}": use "discretized" or "gaussian"`);
  }
  if (!tf.util.arraysEqual(noise.shape, x0.shape)) {
    throw new RangeError(`noise must have the shape of x0 [${x0.shape}], got [${noise.shape}]`);
  }
  const n = x0.shape[0], dims = x0.size / n;
  const steps = typeof t === "number" ? new Array<number>(n).fill(t) : Array.from(t);
  if (steps.length !== n) {
    throw new RangeError(`t has ${steps.length} steps for a batch of ${n}; give one per image`);
  }
  const ab = process.alphaBar;
  const decoderStd = Math.sqrt(reverseVariances(process, "betaTilde")[1]);
  const aT = new Float32Array(n), sT = new Float32Array(n), aS = new Float32Array(n);
  const c = new Float32Array(n), klScale = new Float32Array(n), isDecoder = new Float32Array(n);
  const uT = new Float32Array(n), uS = new Float32Array(n), netT = new Float32Array(n);
  steps.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || k > process.T) {
      throw new RangeError(`t[${i}] = ${k}: steps must be integers in 1..${process.T}`);
    }
    aT[i] = Math.sqrt(ab[k]);
    sT[i] = Math.sqrt(1 - ab[k]);
    aS[i] = Math.sqrt(ab[k - 1]);
    uT[i] = ndmTime(process, k);
    uS[i] = ndmTime(process, k - 1);
    netT[i] = process.timesteps[k];
    if (k === 1) {
      isDecoder[i] = 1;
      return;
    }
    const tilde2 = eta * eta * process.posteriorVariance[k];
    c[i] = Math.sqrt(Math.max(1 - ab[k - 1] - tilde2, 0)) / Math.sqrt(1 - ab[k]);
    klScale[i] = 1 / (2 * tilde2);
  });
  const shape = perImageShape(x0);
  const col = (v: Float32Array) => tf.tensor(v, shape);
  return tf.tidy(() => {
    const fxT = transform.apply(x0, tf.tensor1d(uT), opts);
    const zt = tf.add(tf.mul(fxT, col(aT)), tf.mul(noise, col(sT)));
    const epsHat = eps(zt, tf.tensor1d(netT), cond, opts);
    const xHat = x0FromEps(process, { xt: zt, eps: epsHat, t: steps });
    // F(x, u_s), F(x_hat, u_s), F(x_hat, u_k) in one call of F on 3N points.
    const times = tf.tensor1d(Float32Array.from([...uS, ...uS, ...uT]));
    const [fxS, fhS, fhT] = tf.split(transform.apply(tf.concat([x0, xHat, xHat]), times, opts), 3);
    const axes = x0.shape.slice(1).map((_, i) => i + 1);
    const delta = tf.add(
      tf.mul(tf.sub(fxS, fhS), col(aS)),
      tf.mul(tf.sub(fhT, fxT), tf.mul(col(c), col(aT))),
    );
    const kl = tf.mul(tf.sum(tf.square(delta), axes), tf.tensor1d(klScale));
    let nats: tf.Tensor = tf.mul(kl, tf.sub(1, tf.tensor1d(isDecoder)));
    if (isDecoder.includes(1)) {
      // z_0 = F(x_hat, 0): u_s = 0 at step 1, so fhS holds it.
      const logLikelihood = decoder === "discretized"
        ? discretizedGaussianLogLikelihood(x0, { mean: fhS, std: decoderStd })
        : gaussianLogLikelihood(x0, { mean: fhS, std: decoderStd });
      nats = tf.add(nats, tf.mul(tf.neg(tf.sum(logLikelihood, axes)), tf.tensor1d(isDecoder)));
    }
    return { terms: tf.div(nats, dims * Math.LN2) as tf.Tensor1D, x0Hat: xHat };
  });
}

/**
 * L_prior per image in bits per dimension: KL(N(alpha_T F(x, u_T), sigma_T^2 I) || N(0, I)),
 * differentiable in F's parameters.
 *
 * @param transform F.
 * @param x0 Data [N, ...].
 * @param options The chain.
 * @returns [N] bits/dim (a new tensor).
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { identityTransform } from "../models/ndm_transform.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmPriorTerms } from "./ndm_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const prior = ndmPriorTerms(identityTransform(), tf.ones([2, 4]), { process: ddpmProcess() });
 * ```
 */
export function ndmPriorTerms(
  transform: NdmTransform,
  x0: tf.Tensor,
  options: { process: DdpmProcess; opts?: ApplyOptions },
): tf.Tensor1D {
  const { process, opts } = options;
  const n = x0.shape[0], dims = x0.size / n, abT = process.alphaBar[process.T];
  const perDimConst = -abT - Math.log1p(-abT);
  return tf.tidy(() => {
    const uT = tf.fill([n], ndmTime(process, process.T)) as tf.Tensor1D;
    const f = transform.apply(x0, uT, opts);
    const axes = x0.shape.slice(1).map((_, i) => i + 1);
    const nats = tf.mul(tf.add(tf.mul(tf.sum(tf.square(f), axes), abT), dims * perDimConst), 0.5);
    return tf.div(nats, dims * Math.LN2) as tf.Tensor1D;
  });
}

/** The random inputs of one NDM loss evaluation, drawn outside it. Not disposed. */
export interface NdmLossDraws {
  /** Step per image, integers in 1..T. */
  t: ArrayLike<number>;
  /** Standard normal noise shaped like x0. */
  noise: tf.Tensor;
  /** Importance weight per image, `1 / (T p(t_i))`. @default 1 for every image */
  weights?: ArrayLike<number>;
}

/** Per-image parts of one Algorithm 1 evaluation, and the loss. All owned by the caller. */
export interface NdmLossParts {
  /** Batch mean of `prior + T w_i term_i` (bits/dim): the NELBO estimate that is minimized. */
  loss: tf.Scalar;
  /** The sampled terms [N] (before weighting), for the importance sampler's history. */
  terms: tf.Tensor1D;
}

/**
 * One Algorithm 1 evaluation: `L = L_prior + T w L_k` per image with k drawn by the caller, the
 * batch mean in bits per dimension. Gradients reach phi through all three terms (prior, KL,
 * reconstruction) and theta through the KL and reconstruction.
 *
 * @param eps eps_theta.
 * @param transform F.
 * @param x0 Data [N, ...].
 * @param options The objective's settings, the draws and apply options.
 * @returns The loss and the unweighted terms.
 * @throws {RangeError} For draws that do not fit x0 or eta <= 0.
 * @example
 * ```ts ignore
 * const { loss, terms } = ndmLoss(eps, transform, x0, { process, draws: { t, noise, weights } });
 * ```
 */
export function ndmLoss(
  eps: EpsPredictor,
  transform: NdmTransform,
  x0: tf.Tensor,
  options: NdmObjectiveOptions & { draws: NdmLossDraws; opts?: ApplyOptions },
): NdmLossParts {
  const { draws, opts, ...objective } = options;
  const n = x0.shape[0];
  const weights = draws.weights === undefined
    ? new Float32Array(n).fill(1)
    : Float32Array.from(draws.weights);
  if (weights.length !== n || draws.t.length !== n) {
    throw new RangeError(
      `draws have ${draws.t.length} steps and ${weights.length} weights for a batch of ${n}`,
    );
  }
  return tf.tidy(() => {
    const { terms } = ndmTerms(eps, transform, x0, {
      ...objective,
      t: draws.t,
      noise: draws.noise,
      opts,
    });
    const prior = ndmPriorTerms(transform, x0, { process: objective.process, opts });
    const T = objective.process.T;
    const perImage = tf.add(prior, tf.mul(terms, tf.mul(tf.tensor1d(weights), T)));
    return { loss: tf.mean(perImage) as tf.Scalar, terms };
  });
}

function checkEta(eta: number): void {
  if (!(eta > 0 && eta <= 1)) {
    throw new RangeError(
      `eta must be in (0, 1] for the objective, got ${eta}: eta = 0 makes the posterior ` +
        `deterministic and its KL infinite (use eta = 0 for sampling only)`,
    );
  }
}
