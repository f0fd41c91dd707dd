/**
 * DDPM parameterizations (Ho et al. 2020, Section 3.2) and their bridge to EDM's denoisers.
 *
 * - An {@linkcode EpsPredictor} `eps_theta(x_t, t)` predicts the noise of `x_t = sqrt(alphaBar_t) x_0
 *   + sqrt(1 - alphaBar_t) eps` (eq. 4); t is the network time (the step of the training process).
 * - Conversions at a step t of a chain (eq. 4, 7, 11, 15): eps <-> x_0 <-> muTilde.
 * - A muTilde-predicting network (the paper's baseline) becomes an eps predictor through eq. 11.
 * - {@linkcode ddpmDenoiser}: an eps predictor as an EDM {@linkcode Denoiser}. With
 *   `x = x_t / sqrt(alphaBar)` and `sigma = sqrt((1 - alphaBar) / alphaBar)`,
 *   `D(x; sigma) = x - sigma eps_theta(x / sqrt(sigma^2 + 1), t(sigma))`: EDM Table 1's VP/iDDPM
 *   column (`c_skip = 1`, `c_out = -sigma`, `c_in = 1 / sqrt(sigma^2 + 1)`), with `c_noise` the
 *   DDPM step of sigma. Between grid levels, t(sigma) is the nearest step (like EDM's iDDPM
 *   preconditioner) or interpolated in log sigma (like EDM's continuous VP one): see
 *   `timeOfSigma` in `schedules/ddpm.ts`. So every EDM sampler runs on a DDPM model.
 * - {@linkcode epsFromDenoiser}: the way back, so the DDPM samplers, bound and loss run on any
 *   Denoiser (an EDM model, or the ideal denoisers of `ideal_denoiser.ts`).
 * - {@linkcode scoreFromDenoiser}: the score `(alpha D - z) / sigma^2` of any Denoiser in a
 *   log-SNR schedule's space, for the score-SDE samplers (Song et al. 2021).
 *
 * Coefficients are computed in float64 from the process tables and enter the graph as float32.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Conditioning, Denoiser, Network } from "../core/types.ts";
import {
  type DdpmProcess,
  sigmaOfAlphaBar,
  timeOfSigma,
  type TimeOfSigmaMode,
} from "../schedules/ddpm.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { precondition, type Preconditioned } from "./precond.ts";
import { combine, perImageShape, stepValues } from "./_ddpm_steps.ts";

/**
 * A noise predictor `eps_theta(x_t, t)`: `x_t` in the DDPM (variance-preserving) space, one network
 * time per image in `t` ([N], float32; integers on the training grid). Returns a new tensor shaped
 * like `x_t`; never disposes its inputs.
 */
export type EpsPredictor = (
  xt: tf.Tensor,
  t: tf.Tensor1D,
  cond?: Conditioning,
  opts?: ApplyOptions,
) => tf.Tensor;

/**
 * Wraps a raw network as DDPM's eps_theta (Algorithm 1): the network gets `c_noise = t - 1`, the
 * 0-based step in 0..T-1 (the range EDM's VP and iDDPM preconditioners feed the same networks).
 *
 * @param network The raw network F(x; c_noise), trained to output eps.
 * @returns An {@linkcode EpsPredictor}.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { ddpmEpsNetwork } from "./ddpm_param.ts";
 * const eps = ddpmEpsNetwork((x) => tf.zerosLike(x));
 * ```
 */
export function ddpmEpsNetwork(network: Network): EpsPredictor {
  return (xt, t, cond, opts) => tf.tidy(() => network(xt, tf.sub(t, 1) as tf.Tensor1D, cond, opts));
}

/**
 * Wraps a raw network that predicts the posterior mean muTilde_t (DDPM's "muTilde prediction"
 * baseline, Table 2) as an eps predictor, inverting eq. 11 on the network's own time axis:
 * `eps = (x_t - sqrt(alpha_t) mu) sqrt(1 - alphaBar_t) / beta_t`. The network gets
 * `c_noise = t - 1`; t must be an integer step of `process`'s base (training) process.
 *
 * @param network The raw network, trained to output muTilde_t(x_t, x_0).
 * @param process The training process (any respacing of it gives the same time axis).
 * @returns An {@linkcode EpsPredictor}.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { ddpmMuNetwork } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * const eps = ddpmMuNetwork((x) => tf.zerosLike(x), ddpmProcess());
 * ```
 */
