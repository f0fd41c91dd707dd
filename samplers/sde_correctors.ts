/**
 * Correctors of the predictor-corrector samplers (Song et al. 2021, Section 4.2, Algorithm 4 and
 * 5; score_sde_pytorch `sampling.py` `LangevinCorrector`, `AnnealedLangevinDynamics`): Langevin
 * MCMC steps at a fixed time t that leave p_t invariant,
 * `mean = z + eps_i s(z, t)`, `z' = mean + sqrt(2 eps_i) n`.
 *
 * - `langevin`: `eps_i = 2 alpha_i (snr |n| / |s|)^2` (Algorithm 4), with the norms as
 *   score_sde computes them: the L2 norm of each image's score and noise, averaged over the batch
 *   (`normAverage: "batch"`, the default). That couples the images of a batch; `"image"` uses each
 *   image's own norms so an image depends on its seed alone. alpha_i is score_sde's: `1 - beta_i`
 *   of the DDPM discretization for VP, 1 for VE, and `(1 + f dt)^2` for sub-VP (where score_sde
 *   would fail; see `sde_discrete.ts`). The paper's Algorithm 4 uses the same step-size rule;
 *   Algorithm 5 (VP) writes alpha_i = 1 - beta_i, as the code does.
 * - `ald` (annealed Langevin dynamics of NCSN, Song and Ermon 2019):
 *   `eps_i = 2 alpha_i (snr sigma(t))^2` with the marginal std sigma(t).
 * - `none`: no correction.
 *
 * Each step is one score evaluation; a corrector runs `nStepsEach` steps.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { discretizeSde } from "../schedules/sde_discrete.ts";
import type { SdeStepContext, SdeUpdate } from "./sde_predictors.ts";

/** A corrector: `nStepsEach` Langevin-type steps at ctx.t. Called inside `tf.tidy`. */
export interface Corrector {
  /** score_sde's name of the corrector. */
  readonly name: string;
  /** The steps at ctx.t; z is not disposed. */
  step(z: tf.Tensor, ctx: SdeStepContext): SdeUpdate;
}

/** Options of {@linkcode langevinCorrector} and {@linkcode annealedLangevinCorrector}. */
export interface LangevinOptions {
  /** Target signal-to-noise ratio (score_sde's `sampling.snr`). @default 0.16 */
  snr?: number;
  /** Langevin steps per noise level (score_sde's `n_steps_each`). @default 1 */
  nStepsEach?: number;
  /** How the norms are averaged: over the batch (score_sde) or per image. @default "batch" */
  normAverage?: "batch" | "image";
}

/** Names accepted by {@linkcode correctorByName}. */
export const CORRECTOR_NAMES = ["langevin", "ald", "none"] as const;

/** One of {@linkcode CORRECTOR_NAMES}. */
export type CorrectorName = typeof CORRECTOR_NAMES[number];

function checkOptions(options: LangevinOptions): Required<LangevinOptions> {
  const { snr = 0.16, nStepsEach = 1, normAverage = "batch" } = options;
  if (!(snr > 0) || !Number.isFinite(snr)) {
    throw new RangeError(`snr must be a finite number > 0, got ${snr}`);
  }
  if (!Number.isInteger(nStepsEach) || nStepsEach < 1) {
    throw new RangeError(`nStepsEach must be an integer >= 1, got ${nStepsEach}`);
  }
  if (normAverage !== "batch" && normAverage !== "image") {
    throw new RangeError(`normAverage must be "batch" or "image", got "${normAverage}"`);
  }
  return { snr, nStepsEach, normAverage };
}

// The Langevin chain with a step size computed per step from (score, noise).
function langevinChain(
  z0: tf.Tensor,
  ctx: SdeStepContext,
  nSteps: number,
  stepSize: (score: tf.Tensor, noise: tf.Tensor) => tf.Tensor | number,
): SdeUpdate {
  let z = z0, mean = z0, score: tf.Tensor | null = null;
  for (let k = 0; k < nSteps; k++) {
    score = ctx.score(z, ctx.t, ctx.cond);
    const noise = ctx.noise.randn(z.shape);
    const eps = stepSize(score, noise);
    mean = tf.add(z, tf.mul(score, eps));
    z = tf.add(
      mean,
      tf.mul(noise, typeof eps === "number" ? Math.sqrt(2 * eps) : tf.sqrt(tf.mul(eps, 2))),
    );
  }
  return {
    z: z === z0 ? tf.clone(z) : z,
    mean: mean === z0 ? tf.clone(z0) : mean,
    score,
    nfe: nSteps,
  };
}

