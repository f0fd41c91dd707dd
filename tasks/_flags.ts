/**
 * Flag specs that several tasks share, written once so their names, defaults and help agree.
 *
 * @module
 */
import { BACKEND_CHOICES } from "../core/engine.ts";
import { SHARD_MODES } from "../core/shards.ts";
import { CORRECTOR_NAMES } from "../samplers/sde_correctors.ts";
import { PREDICTOR_NAMES } from "../samplers/sde_predictors.ts";

/** `--backend`: the tfjs backend, overriding `DIFFUSE_BACKEND`. */
export const BACKEND_FLAG = {
  type: "string",
  choices: BACKEND_CHOICES,
  help: "tfjs backend (env DIFFUSE_BACKEND)",
} as const;

/** `--seeds`: one image per seed. */
export const SEEDS_FLAG = {
  type: "string",
  default: "0-63",
  help: "seeds, one image each: 0-63 or 1,5,9",
} as const;

/**
 * The largest batch the tasks accept: beyond it a U-Net's activations outgrow the wasm backend's
 * 4 GB heap (`--batch 20000` aborted inside wasm after a minute).
 */
export const MAX_BATCH = 1024;

/** `--batch` for sampling and evaluation. */
export const SAMPLE_BATCH_FLAG = {
  type: "int",
  default: 64,
  min: 1,
  max: MAX_BATCH,
  help: "images per batch",
} as const;

/** `--weights`: EMA or raw weights of a checkpoint. */
export const WEIGHTS_FLAG = {
  type: "string",
  default: "ema",
  choices: ["ema", "raw"],
  help: "which weights",
} as const;

/** `--images-dir`: one PNG per image, named after its seed. */
export const IMAGES_DIR_FLAG = {
  type: "string",
  path: "file",
  help: "also write one PNG per image here",
} as const;

/** `--resume` of the sampling tasks: skip seeds whose PNG is already in `--images-dir`. */
export const SAMPLE_RESUME_FLAG = {
  type: "boolean",
  help: "skip seeds whose PNG is already in --images-dir (continue an interrupted run)",
} as const;

/** `--checkpoint` of the tasks and recipes that read a train:edm checkpoint. */
export const EDM_CHECKPOINT_FLAG = {
  type: "string",
  default: "runs/edm-mnist/checkpoint.safetensors",
  path: "file",
  help: "checkpoint written by train:edm or train:ddpm",
} as const;

/** `--partial-grid` of the sampling tasks: watch the grid fill. */
export const PARTIAL_GRID_FLAG = {
  type: "boolean",
  help: "rewrite the grid after every batch with the images done so far",
} as const;

/** `--out` of the sampling tasks: the grid. */
export const SAMPLE_OUT_FLAG = {
  type: "string",
  path: "file",
  default: "samples.png",
  help: "grid PNG (SVG scatter for 2-D data)",
} as const;

/**
 * `--shard i/n` and `--shard-mode` of the sampling tasks and `eval` (core/shards.ts): run one
 * slice of the seeds; without `--shard` the index comes from the scheduler's environment
 * (`JOB_COMPLETION_INDEX` + `DIFFUSE_SHARD_COUNT`, or `SLURM_ARRAY_TASK_ID`).
 */
export const SHARD_FLAGS = {
  shard: {
    type: "string",
    help: "run shard i of n (0-based), e.g. 0/4 [default: JOB_COMPLETION_INDEX or " +
      "SLURM_ARRAY_TASK_ID when set, else all seeds]",
  },
  "shard-mode": {
    type: "string",
    default: "contiguous",
    choices: SHARD_MODES,
    help: "how seeds are dealt to shards",
  },
} as const;

/** The output flags every sampling task has besides `--out` (and the shard flags). */
export const SAMPLE_FILE_FLAGS = {
  "images-dir": IMAGES_DIR_FLAG,
  resume: SAMPLE_RESUME_FLAG,
  "partial-grid": PARTIAL_GRID_FLAG,
  ...SHARD_FLAGS,
} as const;

/** The dataset and network flags of the training tasks. */
export const TRAIN_MODEL_FLAGS = {
  data: {
    type: "string",
    path: "dataset",
    help: "dataset: mnist[:train|:test] | cifar10:<dir> | png:<dir> | toy:<name>",
  },
  model: {
    type: "string",
    help: "U-Net preset (mnist-medium, mnist-small, cifar10, unet-bench) or mlp",
  },
  channels: {
    type: "int",
    min: 1,
    max: 4096,
    help: "U-Net base channels (overrides the model preset)",
  },
  "channel-mult": {
    type: "list",
    integer: true,
    min: 1,
    max: 64,
    help: "U-Net channel multipliers per level, e.g. 1,2,2",
  },
  blocks: { type: "int", min: 1, max: 64, help: "U-Net residual blocks per level" },
} as const;

