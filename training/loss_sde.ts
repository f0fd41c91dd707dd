/**
 * The continuous-time denoising score matching loss of score SDEs (Song et al. 2021, eq. 7;
 * likelihood weighting of Song, Durkan, Murray and Ermon 2021, "Maximum Likelihood Training of
 * Score-Based Diffusion Models", Theorem 1; score_sde `losses.py` `get_sde_loss_fn`):
 * `E_t lambda(t) E ||s(z_t, t) - grad log p(z_t | x)||^2` with `t ~ U(eps, tMax)`, eps = 1e-5.
 *
 * With `z = alpha x + sigma n` and the score of a denoiser `s = (alpha D - z) / sigma^2`
 * (`scoreFromDenoiser`), `sigma s + n = (D - x) / sigma_edm` where `sigma_edm = sigma / alpha`:
 * - `sigma2` (lambda = sigma^2, the paper's default): `||D - x||^2 / sigma_edm^2`, which is EDM's
 *   VP loss and, for an eps-predicting network, the plain eps loss;
 * - `likelihood` (lambda = g^2): `(g^2 / sigma^2) ||D - x||^2 / sigma_edm^2`, and for every
 *   log-SNR schedule `g^2 / sigma^2 = -lambda'(t)` (S2N Theorem 1), so
 * - importance sampling of t with density proportional to `g^2 / sigma^2 = -lambda'(t)` has the
 *   closed-form inverse cumulative `t = tOfLogSnr(U(lambda(tMax), lambda(eps)))` (log-SNR
 *   uniform) for every schedule, and the per-draw weight becomes the constant
 *   `(lambda(eps) - lambda(tMax)) / (tMax - eps)`: the same expectation as the uniform
 *   likelihood-weighted estimator, with lower variance.
 *
 * Reduction over pixels as score_sde: `reduce: "sum"` is `0.5 * sum` (its `reduce_mean=False`),
 * `"mean"` the mean; then the batch mean. Randomness stays outside the loss: draw t with
 * {@linkcode drawSdeTimes}, the noise from a `NoiseSource`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { SCORE_SDE_EPS } from "../schedules/score_sde.ts";
import { type DenoisingLoss, type LossDraws, weightedLoss } from "./denoising_loss.ts";

/** Options of {@linkcode drawSdeTimes} and {@linkcode sdeWeight}. */
export interface SdeTimeOptions {
  /** The process. Required. */
  schedule: LogSnrSchedule;
  /** lambda(t): sigma^2 or the likelihood weighting g^2. @default "sigma2" */
  weighting?: "sigma2" | "likelihood";
  /** Draw t with density proportional to g^2 / sigma^2 (likelihood weighting only). @default false */
  importance?: boolean;
  /** Smallest time. @default 1e-5 */
  eps?: number;
  /** Largest time (DiNof trains on [eps, T_m]). @default schedule.tMax */
  tMax?: number;
}

/** Per-image draws of {@linkcode drawSdeTimes}. */
export interface SdeTimeDraws {
  /** Times t. */
  t: Float64Array;
  /** EDM noise levels sigma(t) / alpha(t), the denoiser's input. */
  sigma: Float32Array;
  /** Per-image loss weights (see {@linkcode sdeWeight}). */
  weight: Float32Array;
}

function resolve(options: SdeTimeOptions): Required<SdeTimeOptions> {
  const { schedule, weighting = "sigma2", importance = false, eps = SCORE_SDE_EPS } = options;
  const tMax = options.tMax ?? schedule.tMax;
  if (!(eps > 0) || !(tMax > eps) || tMax > schedule.tMax || eps < schedule.tMin) {
    throw new RangeError(
      `need ${schedule.tMin} <= eps < tMax <= ${schedule.tMax}, got eps ${eps}, tMax ${tMax}`,
    );
  }
  if (weighting !== "sigma2" && weighting !== "likelihood") {
    throw new RangeError(`weighting must be "sigma2" or "likelihood", got "${weighting}"`);
  }
  if (importance && weighting !== "likelihood") {
    throw new RangeError('importance sampling of t goes with weighting: "likelihood"');
  }
  return { schedule, weighting, importance, eps, tMax };
}

