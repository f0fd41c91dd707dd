/**
 * DDPM's training losses over an eps predictor (Ho et al. 2020):
 * - `L_simple` (eq. 14, Algorithm 1): `||eps - eps_theta(sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, t)||^2`,
 *   the mean over pixels (as the authors' code does), then over the batch;
 * - the terms of the true variational bound (eq. 5): for t >= 2 the Gaussian KL
 *   `L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || N(mu_theta, sigma_t^2 I))`, which with eq. 11 is
 *   `D/2 (log(sigma_t^2 / betaTilde_t) + betaTilde_t / sigma_t^2 - 1) + beta_t^2 / (2 sigma_t^2 alpha_t (1 - alphaBar_t)) ||eps - eps_theta||^2`
 *   (eq. 12 plus the variance mismatch, zero when sigma_t^2 = betaTilde_t); for t = 1 the decoder
 *   `L_0 = -log p_theta(x_0 | x_1)` of eq. 13 (or a Gaussian density for continuous data).
 *   In bits per dimension, one term per image at its own t.
 *
 * As in `denoising_loss.ts`, randomness stays outside: the caller draws t (uniformly, or by
 * importance with `ddpm_importance.ts`) and the noise, and passes them in as
 * {@linkcode DdpmLossDraws}; the losses are pure synchronous tf code for `tf.variableGrads`.
 * With importance weights `w_i = 1 / (T p(t_i))` the VLB loss is an unbiased estimate of
 * `(1/T) sum_t L_{t-1}`: times T, plus L_T, it estimates the bound.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Conditioning } from "../core/types.ts";
import {
  discretizedGaussianLogLikelihood,
  gaussianLogLikelihood,
} from "../eval/discretized_gaussian.ts";
import {
  type EpsPredictor,
  muFromEps,
  posteriorMean,
  qSample,
  x0FromEps,
} from "../models/ddpm_param.ts";
import {
  type BpdConvention,
  referenceDiscretizedGaussianLogLikelihood,
} from "../eval/discretized_gaussian_reference.ts";
import { perImageShape } from "../models/_ddpm_steps.ts";
import { type DdpmProcess, type ReverseVariance, reverseVariances } from "../schedules/ddpm.ts";

/** The random inputs of one DDPM loss evaluation, drawn outside the loss. Not disposed. */
export interface DdpmLossDraws {
  /** Step of the process per image, integers in 1..T (`drawTimesteps`). */
  t: ArrayLike<number>;
  /** Standard normal noise shaped like x0. */
  noise: tf.Tensor;
  /** Importance weight per image, e.g. `1 / (T p(t_i))`. @default 1 for every image */
  weights?: ArrayLike<number>;
}

/**
 * A DDPM loss: the batch mean of `weights_i * loss_i`. Returns a new scalar owned by the caller;
 * never disposes its inputs.
 */
export type DdpmLoss = (
  eps: EpsPredictor,
  x0: tf.Tensor,
  draws: DdpmLossDraws,
  cond?: Conditioning,
  opts?: ApplyOptions,
) => tf.Scalar;

/** Options of {@linkcode ddpmSimpleLoss}. */
export interface DdpmSimpleLossOptions {
  /** The training process. */
  process: DdpmProcess;
}

/**
 * DDPM's `L_simple` (eq. 14): per image the mean over pixels of `(eps - eps_theta(x_t, t))^2`.
 *
 * @param options The process.
 * @returns A {@linkcode DdpmLoss}; it throws RangeError for draws that do not fit x0.
 * @example One training loss evaluation (Algorithm 1, lines 2-5)
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { drawTimesteps } from "./ddpm_importance.ts";
 * import { ddpmSimpleLoss } from "./ddpm_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess(), rng = new Rng(0), x0 = tf.zeros([4, 2]);
 * const { t } = drawTimesteps(rng, { count: 4, T: process.T });
 * const loss = ddpmSimpleLoss({ process });
 * const value = loss(ddpmEpsNetwork((x) => tf.zerosLike(x)), x0, {
 *   t,
 *   noise: rngNoise(rng).randn([4, 2]),
 * });
 * ```
 */
export function ddpmSimpleLoss(options: DdpmSimpleLossOptions): DdpmLoss {
  const { process } = options;
  checkProcess(process);
  return (eps, x0, draws, cond, opts) => {
    const weights = checkDraws(process, x0, draws);
    return tf.tidy(() => {
      const xt = qSample(process, { x0, noise: draws.noise, t: draws.t });
      const netT = tf.tensor1d(Float32Array.from(draws.t, (k) => process.timesteps[k]));
      const epsHat = eps(xt, netT, cond, opts);
      const axes = x0.shape.slice(1).map((_, i) => i + 1);
      const perImage = tf.mean(tf.square(tf.sub(draws.noise, epsHat)), axes);
      return tf.mean(tf.mul(perImage, tf.tensor1d(weights))) as tf.Scalar;
    });
  };
}

/** The decoder of the last step: discretized (8-bit data, eq. 13) or a Gaussian density. */
export type DdpmDecoder = "discretized" | "gaussian";