export function ddpmMuNetwork(network: Network, process: DdpmProcess): EpsPredictor {
  const ab = process.baseAlphaBar, T = ab.length - 1;
  const sqrtAlpha = new Float32Array(T + 1), scale = new Float32Array(T + 1);
  for (let t = 1; t <= T; t++) {
    const alpha = ab[t] / ab[t - 1], beta = (ab[t - 1] - ab[t]) / ab[t - 1];
    sqrtAlpha[t] = Math.sqrt(alpha);
    scale[t] = Math.sqrt(1 - ab[t]) / beta;
  }
  return (xt, t, cond, opts) =>
    tf.tidy(() => {
      const idx = tf.cast(tf.clipByValue(tf.round(t), 1, T), "int32");
      const shape = perImageShape(xt);
      const a = tf.reshape(tf.gather(tf.tensor1d(sqrtAlpha), idx), shape);
      const s = tf.reshape(tf.gather(tf.tensor1d(scale), idx), shape);
      const mu = network(xt, tf.sub(t, 1) as tf.Tensor1D, cond, opts);
      return tf.mul(tf.sub(xt, tf.mul(a, mu)), s);
    });
}

/** A state x_t at step t of a chain: the common input of the conversions. */
export interface DdpmState {
  /** x_t, shape [N, ...]; never disposed. */
  xt: tf.Tensor;
  /** Step of the chain, 1..T: one number for the batch, or one per image. */
  t: number | ArrayLike<number>;
}

/**
 * x_0 from the noise (eq. 15): `x_0 = (x_t - sqrt(1 - alphaBar_t) eps) / sqrt(alphaBar_t)`.
 *
 * @param process The chain.
 * @param state x_t, t and the noise `eps` (shaped like x_t).
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 1..T or a per-image list of the wrong length.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { x0FromEps } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x0 = x0FromEps(ddpmProcess(), { xt: tf.ones([2, 3]), eps: tf.zeros([2, 3]), t: 10 });
 * ```
 */
export function x0FromEps(process: DdpmProcess, state: DdpmState & { eps: tf.Tensor }): tf.Tensor {
  const { xt, eps, t } = state;
  const ab = stepValues(process, t, xt, "t", (k) => process.alphaBar[k]);
  return combine(xt, eps, ab.map((a) => 1 / Math.sqrt(a)), ab.map((a) => -Math.sqrt((1 - a) / a)));
}

/**
 * The noise from x_0 (eq. 4): `eps = (x_t - sqrt(alphaBar_t) x_0) / sqrt(1 - alphaBar_t)`.
 *
 * @param process The chain.
 * @param state x_t, t and `x0` (shaped like x_t).
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 1..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { epsFromX0 } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const eps = epsFromX0(ddpmProcess(), { xt: tf.ones([2, 3]), x0: tf.zeros([2, 3]), t: 10 });
 * ```
 */
export function epsFromX0(process: DdpmProcess, state: DdpmState & { x0: tf.Tensor }): tf.Tensor {
  const { xt, x0, t } = state;
  const ab = stepValues(process, t, xt, "t", (k) => process.alphaBar[k]);
  return combine(
    xt,
    x0,
    ab.map((a) => 1 / Math.sqrt(1 - a)),
    ab.map((a) => -Math.sqrt(a / (1 - a))),
  );
}

/**
 * The forward posterior mean muTilde_t(x_t, x_0) of eq. 7.
 *
 * @param process The chain.
 * @param state x_t, t and `x0`.
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 1..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { posteriorMean } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const mu = posteriorMean(ddpmProcess(), { xt: tf.ones([1, 2]), x0: tf.zeros([1, 2]), t: 500 });
 * ```
 */
export function posteriorMean(
  process: DdpmProcess,
  state: DdpmState & { x0: tf.Tensor },
): tf.Tensor {
  const { xt, x0, t } = state;
  const cx = stepValues(process, t, xt, "t", (k) => process.posteriorCoefXt[k]);
  const c0 = stepValues(process, t, xt, "t", (k) => process.posteriorCoefX0[k]);
  return combine(xt, x0, cx, c0);
}

/**
 * The reverse-process mean from the noise (eq. 11):
 * `mu = (x_t - beta_t / sqrt(1 - alphaBar_t) eps) / sqrt(alpha_t)`.
 *
 * @param process The chain.
 * @param state x_t, t and `eps`.
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 1..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { muFromEps } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const mu = muFromEps(ddpmProcess(), { xt: tf.ones([1, 2]), eps: tf.zeros([1, 2]), t: 500 });
 * ```
 */