/** The run-length, optimizer and cadence flags of the training tasks. */
export const TRAIN_RUN_FLAGS = {
  batch: { type: "int", min: 1, max: MAX_BATCH, help: "images per step" },
  kimg: { type: "number", gt: 0, help: "training length in thousands of images" },
  lr: { type: "number", gt: 0, help: "Adam learning rate" },
  "lr-rampup": { type: "number", min: 0, help: "learning-rate warm-up in kimg" },
  "lr-decay": {
    type: "number",
    min: 0,
    help: "linear learning-rate decay to 0 over the last this many kimg (0: constant)",
  },
  ema: { type: "number", gt: 0, help: "EMA half-life in kimg" },
  dropout: { type: "number", min: 0, max: 0.99, help: "dropout probability" },
  seed: { type: "int", help: "random seed" },
  "checkpoint-every": { type: "number", gt: 0, help: "kimg between checkpoints" },
  "sample-every": { type: "number", gt: 0, help: "kimg between sample grids" },
  "log-every": { type: "int", min: 1, help: "steps between metric lines" },
  "max-minutes": {
    type: "number",
    min: 0,
    help: "time guard: stop (and save) after this many minutes, even before --kimg; 0 = off " +
      "[default: the preset's, see --dry-run]",
  },
} as const;

/** The flags that end every training task's list. */
export const TRAIN_END_FLAGS = {
  resume: {
    type: "boolean",
    help:
      "continue from the run directory's checkpoint (after a divergence: the newest healthy one)",
  },
  keep: {
    type: "int",
    default: 3,
    min: 1,
    max: 1000,
    help: "checkpoint versions kept (checkpoint-<step>.safetensors) besides the newest healthy one",
  },
  backend: BACKEND_FLAG,
  "dry-run": { type: "boolean", help: "print the resolved options and exit" },
} as const;

/**
 * One preset field's value per preset, for `--help`: `"mnist 13, toy 0"`.
 *
 * @example
 * ```ts
 * import { presetDefaults } from "./_flags.ts";
 * const text = presetDefaults({ mnist: { maxMinutes: 13 }, toy: { maxMinutes: 0 } }, "maxMinutes");
 * console.assert(text === "mnist 13, toy 0");
 * ```
 */
export function presetDefaults<K extends string>(
  presets: Record<string, Record<K, unknown>>,
  key: K,
): string {
  return Object.entries(presets).map(([name, p]) => `${name} ${p[key]}`).join(", ");
}

/** The predictor-corrector and probability-flow ODE flags of the score-SDE sampling tasks. */
export const PC_SAMPLER_FLAGS = {
  predictor: {
    type: "string",
    default: "reverse_diffusion",
    choices: PREDICTOR_NAMES,
    help: "PC predictor",
  },
  corrector: {
    type: "string",
    default: "langevin",
    choices: CORRECTOR_NAMES,
    help: "PC corrector",
  },
  snr: { type: "number", default: 0.16, gt: 0, help: "Langevin signal-to-noise ratio" },
  "n-steps-each": {
    type: "int",
    default: 1,
    min: 1,
    max: 100,
    help: "corrector steps per noise level",
  },
  ode: { type: "boolean", help: "probability-flow ODE (RK45) instead of the PC sampler" },
  rtol: { type: "number", default: 1e-5, gt: 0, help: "ODE relative tolerance" },
  atol: { type: "number", default: 1e-5, gt: 0, help: "ODE absolute tolerance" },
  eps: { type: "number", gt: 0, help: "end time [default: 1e-5 VE, 1e-3 VP / sub-VP]" },
  denoise: {
    type: "boolean",
    default: true,
    help: "return the last step's mean (score_sde's noise_removal); --no-denoise keeps the noise",
  },
} as const;

/**
 * `--max-minutes` of a training task, its help naming each preset's default time guard.
 *
 * @param presets The task's presets (each with `maxMinutes`).
 * @returns The flag spec.
 * @example
 * ```ts
 * import { maxMinutesFlag } from "./_flags.ts";
 * const flag = maxMinutesFlag({ mnist: { maxMinutes: 13 }, toy: { maxMinutes: 0 } });
 * console.assert(flag.help.endsWith("[default: per preset: mnist 13, toy 0]"));
 * ```
 */
export function maxMinutesFlag(
  presets: Record<string, { maxMinutes: number }>,
): { type: "number"; min: 0; help: string } {
  return {
    ...TRAIN_RUN_FLAGS["max-minutes"],
    help: "time guard: stop (and save) after this many minutes, even before --kimg; 0 = off " +
      `[default: per preset: ${presetDefaults(presets, "maxMinutes")}]`,
  };
}
