/**
 * Predictors of the predictor-corrector samplers (Song et al. 2021, Section 4.2, Algorithm 2-4,
 * Appendix E and F; score_sde_pytorch `sampling.py` names): one step of the reverse-time SDE
 * `dz = [f z - g^2 score] dt + g dw_bar` from t to t - dt, for any {@linkcode LogSnrSchedule}.
 *
 * - `euler_maruyama`: `mean = z - (f z - g^2 s) dt`, `z' = mean + g sqrt(dt) n`, with the
 *   continuous f(t), g(t) of `forward_sde.ts` and dt the sampler's step (score_sde's 1/N).
 * - `reverse_diffusion` (eq. 46-47 reversed): with the discrete form `a_i, G_i` of
 *   `sde_discrete.ts`, `mean = z - (a_i - 1) z + G_i^2 s`, `z' = mean + G_i n`.
 * - `ancestral_sampling` (eq. 47 / DDPM): `mean = (z + G_i^2 s) / a_i`, which is the exact
 *   posterior mean `E[z_{i-1} | z_i, x_hat]` for any Gaussian chain (DDPM eq. 7 rewritten with
 *   the score), `z' = mean + sqrt(v_i) n` with the VE posterior / VP beta_i variance
 *   (`ancestralVariance`). score_sde has it for VE and VP only; here every schedule has it.
 * - `none`: leaves z as it is (corrector-only sampling).
 *
 * Every step makes exactly one score evaluation (none for `none`) and returns it, so samplers
 * report the real NFE.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning } from "../core/types.ts";
import type { ScoreFunction } from "../models/ddpm_param.ts";
import { forwardSdeCoefficients } from "../schedules/forward_sde.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { discretizeSde } from "../schedules/sde_discrete.ts";

/** What a predictor or corrector sees at one time of the sampler's grid. */
export interface SdeStepContext {
  /** The process. */
  schedule: LogSnrSchedule;
  /** The score model. */
  score: ScoreFunction;
  /** Current time t. */
  t: number;
  /** Step size dt > 0: the predictor moves to t - dt (score_sde's 1/N). */
  dt: number;
  /** Number of levels N of the discrete forms. */
  numScales: number;
  /** Per-image Gaussian noise. */
  noise: NoiseSource;
  /** Conditioning of the score model. @default undefined */
  cond?: Conditioning;
}

/** The result of one predictor or corrector update; tensors owned by the caller. */
export interface SdeUpdate {
  /** The new sample. */
  z: tf.Tensor;
  /** The new sample without its last noise (score_sde's `x_mean`). */
  mean: tf.Tensor;
  /** The last score evaluated, or null when none was. */
  score: tf.Tensor | null;
  /** Score evaluations made. */
  nfe: number;
}

/** A predictor: one reverse-time step. `step` is called inside `tf.tidy`; z is not disposed. */
export interface Predictor {
  /** score_sde's name of the predictor. */
  readonly name: string;
  /** One step from ctx.t to ctx.t - ctx.dt. */
  step(z: tf.Tensor, ctx: SdeStepContext): SdeUpdate;
}

/** Names accepted by {@linkcode predictorByName}. */
export const PREDICTOR_NAMES = [
  "euler_maruyama",
  "reverse_diffusion",
  "ancestral_sampling",
  "none",
] as const;

/** One of {@linkcode PREDICTOR_NAMES}. */
export type PredictorName = typeof PREDICTOR_NAMES[number];

function withNoise(mean: tf.Tensor, std: number, ctx: SdeStepContext): tf.Tensor {
  return std > 0 ? tf.add(mean, tf.mul(ctx.noise.randn(mean.shape), std)) : tf.clone(mean);
}

/**
 * Euler-Maruyama on the reverse-time SDE (score_sde `EulerMaruyamaPredictor`).
 *
 * @example
 * ```ts ignore
 * const { z, mean } = tf.tidy(() => eulerMaruyamaPredictor.step(z0, ctx));
 * ```
 */
export const eulerMaruyamaPredictor: Predictor = {
  name: "euler_maruyama",
  step(z, ctx) {
    const { f, g2 } = forwardSdeCoefficients(ctx.schedule, ctx.t);
    const score = ctx.score(z, ctx.t, ctx.cond);
    // mean = z - dt (f z - g^2 s)
    const mean = tf.add(tf.mul(z, 1 - f * ctx.dt), tf.mul(score, g2 * ctx.dt));
    return { z: withNoise(mean, Math.sqrt(g2 * ctx.dt), ctx), mean, score, nfe: 1 };
  },
};

/**
 * The reverse of the discrete forward chain (score_sde `ReverseDiffusionPredictor`).
 *
 * @example
 * ```ts ignore
 * const { z } = tf.tidy(() => reverseDiffusionPredictor.step(z0, ctx));
 * ```
 */
export const reverseDiffusionPredictor: Predictor = {
  name: "reverse_diffusion",
  step(z, ctx) {
    const d = discretizeSde(ctx.schedule, ctx.t, { numScales: ctx.numScales });
    const score = ctx.score(z, ctx.t, ctx.cond);
    const mean = tf.add(tf.mul(z, 2 - d.scale), tf.mul(score, d.g2));
    return { z: withNoise(mean, Math.sqrt(d.g2), ctx), mean, score, nfe: 1 };
  },
};

/**
 * Ancestral sampling of the discrete chain (score_sde `AncestralSamplingPredictor`), for every
 * schedule.
 *
 * @example
 * ```ts ignore
 * const { z } = tf.tidy(() => ancestralPredictor.step(z0, ctx));
 * ```
 */
export const ancestralPredictor: Predictor = {
  name: "ancestral_sampling",
  step(z, ctx) {
    const d = discretizeSde(ctx.schedule, ctx.t, { numScales: ctx.numScales });
    const score = ctx.score(z, ctx.t, ctx.cond);
    const mean = tf.div(tf.add(z, tf.mul(score, d.g2)), d.scale);
    return { z: withNoise(mean, Math.sqrt(d.ancestralVariance), ctx), mean, score, nfe: 1 };
  },
};

/**
 * The predictor that does nothing (score_sde `NonePredictor`).
 *
 * @example
 * ```ts ignore
 * samplePc(denoiser, z, { ...options, predictor: nonePredictor, corrector: langevinCorrector() });
 * ```
 */
export const nonePredictor: Predictor = {
  name: "none",
  step(z) {
    return { z: tf.clone(z), mean: tf.clone(z), score: null, nfe: 0 };
  },
};

/**
 * A predictor by its score_sde name.
 *
 * @param name One of {@linkcode PREDICTOR_NAMES}.
 * @returns The predictor.
 * @throws {RangeError} For an unknown name.
 * @example
 * ```ts
 * import { predictorByName } from "./sde_predictors.ts";
 * const p = predictorByName("reverse_diffusion");
 * ```
 */
export function predictorByName(name: PredictorName): Predictor {
  switch (name) {
    case "euler_maruyama":
      return eulerMaruyamaPredictor;
    case "reverse_diffusion":
      return reverseDiffusionPredictor;
    case "ancestral_sampling":
      return ancestralPredictor;
    case "none":
      return nonePredictor;
    default:
      throw new RangeError(`unknown predictor "${name}"; use one of ${PREDICTOR_NAMES.join(", ")}`);
  }
}