export function muFromEps(process: DdpmProcess, state: DdpmState & { eps: tf.Tensor }): tf.Tensor {
  const { xt, eps, t } = state;
  const a = stepValues(process, t, xt, "t", (k) => process.alphas[k]);
  const c = stepValues(
    process,
    t,
    xt,
    "t",
    (k) => process.betas[k] / Math.sqrt(1 - process.alphaBar[k]),
  );
  return combine(xt, eps, a.map((v) => 1 / Math.sqrt(v)), c.map((v, i) => -v / Math.sqrt(a[i])));
}

/**
 * The noise from a reverse-process mean (eq. 11 inverted):
 * `eps = (x_t - sqrt(alpha_t) mu) sqrt(1 - alphaBar_t) / beta_t`.
 *
 * @param process The chain.
 * @param state x_t, t and `mu`.
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 1..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { epsFromMu } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const eps = epsFromMu(ddpmProcess(), { xt: tf.ones([1, 2]), mu: tf.ones([1, 2]), t: 500 });
 * ```
 */
export function epsFromMu(process: DdpmProcess, state: DdpmState & { mu: tf.Tensor }): tf.Tensor {
  const { xt, mu, t } = state;
  const s = stepValues(
    process,
    t,
    xt,
    "t",
    (k) => Math.sqrt(1 - process.alphaBar[k]) / process.betas[k],
  );
  const a = stepValues(process, t, xt, "t", (k) => Math.sqrt(process.alphas[k]));
  return combine(xt, mu, s, s.map((v, i) => -v * a[i]));
}

/** Inputs of {@linkcode qSample}. */
export interface QSampleInputs {
  /** Clean data x_0, shape [N, ...]; never disposed. */
  x0: tf.Tensor;
  /** Standard normal noise shaped like x0; never disposed. */
  noise: tf.Tensor;
  /** Step of the chain, 0..T (0 returns a copy of x0): one number, or one per image. */
  t: number | ArrayLike<number>;
}

/**
 * Draws x_t ~ q(x_t | x_0) with the given noise (eq. 4):
 * `x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) noise`.
 *
 * @param process The chain.
 * @param inputs x0, noise and t.
 * @returns A new tensor owned by the caller.
 * @throws {RangeError} For steps outside 0..T.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { qSample } from "./ddpm_param.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const xt = qSample(ddpmProcess(), { x0: tf.ones([2, 2]), noise: tf.zeros([2, 2]), t: [1, 999] });
 * ```
 */
export function qSample(process: DdpmProcess, inputs: QSampleInputs): tf.Tensor {
  const { x0, noise, t } = inputs;
  const ab = stepValues(process, t, x0, "t", (k) => process.alphaBar[k], 0);
  return combine(x0, noise, ab.map(Math.sqrt), ab.map((a) => Math.sqrt(1 - a)));
}

/** Options of {@linkcode ddpmDenoiser}. */
export interface DdpmDenoiserOptions {
  /**
   * Network time of a noise level between grid levels: the nearest step, or linear in log sigma
   * between the two neighbours (a fractional time). @default "nearest"
   */
  mode?: TimeOfSigmaMode;
}

// Marks denoisers built by ddpmDenoiser, so epsFromDenoiser can call their eps network directly.
const WRAPPED = new WeakMap<object, { eps: EpsPredictor; baseAlphaBar: Float64Array }>();

/**
 * An eps predictor as an EDM {@linkcode Denoiser} (EDM Table 1's VP/iDDPM preconditioning):
 * `D(x; sigma) = x - sigma eps(x / sqrt(sigma^2 + 1), t(sigma))`. The supported range is
 * [sigma_1, sigma_T] of `process`'s grid; outside it t(sigma) clamps to the first or last step.
 * In "nearest" mode `roundSigma` snaps to the grid, so EDM samplers can stay on trained levels.
 *
 * @param eps The noise predictor.
 * @param process The chain whose grid maps sigma to a network time (the training process, or a
 *   respacing of it to restrict the levels).
 * @param options Nearest step or interpolation.
 * @returns A {@linkcode Preconditioned} denoiser of kind "ddpm"; its `network` is `eps` seen as
 *   `F(x_in; c_noise = t)`.
 * @throws {RangeError} For an unknown mode.
 * @example Heun's sampler on a DDPM model
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { ddpmDenoiser, ddpmEpsNetwork } from "./ddpm_param.ts";
 * import { ddpmProcess, ddpmSigmas, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
 * import { sampleHeun } from "../samplers/heun.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const process = ddpmProcess();
 * const denoiser = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), process);
 * const sigmas = ddpmSigmas(respaceDdpm(process, spaceTimesteps(1000, { numSteps: 18 })));
 * const { x } = await sampleHeun(denoiser, tf.mul(tf.randomNormal([2, 2]), sigmas[0]), { sigmas });
 * ```
 */
