/**
 * `deno task train:edm`: trains an EDM model (EDM Section 5) and writes checkpoints, JSON-lines
 * metrics and sample grids into a run directory. Thin: flags in, `trainEdm` does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { EDM_PRESETS, type EdmTrainConfig, validateEdmConfig } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";
import { runTask } from "./_main.ts";
import { runTrainTask } from "./_train_run.ts";
import { BACKEND_FLAG } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(EDM_PRESETS),
    help: "starting configuration",
  },
  data: { type: "string", help: "dataset: mnist | cifar10:<dir> | png:<dir> | toy:<name>" },
  model: {
    type: "string",
    help: "U-Net preset (mnist-medium, mnist-small, cifar10, unet-bench) or mlp",
  },
  channels: { type: "int", min: 1, help: "U-Net base channels (overrides the model preset)" },
  "channel-mult": { type: "list", help: "U-Net channel multipliers per level, e.g. 1,2,2" },
  blocks: { type: "int", min: 1, help: "U-Net residual blocks per level" },
  precond: { type: "string", choices: ["edm", "vp", "ve"], help: "preconditioning and loss" },
  cond: { type: "boolean", help: "condition on class labels" },
  batch: { type: "int", min: 1, help: "images per step" },
  kimg: { type: "number", gt: 0, help: "training length in thousands of images" },
  lr: { type: "number", gt: 0, help: "Adam learning rate" },
  "lr-rampup": { type: "number", min: 0, help: "learning-rate warm-up in kimg" },
  "ema": { type: "number", gt: 0, help: "EMA half-life in kimg" },
  augment: { type: "number", min: 0, max: 0.99, help: "augmentation probability" },
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
  out: { type: "string", default: "runs/edm-mnist", help: "run directory" },
  resume: { type: "boolean", help: "continue from the run directory's checkpoint" },
  backend: BACKEND_FLAG,
  "dry-run": { type: "boolean", help: "print the resolved options and exit" },
} as const;

const HELP = {
  task: "train:edm",
  summary: "Trains an EDM denoiser (Karras et al. 2022) with EDM preconditioning and loss,\n" +
    "Adam with warm-up, EMA, and optional non-leaky augmentation. Writes <out>/checkpoint.safetensors\n" +
    "(+ .json), <out>/metrics.jsonl, <out>/samples-*.png and <out>/loss.svg. Ctrl-C saves and exits.",
  examples: [
    "deno task train:edm                                   # MNIST, ~10 min on 2 cores",
    "deno task train:edm --kimg 20 --out runs/quick        # a short run",
    "deno task train:edm --resume --out runs/edm-mnist     # continue an interrupted run",
    "deno task train:edm --preset toy --data toy:swiss-roll --out runs/toy",
    "deno task train:edm --preset cifar10 --data cifar10:/data/cifar-10-batches-bin",
    "deno task train:edm --dry-run --batch 32 --lr 2e-4",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:edm" });
  const base = EDM_PRESETS[f.preset as keyof typeof EDM_PRESETS];
  const config: EdmTrainConfig = {
    ...base,
    data: f.data ?? base.data,
    model: f.model ?? base.model,
    channels: f.channels,
    channelMult: f["channel-mult"],
    numBlocks: f.blocks,
    precond: (f.precond ?? base.precond) as EdmTrainConfig["precond"],
    classConditional: f.cond || base.classConditional,
    batchSize: f.batch ?? base.batchSize,
    kimg: f.kimg ?? base.kimg,
    lr: f.lr ?? base.lr,
    lrRampupKimg: f["lr-rampup"] ?? base.lrRampupKimg,
    emaHalfLifeKimg: f.ema ?? base.emaHalfLifeKimg,
    augmentP: f.augment ?? base.augmentP,
    dropout: f.dropout ?? base.dropout,
    seed: f.seed ?? base.seed,
    checkpointKimg: f["checkpoint-every"] ?? base.checkpointKimg,
    sampleKimg: f["sample-every"] ?? base.sampleKimg,
    logEvery: f["log-every"] ?? base.logEvery,
    maxMinutes: f["max-minutes"] ?? base.maxMinutes,
  };
  try {
    validateEdmConfig(config);
  } catch (e) {
    throw new UserError(`train:edm: ${(e as Error).message}`);
  }
  await runTrainTask({
    config,
    out: f.out!,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    train: trainEdm,
  });
});