/**
 * The loss weight of a draw at time t, lambda(t) / sigma(t)^2 divided by the ratio of t's
 * sampling density to U(eps, tMax): 1 (sigma^2 weighting), `-lambda'(t) = g^2 / sigma^2`
 * (likelihood weighting, uniform t), or `(lambda(eps) - lambda(tMax)) / (tMax - eps)`
 * (likelihood weighting, importance-sampled t).
 *
 * @param t The time.
 * @param options Schedule, weighting, importance sampling and the range.
 * @returns The weight.
 * @throws {RangeError} For a bad range or importance without likelihood weighting.
 * @example VE's likelihood weight is the constant 2 log(sigma_max / sigma_min)
 * ```ts
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { sdeWeight } from "./loss_sde.ts";
 * const w = sdeWeight(0.3, { schedule: scoreSdeSchedule("ve"), weighting: "likelihood" });
 * ```
 */
export function sdeWeight(t: number, options: SdeTimeOptions): number {
  const { schedule, weighting, importance, eps, tMax } = resolve(options);
  if (importance) return (schedule.logSnr(eps) - schedule.logSnr(tMax)) / (tMax - eps);
  return weighting === "likelihood" ? -schedule.logSnrDeriv(t) : 1;
}

/**
 * Draws n training times and their loss weights (see the module doc).
 *
 * @param n The batch size.
 * @param rng The generator; advanced by n uniforms.
 * @param options Schedule, weighting, importance sampling and the range [eps, tMax].
 * @returns Times, EDM noise levels and weights.
 * @throws {RangeError} For n < 1, a bad range, or importance without likelihood weighting.
 * @example Likelihood weighting with importance sampling on [1e-5, 0.5]
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { drawSdeTimes } from "./loss_sde.ts";
 * const draws = drawSdeTimes(8, new Rng(0), {
 *   schedule: scoreSdeSchedule("vp"),
 *   weighting: "likelihood",
 *   importance: true,
 *   tMax: 0.5,
 * });
 * ```
 */
export function drawSdeTimes(n: number, rng: Rng, options: SdeTimeOptions): SdeTimeDraws {
  const resolved = resolve(options);
  const { schedule, importance, eps, tMax } = resolved;
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`the number of draws must be a positive integer, got ${n}`);
  }
  const t = new Float64Array(n), sigma = new Float32Array(n), weight = new Float32Array(n);
  const lamHi = schedule.logSnr(eps), lamLo = schedule.logSnr(tMax);
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    t[i] = importance ? schedule.tOfLogSnr(lamLo + u * (lamHi - lamLo)) : eps + u * (tMax - eps);
    weight[i] = sdeWeight(t[i], resolved);
    sigma[i] = schedule.sigma(t[i]) / schedule.alpha(t[i]);
  }
  return { t, sigma, weight };
}

/** The random inputs of one {@linkcode sdeLoss} evaluation; not disposed by the loss. */
export interface SdeLossDraws extends LossDraws {
  /** Per-image weights, shape [N] (from {@linkcode drawSdeTimes}). */
  weight: tf.Tensor1D;
}

/** Options of {@linkcode sdeLoss}. */
export interface SdeLossOptions {
  /** Per-image reduction: 0.5 * sum (score_sde's default) or mean over pixels. @default "sum" */
  reduce?: "sum" | "mean";
}

/**
 * The DSM loss of a denoiser on a batch: the batch mean of
 * `weight_i reduce((D(y_i + sigma_i n_i; sigma_i) - y_i)^2) / sigma_i^2` (see the module doc),
 * a {@linkcode DenoisingLoss} whose draws carry the per-image weights.
 *
 * @param options The reduction.
 * @returns The loss; a new scalar owned by the caller per call.
 * @throws {RangeError} For an unknown reduction.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { rngNoise } from "../core/noise.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * import { drawSdeTimes, sdeLoss } from "./loss_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const rng = new Rng(0), y = tf.ones([4, 2]);
 * const d = drawSdeTimes(4, rng, { schedule: scoreSdeSchedule("vp") });
 * const value = sdeLoss()((x) => tf.zerosLike(x), y, {
 *   sigma: tf.tensor1d(d.sigma),
 *   weight: tf.tensor1d(d.weight),
 *   noise: rngNoise(rng).randn([4, 2]),
 * });
 * ```
 */
export function sdeLoss(options: SdeLossOptions = {}): DenoisingLoss {
  const { reduce = "sum" } = options;
  if (reduce !== "sum" && reduce !== "mean") {
    throw new RangeError(`reduce must be "sum" or "mean", got "${reduce}"`);
  }
  return (denoiser, y, draws, cond, opts) => {
    if (!draws.weight) throw new TypeError("sdeLoss needs draws.weight (from drawSdeTimes)");
    const factor = reduce === "sum" ? 0.5 : y.shape[0] / y.size;
    const loss = weightedLoss({ weight: (s) => tf.div(factor, tf.square(s)) });
    return loss(denoiser, y, draws, cond, opts);
  };
}