/** Options of {@linkcode ddpmVlbLoss}. */
export interface DdpmVlbOptions {
  /** The process. */
  process: DdpmProcess;
  /** Reverse variance sigma_t^2 (Section 3.2). @default "beta" */
  variance?: ReverseVariance;
  /** Decoder L_0: "discretized" for 8-bit data in [-1, 1], "gaussian" for continuous data. @default "discretized" */
  decoder?: DdpmDecoder;
}

/** Options of {@linkcode ddpmVlbTerms}: the bound's settings and one draw. */
export interface DdpmVlbTermsOptions extends DdpmVlbOptions {
  /** Step per image (1..T), or one step for the whole batch. */
  t: number | ArrayLike<number>;
  /** Standard normal noise shaped like x0; x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) noise. */
  noise: tf.Tensor;
  /** Conditioning passed to the predictor. @default undefined */
  cond?: Conditioning;
  /** Apply options passed to the predictor. @default undefined */
  opts?: ApplyOptions;
  /**
   * "exact" (eq. 5, 12, 13 as written) or "reference" (the DDPM / improved-diffusion code:
   * decoder variance betaTilde_2, x0-hat clipped to [-1, 1] inside the terms, the tanh CDF
   * clamped at 1e-12; see `eval/discretized_gaussian_reference.ts`). @default "exact"
   */
  convention?: BpdConvention;
}

/** Per-image bound terms and the x_0 estimate made on the way. */
export interface DdpmVlbTerms {
  /** L_{t-1} (t >= 2) or L_0 (t = 1) per image, in bits per dimension, shape [N]. */
  terms: tf.Tensor1D;
  /** x0-hat = (x_t - sqrt(1 - alphaBar_t) eps_theta) / sqrt(alphaBar_t) (eq. 15), shaped like x0. */
  x0Hat: tf.Tensor;
}

/**
 * The variational-bound term of each image at its step (eq. 5, 12, 13), in bits per dimension,
 * with x0-hat (eq. 15) for distortion measurements. Both tensors belong to the caller.
 *
 * @param eps The noise predictor.
 * @param x0 Clean data [N, ...] (on the 8-bit grid in [-1, 1] for the discretized decoder).
 * @param options Process, variance, decoder, steps and noise.
 * @returns The terms and x0-hat.
 * @throws {RangeError} For steps outside 1..T or noise not shaped like x0.
 * @example The bound term at step 500 for a zero predictor
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ddpmVlbTerms } from "./ddpm_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x0 = tf.zeros([2, 3]);
 * const { terms, x0Hat } = ddpmVlbTerms(ddpmEpsNetwork((x) => tf.zerosLike(x)), x0, {
 *   process: ddpmProcess(),
 *   t: 500,
 *   noise: tf.randomNormal([2, 3]),
 * });
 * ```
 */
export function ddpmVlbTerms(
  eps: EpsPredictor,
  x0: tf.Tensor,
  options: DdpmVlbTermsOptions,
): DdpmVlbTerms {
  const { process, variance = "beta", decoder = "discretized", t, noise, cond, opts } = options;
  const { convention = "exact" } = options;
  checkProcess(process);
  if (decoder !== "discretized" && decoder !== "gaussian") {
    throw new RangeError(`unknown decoder "${decoder}": use "discretized" or "gaussian"`);
  }
  if (convention !== "exact" && convention !== "reference") {
    throw new RangeError(`unknown bits/dim convention "${convention}": use "exact" or "reference"`);
  }
  const reference = convention === "reference";
  if (!tf.util.arraysEqual(noise.shape, x0.shape)) {
    throw new RangeError(`noise must have the shape of x0 [${x0.shape}], got [${noise.shape}]`);
  }
  const n = x0.shape[0], dims = x0.size / n;
  const steps = typeof t === "number" ? new Array<number>(n).fill(t) : Array.from(t);
  if (steps.length !== n) {
    throw new RangeError(`t has ${steps.length} steps for a batch of ${n}; give one per image`);
  }
  const sigma2 = reverseVariances(process, variance);
  // The reference code's decoder variance is betaTilde_2 for sigma_t^2 = beta_t too.
  const decoderVar = reference && process.T >= 2 ? process.posteriorVariance[2] : sigma2[1];
  const klConst = new Float32Array(n), klWeight = new Float32Array(n);
  const invTwoVar = new Float32Array(n);
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
    const { betas, alphas, alphaBar } = process;
    klConst[i] = 0.5 * dims * (Math.log(s2 / bt) + bt / s2 - 1);
    klWeight[i] = (betas[k] * betas[k]) / (2 * s2 * alphas[k] * (1 - alphaBar[k]));
    invTwoVar[i] = 1 / (2 * s2);
  });
  const anyDecoder = isDecoder.includes(1), allDecoder = !isDecoder.includes(0);
  return tf.tidy(() => {
    const xt = qSample(process, { x0, noise, t: steps });
    const epsHat = eps(xt, tf.tensor1d(netT), cond, opts);
    const axes = x0.shape.slice(1).map((_, i) => i + 1);
    // Only the parts some image needs: the bound's evaluator runs one step for a whole batch.
    let nats: tf.Tensor = tf.zeros([n]);
    const x0Hat = x0FromEps(process, { xt, eps: epsHat, t: steps });
    // Reference convention: the model mean is the posterior mean of the clipped x0-hat.
    const clipped = reference ? tf.clipByValue(x0Hat, -1, 1) : x0Hat;
    const modelMean = reference ? posteriorMean(process, { xt, x0: clipped, t: steps }) : null;
    if (!allDecoder) {
      // Exact: the closed form in eps; reference: the Gaussian KL between the two means.
      const kl = reference
        ? tf.add(
          tf.tensor1d(klConst),
          tf.mul(
            tf.tensor1d(invTwoVar),
            tf.sum(
              tf.square(tf.sub(posteriorMean(process, { xt, x0, t: steps }), modelMean!)),
              axes,
            ),
          ),
        )
        : tf.add(
          tf.tensor1d(klConst),
          tf.mul(tf.tensor1d(klWeight), tf.sum(tf.square(tf.sub(noise, epsHat)), axes)),
        );
      nats = anyDecoder ? tf.mul(kl, tf.sub(1, tf.tensor1d(isDecoder))) : kl;
    }
    if (anyDecoder) {
      const mean = modelMean ?? muFromEps(process, { xt, eps: epsHat, t: steps });
      const std = tf.reshape(tf.tensor1d(decoderStd), perImageShape(x0));
      const logLikelihood = decoder === "gaussian"
        ? gaussianLogLikelihood(x0, { mean, std })
        : reference
        ? referenceDiscretizedGaussianLogLikelihood(x0, { mean, std })
        : discretizedGaussianLogLikelihood(x0, { mean, std });
      const l0 = tf.neg(tf.sum(logLikelihood, axes));
      nats = tf.add(nats, allDecoder ? l0 : tf.mul(l0, tf.tensor1d(isDecoder)));
    }
    return { terms: tf.div(nats, dims * Math.LN2) as tf.Tensor1D, x0Hat: clipped };
  });
}