export function ddpmDenoiser(
  eps: EpsPredictor,
  process: DdpmProcess,
  options: DdpmDenoiserOptions = {},
): Preconditioned {
  const { mode = "nearest" } = options;
  if (mode !== "nearest" && mode !== "interpolate") {
    throw new RangeError(`unknown mode "${mode}": use "nearest" or "interpolate"`);
  }
  const { T, timesteps } = process;
  const sigmaAt = (k: number) => sigmaOfAlphaBar(process.alphaBar[k]);
  const logSigmas = Float32Array.from({ length: T }, (_, i) => Math.log(sigmaAt(i + 1)));
  const times = Float32Array.from(timesteps.subarray(1));
  const timeOf = (sigma: tf.Tensor1D): tf.Tensor1D => {
    const table = tf.tensor2d(logSigmas, [1, T]);
    const target = tf.reshape(tf.log(sigma), [-1, 1]);
    // Count of grid levels below sigma: the upper neighbour's 0-based index.
    // Counted and clipped in float32: tfjs-wasm's ClipByValue reads int32 data as float32 bits.
    const above = tf.sum(tf.cast(tf.less(table, target), "float32"), 1);
    const hi = tf.cast(tf.clipByValue(above, 0, T - 1), "int32");
    const lo = tf.cast(tf.clipByValue(tf.sub(above, 1), 0, T - 1), "int32");
    const a = tf.gather(tf.tensor1d(logSigmas), lo), b = tf.gather(tf.tensor1d(logSigmas), hi);
    const width = tf.sub(b, a);
    const safeWidth = tf.where(tf.greater(width, 0), width, tf.onesLike(width));
    const frac = tf.clipByValue(tf.div(tf.sub(tf.reshape(target, [-1]), a), safeWidth), 0, 1);
    const tLo = tf.gather(tf.tensor1d(times), lo), tHi = tf.gather(tf.tensor1d(times), hi);
    if (mode === "nearest") return tf.where(tf.less(frac, 0.5), tLo, tHi) as tf.Tensor1D;
    return tf.add(tLo, tf.mul(frac, tf.sub(tHi, tLo))) as tf.Tensor1D;
  };
  const network: Network = (x, cNoise, cond, opts) => eps(x, cNoise, cond, opts);
  const roundSigma = (sigma: number): number => {
    if (mode === "interpolate" || !(sigma > 0)) return sigma;
    const t = timeOfSigma(process, sigma);
    let k = 1;
    while (k < T && timesteps[k] !== t) k++;
    return sigmaAt(k);
  };
  const denoiser = precondition(network, {
    kind: "ddpm",
    sigmaMin: sigmaAt(1),
    sigmaMax: sigmaAt(T),
    roundSigma,
    coefficients: (sigma) => ({
      cSkip: 1,
      cOut: -sigma,
      cIn: 1 / Math.sqrt(sigma * sigma + 1),
      cNoise: timeOfSigma(process, Math.max(sigma, 0), { mode }),
    }),
    tensorCoefficients: (sigma) => ({
      cSkip: 1,
      cOut: tf.neg(sigma),
      cIn: tf.rsqrt(tf.add(tf.square(sigma), 1)),
      cNoise: timeOf(sigma),
    }),
  });
  WRAPPED.set(denoiser, { eps, baseAlphaBar: process.baseAlphaBar });
  return denoiser;
}

/**
 * Any EDM {@linkcode Denoiser} as an eps predictor on `process`'s network time axis:
 * with `sigma = sqrt((1 - alphaBar_t) / alphaBar_t)` and `x = x_t / sqrt(alphaBar_t)`,
 * `eps = (x - D(x; sigma)) / sigma`. A fractional t interpolates log sigma between steps.
 * A denoiser made by {@linkcode ddpmDenoiser} on the same time axis hands back its eps predictor
 * itself (no round trip through sigma).
 *
 * @param denoiser The denoiser (e.g. `idealPointSetDenoiser(points)`, or a trained EDM model).
 * @param process Any chain on the wanted time axis (its `baseAlphaBar` is used).
 * @returns An {@linkcode EpsPredictor}; times are clamped to 1..T of the base process.
 * @example The exact eps of a point set
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { epsFromDenoiser } from "./ddpm_param.ts";
 * import { idealPointSetDenoiser } from "./ideal_denoiser.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const eps = epsFromDenoiser(idealPointSetDenoiser(tf.tensor2d([[-1, 0], [1, 0]])), ddpmProcess());
 * const e = eps(tf.tensor2d([[0.5, 0.5]]), tf.tensor1d([100]));
 * ```
 */
