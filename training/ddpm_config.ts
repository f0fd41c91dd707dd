/**
 * Typed training configurations for DDPM (Ho et al. 2020, Section 4 and Appendix B): T, the beta
 * schedule, the loss (L_simple of eq. 14, or the true variational bound of eq. 5 with improved
 * DDPM's importance-sampled t), the reverse variance, and the run's length and logging. Presets
 * are typed constants: spread one to override, `satisfies` catches typos.
 *
 * @module
 */
import { validateRunConfig } from "./run_config.ts";
import type { BetaSchedule, ReverseVariance } from "../schedules/ddpm.ts";

/** The training objective: DDPM's `L_simple` (eq. 14) or the variational bound `L_vlb` (eq. 5). */
export type DdpmLossKind = "simple" | "vlb";

/** Everything a DDPM training run needs; stored in every checkpoint. */
export interface DdpmTrainConfig {
  /** Dataset spec for `loadDataset`: "mnist", "cifar10:<path>", "png:<folder>", "toy:<name>". */
  data: string;
  /** Network: a U-Net preset name from `UNET_PRESETS`, or "mlp" for 2-D data. */
  model: string;
  /** Base channels of the U-Net (overrides the preset when set). */
  channels?: number;
  /** Channel multipliers per level (overrides the preset when set). */
  channelMult?: number[];
  /** Residual blocks per level (overrides the preset when set). */
  numBlocks?: number;
  /** Number of diffusion steps T (DDPM: 1000). */
  T: number;
  /** Beta schedule: DDPM's linear 1e-4..0.02, or improved DDPM's cosine. */
  schedule: BetaSchedule;
  /** Training loss. */
  loss: DdpmLossKind;
  /** Reverse variance sigma_t^2 of the bound and of the sample grids (Section 3.2). */
  variance: ReverseVariance;
  /** Images per training step. */
  batchSize: number;
  /** Training length in thousands of images. */
  kimg: number;
  /** Adam learning rate (DDPM: 2e-4 on CIFAR-10). */
  lr: number;
  /** Learning-rate warm-up in thousands of images (DDPM: 5000 steps). */
  lrRampupKimg: number;
  /** Linear learning-rate decay to 0 over the last this many kimg (not in DDPM). @default 0 */
  lrDecayKimg?: number;
  /** EMA half-life in thousands of images (DDPM: decay 0.9999 per step). */
  emaHalfLifeKimg: number;
  /** EMA ramp-up ratio: half-life at most this fraction of images seen. */
  emaRampupRatio: number;
  /** Dropout probability inside residual blocks (DDPM: 0.1 on CIFAR-10). */
  dropout: number;
  /** Seed of the one generator behind init, batches, steps t and noise. */
  seed: number;
  /** Thousands of images between checkpoints. */
  checkpointKimg: number;
  /** Thousands of images between sample grids. */
  sampleKimg: number;
  /** Steps between metric lines. */
  logEvery: number;
  /** Images in each sample grid. */
  gridImages: number;
  /** Ancestral steps for the sample grids (the chain respaced to this many steps; T: all). */
  gridSteps: number;
  /** Stop after this many minutes of training, saving as at the end (0: no limit). */
  maxMinutes: number;
}

const BASE: Omit<DdpmTrainConfig, "data" | "model"> = {
  T: 1000,
  schedule: "linear",
  loss: "simple",
  variance: "beta",
  batchSize: 64,
  kimg: 200,
  lr: 2e-4,
  lrRampupKimg: 2,
  emaHalfLifeKimg: 5,
  emaRampupRatio: 0.05,
  dropout: 0,
  seed: 0,
  checkpointKimg: 10,
  sampleKimg: 20,
  logEvery: 20,
  gridImages: 64,
  gridSteps: 100,
  maxMinutes: 0,
};

/**
 * Named starting points. `mnist` is the default of `deno task train:ddpm`: sized to finish within
 * 15 minutes on a 2-core machine without libtensorflow.
 *
 * @example Override a preset in a recipe
 * ```ts
 * import { DDPM_PRESETS, type DdpmTrainConfig } from "./ddpm_config.ts";
 * const config: DdpmTrainConfig = { ...DDPM_PRESETS.mnist, loss: "vlb", kimg: 20 };
 * ```
 */
export const DDPM_PRESETS = {
  mnist: {
    ...BASE,
    data: "mnist:train",
    model: "mnist-small",
    kimg: 50,
    lr: 2e-3,
    checkpointKimg: 5,
    sampleKimg: 10,
    gridSteps: 50,
    maxMinutes: 13,
  },
  cifar10: {
    ...BASE,
    data: "cifar10:data/cifar-10-batches-bin",
    model: "cifar10",
    batchSize: 128,
    kimg: 100_000,
    lrRampupKimg: 640,
    emaHalfLifeKimg: 890,
    dropout: 0.1,
    checkpointKimg: 500,
    sampleKimg: 500,
    logEvery: 50,
  },
  toy: {
    ...BASE,
    data: "toy:two-moons",
    model: "mlp",
    batchSize: 256,
    kimg: 500,
    lr: 2e-3,
    lrRampupKimg: 5,
    emaHalfLifeKimg: 10,
    checkpointKimg: 100,
    sampleKimg: 100,
    gridImages: 1000,
  },
} as const satisfies Record<string, DdpmTrainConfig>;

/** Names of {@linkcode DDPM_PRESETS}. */
export type DdpmPresetName = keyof typeof DDPM_PRESETS;

/**
 * Checks a config and returns it, throwing a RangeError naming the field and the fix.
 *
 * @example
 * ```ts
 * import { DDPM_PRESETS, validateDdpmConfig } from "./ddpm_config.ts";
 * validateDdpmConfig({ ...DDPM_PRESETS.mnist });
 * ```
 */
export function validateDdpmConfig(config: DdpmTrainConfig): DdpmTrainConfig {
  validateRunConfig(config);
  if (!Number.isInteger(config.T) || config.T < 2) {
    throw new RangeError(`T must be an integer >= 2, got ${config.T}`);
  }
  if (!Number.isInteger(config.gridSteps) || config.gridSteps > config.T) {
    throw new RangeError(
      `gridSteps must be an integer in 1..T (${config.T}), got ${config.gridSteps}`,
    );
  }
  if (config.loss !== "simple" && config.loss !== "vlb") {
    throw new RangeError(`loss must be "simple" or "vlb", got ${JSON.stringify(config.loss)}`);
  }
  if (config.schedule !== "linear" && config.schedule !== "cosine") {
    throw new RangeError(
      `schedule must be "linear" or "cosine", got ${JSON.stringify(config.schedule)}`,
    );
  }
  if (config.variance !== "beta" && config.variance !== "betaTilde") {
    throw new RangeError(
      `variance must be "beta" or "betaTilde", got ${JSON.stringify(config.variance)}`,
    );
  }
  return config;
}