/**
 * The variational bound as a training loss (DDPM "L, fixed isotropic Sigma"; improved DDPM's
 * L_vlb): the batch mean of `weights_i * L_{t_i - 1}` in bits per dimension.
 *
 * @param options Process, reverse variance and decoder.
 * @returns A {@linkcode DdpmLoss}; it throws RangeError for draws that do not fit x0.
 * @example With importance-sampled steps
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { createTimestepHistory, drawTimesteps, timestepProbabilities } from "./ddpm_importance.ts";
 * import { ddpmVlbLoss } from "./ddpm_loss.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess(), rng = new Rng(0), x0 = tf.zeros([4, 2]);
 * const history = createTimestepHistory(process.T);
 * const probabilities = timestepProbabilities(history); // uniform until warmed up
 * const { t, weights } = drawTimesteps(rng, { count: 4, probabilities });
 * const noise = rngNoise(rng).randn([4, 2]);
 * const value = ddpmVlbLoss({ process })(ddpmEpsNetwork((x) => tf.zerosLike(x)), x0, {
 *   t,
 *   noise,
 *   weights,
 * });
 * ```
 */
export function ddpmVlbLoss(options: DdpmVlbOptions): DdpmLoss {
  const { process, variance = "beta", decoder = "discretized" } = options;
  checkProcess(process);
  reverseVariances(process, variance); // validates the kind now, not at the first call
  return (eps, x0, draws, cond, opts) => {
    const weights = checkDraws(process, x0, draws);
    return tf.tidy(() => {
      const { terms } = ddpmVlbTerms(eps, x0, {
        process,
        variance,
        decoder,
        t: draws.t,
        noise: draws.noise,
        cond,
        opts,
      });
      return tf.mean(tf.mul(terms, tf.tensor1d(weights))) as tf.Scalar;
    });
  };
}

function checkProcess(process: DdpmProcess): void {
  if (process === undefined || !(process.alphaBar instanceof Float64Array)) {
    throw new TypeError("options.process must be a DdpmProcess (see ddpmProcess())");
  }
}

function checkDraws(process: DdpmProcess, x0: tf.Tensor, draws: DdpmLossDraws): Float32Array {
  const n = x0.shape[0];
  if (draws.t.length !== n) {
    throw new RangeError(`draws.t has ${draws.t.length} steps for a batch of ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const k = draws.t[i];
    if (!Number.isInteger(k) || k < 1 || k > process.T) {
      throw new RangeError(`draws.t[${i}] = ${k}: steps must be integers in 1..${process.T}`);
    }
  }
  if (!tf.util.arraysEqual(draws.noise.shape, x0.shape)) {
    throw new RangeError(
      `draws.noise must have the shape of x0 [${x0.shape}], got [${draws.noise.shape}]`,
    );
  }
  if (draws.weights === undefined) return new Float32Array(n).fill(1);
  if (draws.weights.length !== n) {
    throw new RangeError(`draws.weights has ${draws.weights.length} entries for a batch of ${n}`);
  }
  return Float32Array.from(draws.weights);
}