/**
 * Langevin corrector with a target signal-to-noise ratio (score_sde `LangevinCorrector`).
 *
 * @param options snr, nStepsEach and the norm averaging.
 * @returns The corrector.
 * @throws {RangeError} For snr <= 0, nStepsEach < 1 or an unknown normAverage.
 * @example score_sde's VE setting
 * ```ts
 * import { langevinCorrector } from "./sde_correctors.ts";
 * const c = langevinCorrector({ snr: 0.16, nStepsEach: 1 });
 * ```
 */
export function langevinCorrector(options: LangevinOptions = {}): Corrector {
  const { snr, nStepsEach, normAverage } = checkOptions(options);
  return {
    name: "langevin",
    step(z, ctx) {
      const alpha = discretizeSde(ctx.schedule, ctx.t, { numScales: ctx.numScales }).langevinAlpha;
      const n = z.shape[0];
      const perImage = [n, ...z.shape.slice(1).map(() => 1)];
      return langevinChain(z, ctx, nStepsEach, (score, noise) => {
        const norm = (v: tf.Tensor) => tf.norm(tf.reshape(v, [n, -1]), "euclidean", 1);
        const ratio = normAverage === "batch"
          ? tf.div(tf.mean(norm(noise)), tf.mean(norm(score)))
          : tf.div(norm(noise), norm(score));
        const eps = tf.mul(tf.square(tf.mul(ratio, snr)), 2 * alpha);
        return normAverage === "batch" ? eps : tf.reshape(eps, perImage);
      });
    },
  };
}

/**
 * Annealed Langevin dynamics (score_sde `AnnealedLangevinDynamics`, NCSN's sampler).
 *
 * @param options snr and nStepsEach (normAverage is not used).
 * @returns The corrector.
 * @throws {RangeError} For snr <= 0 or nStepsEach < 1.
 * @example
 * ```ts
 * import { annealedLangevinCorrector } from "./sde_correctors.ts";
 * const c = annealedLangevinCorrector({ snr: 0.16 });
 * ```
 */
export function annealedLangevinCorrector(options: LangevinOptions = {}): Corrector {
  const { snr, nStepsEach } = checkOptions(options);
  return {
    name: "ald",
    step(z, ctx) {
      const alpha = discretizeSde(ctx.schedule, ctx.t, { numScales: ctx.numScales }).langevinAlpha;
      const eps = 2 * alpha * (snr * ctx.schedule.sigma(ctx.t)) ** 2;
      return langevinChain(z, ctx, nStepsEach, () => eps);
    },
  };
}

/**
 * The corrector that does nothing (score_sde `NoneCorrector`).
 *
 * @example
 * ```ts ignore
 * samplePc(denoiser, z, { ...options, corrector: noneCorrector });
 * ```
 */
export const noneCorrector: Corrector = {
  name: "none",
  step(z) {
    return { z: tf.clone(z), mean: tf.clone(z), score: null, nfe: 0 };
  },
};

/**
 * A corrector by its score_sde name.
 *
 * @param name One of {@linkcode CORRECTOR_NAMES}.
 * @param options Options of the Langevin correctors.
 * @returns The corrector.
 * @throws {RangeError} For an unknown name or bad options.
 * @example
 * ```ts
 * import { correctorByName } from "./sde_correctors.ts";
 * const c = correctorByName("langevin", { snr: 0.16 });
 * ```
 */
export function correctorByName(name: CorrectorName, options: LangevinOptions = {}): Corrector {
  switch (name) {
    case "langevin":
      return langevinCorrector(options);
    case "ald":
      return annealedLangevinCorrector(options);
    case "none":
      return noneCorrector;
    default:
      throw new RangeError(`unknown corrector "${name}"; use one of ${CORRECTOR_NAMES.join(", ")}`);
  }
}
