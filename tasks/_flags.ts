/**
 * Flag specs that several tasks share, written once so their names, defaults and help agree.
 *
 * @module
 */
import { BACKEND_CHOICES } from "../core/engine.ts";
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

/** `--batch` for sampling and evaluation. */
export const SAMPLE_BATCH_FLAG = {
  type: "int",
  default: 64,
  min: 1,
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
  help: "also write one PNG per image here",
} as const;

/** The dataset and network flags of the training tasks. */
export const TRAIN_MODEL_FLAGS = {
  data: {
    type: "string",
    help: "dataset: mnist[:train|:test] | cifar10:<dir> | png:<dir> | toy:<name>",
  },
  model: {
    type: "string",
    help: "U-Net preset (mnist-medium, mnist-small, cifar10, unet-bench) or mlp",
  },
  channels: { type: "int", min: 1, help: "U-Net base channels (overrides the model preset)" },
  "channel-mult": { type: "list", help: "U-Net channel multipliers per level, e.g. 1,2,2" },
  blocks: { type: "int", min: 1, help: "U-Net residual blocks per level" },
} as const;

/** The run-length, optimizer and cadence flags of the training tasks. */
export const TRAIN_RUN_FLAGS = {
  batch: { type: "int", min: 1, help: "images per step" },
  kimg: { type: "number", gt: 0, help: "training length in thousands of images" },
  lr: { type: "number", gt: 0, help: "Adam learning rate" },
  "lr-rampup": { type: "number", min: 0, help: "learning-rate warm-up in kimg" },
  ema: { type: "number", gt: 0, help: "EMA half-life in kimg" },
  dropout: { type: "number", min: 0, max: 0.99, help: "dropout probability" },
  seed: { type: "int", help: "random seed" },
  "checkpoint-every": { type: "number", gt: 0, help: "kimg between checkpoints" },
  "sample-every": { type: "number", gt: 0, help: "kimg between sample grids" },
  "log-every": { type: "int", min: 1, help: "steps between metric lines" },
  "max-minutes": {
    type: "number",
    min: 0,
    help: "stop (and save) after this many minutes; 0 = off",
  },
} as const;

/** The flags that end every training task's list. */
export const TRAIN_END_FLAGS = {
  resume: { type: "boolean", help: "continue from the run directory's checkpoint" },
  backend: BACKEND_FLAG,
  "dry-run": { type: "boolean", help: "print the resolved options and exit" },
} as const;

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
  "n-steps-each": { type: "int", default: 1, min: 1, help: "corrector steps per noise level" },
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
