/**
 * Typed training configurations for EDM (EDM Section 5 and Appendix F.1; NVlabs/edm `train.py`
 * options), with presets as typed constants: spread one to override (`{ ...EDM_PRESETS.mnist,
 * batchSize: 32 }`), `satisfies` catches typos.
 *
 * @module
 */
import { validateRunConfig } from "./run_config.ts";
import type { SdeObjectiveOptions } from "./objective.ts";

/** The preconditioning and loss of EDM Table 1 to train with ("subvp": the sub-VP score SDE). */
export type PrecondKind = "edm" | "vp" | "ve" | "subvp";

/** Everything a training run needs; stored in every checkpoint. */
export interface EdmTrainConfig {
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
  /** Preconditioning and loss (EDM Table 1). */
  precond: PrecondKind;
  /** Train the score SDE of `precond` (ve, vp, subvp) with this loss instead (`train:sde`). */
  sde?: SdeObjectiveOptions;
  /** Condition on class labels when the dataset has them. */
  classConditional: boolean;
  /**
   * Label dropout for classifier-free guidance (Ho & Salimans 2022): the probability that a
   * training image's one-hot label is replaced by all zeros, the "no class" input the guided
   * denoiser uses for its unconditional branch. Only with `classConditional`. @default 0
   */
  condDrop?: number;
  /** Images per training step. */
  batchSize: number;
  /** Training length in thousands of images (EDM's `--duration` is in Mimg). */
  kimg: number;
  /** Adam learning rate. */
  lr: number;
  /** Learning-rate warm-up length in thousands of images (EDM: 10 Mimg). */
  lrRampupKimg: number;
  /**
   * Linear learning-rate decay to 0 over the last this many kimg (not in EDM, whose runs are
   * long enough to end at the peak rate). @default 0
   */
  lrDecayKimg?: number;
  /** EMA half-life in thousands of images (EDM: 500 kimg). */
  emaHalfLifeKimg: number;
  /** EMA ramp-up ratio: half-life at most this fraction of images seen (EDM: 0.05). */
  emaRampupRatio: number;
  /** Probability of each non-leaky augmentation (0 turns augmentation off). */
  augmentP: number;
  /** Dropout probability inside residual blocks. */
  dropout: number;
  /** Seed of the one generator behind init, batches, sigmas, noise and augmentation. */
  seed: number;
  /** Thousands of images between checkpoints. */
  checkpointKimg: number;
  /** Thousands of images between sample grids. */
  sampleKimg: number;
  /** Steps between metric lines. */
  logEvery: number;
  /** Images in each sample grid. */
  gridImages: number;
  /** Heun steps for the sample grids (2N-1 network evaluations). */
  gridSteps: number;
  /** Stop after this many minutes of training, saving as at the end (0: no limit). */
  maxMinutes: number;
}

const BASE: Omit<EdmTrainConfig, "data" | "model"> = {
  precond: "edm",
  classConditional: false,
  batchSize: 64,
  kimg: 200,
  lr: 1e-3,
  lrRampupKimg: 2,
  emaHalfLifeKimg: 5,
  emaRampupRatio: 0.05,
  augmentP: 0,
  dropout: 0,
  seed: 0,
  checkpointKimg: 10,
  sampleKimg: 20,
  logEvery: 20,
  gridImages: 64,
  gridSteps: 18,
  maxMinutes: 0,
};

/**
 * Named starting points. `mnist` is the default of `deno task train:edm`, chosen by measurement
 * (`recipes/default_sweep.ts`, 2026-12-07, 1000 Heun samples against the held-out `mnist:test`
 * digits, classifier features): of the candidates trained for the same 9 minutes on 2 cores, the
 * class-conditional `mnist-small` at batch 128 was best (FD 18.45, against 34.87 unconditional and
 * 40.16 for the previous default); for the same 120 kimg, a linear learning-rate decay over the
 * last 60 kimg without label dropout then gave FD 17.58 / 16.50 (two sample seeds) against
 * 20.96 / 21.94 with 10 % label dropout and a constant rate. 120 kimg take about 9 minutes there,
 * inside the 12-minute guard. Train with `--cond-drop 0.1` for a model that also samples with
 * classifier-free guidance. `mnist-uncond` is the unconditional recipe (the default until then;
 * `train:sde` starts from it: its score SDEs are unconditional).
 *
 * @example Override a preset in a recipe
 * ```ts
 * import { EDM_PRESETS, type EdmTrainConfig } from "./edm_config.ts";
 * const config: EdmTrainConfig = { ...EDM_PRESETS.mnist, kimg: 50 };
 * ```
 */
export const EDM_PRESETS = {
  mnist: {
    ...BASE,
    data: "mnist:train",
    model: "mnist-small",
    classConditional: true,
    batchSize: 128,
    kimg: 120,
    lr: 2e-3,
    lrDecayKimg: 60,
    checkpointKimg: 10,
    sampleKimg: 20,
    maxMinutes: 12,
  },
  "mnist-uncond": {
    ...BASE,
    data: "mnist:train",
    model: "mnist-small",
    kimg: 180,
    lr: 2e-3,
    checkpointKimg: 10,
    sampleKimg: 20,
    maxMinutes: 13,
  },
  cifar10: {
    ...BASE,
    data: "cifar10:data/cifar-10-batches-bin",
    model: "cifar10",
    batchSize: 128,
    kimg: 200_000,
    lr: 1e-3,
    lrRampupKimg: 10_000,
    emaHalfLifeKimg: 500,
    augmentP: 0.12,
    dropout: 0.13,
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
    gridSteps: 32,
  },
} as const satisfies Record<string, EdmTrainConfig>;

/** Names of {@linkcode EDM_PRESETS}. */
export type EdmPresetName = keyof typeof EDM_PRESETS;

/**
 * Checks a config and returns it, throwing a RangeError naming the field and the fix.
 *
 * @example
 * ```ts
 * import { EDM_PRESETS, validateEdmConfig } from "./edm_config.ts";
 * validateEdmConfig({ ...EDM_PRESETS.mnist });
 * ```
 */
export function validateEdmConfig(config: EdmTrainConfig): EdmTrainConfig {
  validateRunConfig(config);
  if (!(config.augmentP >= 0 && config.augmentP < 1)) {
    throw new RangeError(`augmentP must be in [0, 1), got ${config.augmentP}`);
  }
  const condDrop = config.condDrop ?? 0;
  if (!(condDrop >= 0 && condDrop < 1)) {
    throw new RangeError(`condDrop must be in [0, 1), got ${condDrop}`);
  }
  if (condDrop > 0 && !config.classConditional) {
    throw new RangeError(`condDrop = ${condDrop} needs a class-conditional run (--cond)`);
  }
  return config;
}