export function epsFromDenoiser(denoiser: Denoiser, process: DdpmProcess): EpsPredictor {
  const wrapped = WRAPPED.get(denoiser);
  if (wrapped !== undefined && sameTable(wrapped.baseAlphaBar, process.baseAlphaBar)) {
    return wrapped.eps;
  }
  const ab = process.baseAlphaBar, T = ab.length - 1;
  const logSigma = Float32Array.from(
    { length: T + 1 },
    (_, t) => t === 0 ? 0 : Math.log(sigmaOfAlphaBar(ab[t])),
  );
  return (xt, t, cond, opts) =>
    tf.tidy(() => {
      const tc = tf.clipByValue(t, 1, T);
      const lo = tf.floor(tc), frac = tf.sub(tc, lo);
      const hi = tf.minimum(tf.add(lo, 1), T);
      const table = tf.tensor1d(logSigma);
      const a = tf.gather(table, tf.cast(lo, "int32")), b = tf.gather(table, tf.cast(hi, "int32"));
      const sigma = tf.exp(tf.add(a, tf.mul(frac, tf.sub(b, a)))) as tf.Tensor1D;
      const shape = perImageShape(xt);
      const sigmaB = tf.reshape(sigma, shape);
      const x = tf.mul(xt, tf.sqrt(tf.add(tf.square(sigmaB), 1)));
      const d = denoiser(x, sigma, cond, opts);
      return tf.div(tf.sub(x, d), sigmaB);
    });
}

function sameTable(a: Float64Array, b: Float64Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A score model `s(z, t) ~ grad_z log p_t(z)` in the space of a {@linkcode LogSnrSchedule}
 * (`z = alpha(t) x + sigma(t) eps`), at one time t for the whole batch. Returns a new tensor
 * shaped like `z`; never disposes its inputs.
 */
export type ScoreFunction = (z: tf.Tensor, t: number, cond?: Conditioning) => tf.Tensor;

/**
 * The score of any {@linkcode Denoiser} in a schedule's scaled space (Tweedie's formula; score
 * SDE eq. 7 minimizer): with `x_hat = D(z / alpha; sigma / alpha)` (EDM's unscaled space),
 * `score(z, t) = (alpha x_hat - z) / sigma^2 = -eps_hat / sigma`.
 *
 * @param denoiser The denoiser D(x; sigma) in EDM's unscaled space.
 * @param schedule The process z lives in.
 * @returns A {@linkcode ScoreFunction}; it throws RangeError where sigma(t) or alpha(t) is 0.
 * @example The exact score of N(0, I) data under VP is -z
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { scoreFromDenoiser } from "./ddpm_param.ts";
 * import { idealGaussianDenoiser } from "./ideal_denoiser.ts";
 * import { scoreSdeSchedule } from "../schedules/score_sde.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const score = scoreFromDenoiser(idealGaussianDenoiser(), scoreSdeSchedule("vp"));
 * const s = score(tf.ones([2, 3]), 0.5); // -1 everywhere
 * ```
 */
export function scoreFromDenoiser(denoiser: Denoiser, schedule: LogSnrSchedule): ScoreFunction {
  return (z, t, cond) => {
    const alpha = schedule.alpha(t), sigma = schedule.sigma(t);
    if (!(alpha > 0) || !(sigma > 0)) {
      throw new RangeError(
        `the score at t = ${t} needs alpha, sigma > 0, got alpha ${alpha}, sigma ${sigma}; ` +
          `stay inside (0, ${schedule.tMax}] of schedule "${schedule.name}"`,
      );
    }
    return tf.tidy(() => {
      const level = tf.fill([z.shape[0]], sigma / alpha) as tf.Tensor1D;
      const denoised = denoiser(alpha === 1 ? z : tf.div(z, alpha), level, cond);
      return tf.div(tf.sub(tf.mul(denoised, alpha), z), sigma * sigma);
    });
  };
}
