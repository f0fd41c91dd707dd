/**
 * `deno task train:ddpm`: trains a DDPM eps predictor (Ho et al. 2020, Algorithm 1) with
 * `L_simple` (eq. 14) or the variational bound (eq. 5, importance-sampled t), and writes
 * checkpoints, JSON-lines metrics and ancestral sample grids into a run directory. Thin: flags
 * in, `trainDdpm` does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { DDPM_PRESETS, type DdpmTrainConfig, validateDdpmConfig } from "../training/ddpm_config.ts";
import { trainDdpm } from "../training/train_ddpm.ts";
import { runTask } from "./_main.ts";
import { runTrainTask } from "./_train_run.ts";
import { BACKEND_FLAG } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(DDPM_PRESETS),
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
  loss: { type: "string", choices: ["simple", "vlb"], help: "L_simple (eq. 14) or the bound" },
  schedule: { type: "string", choices: ["linear", "cosine"], help: "beta schedule" },
  T: { type: "int", min: 2, help: "diffusion steps T" },
  variance: {
    type: "string",
    choices: ["beta", "betaTilde"],
    help: "reverse variance for the bound and the grids",
  },
  batch: { type: "int", min: 1, help: "images per step" },
  kimg: { type: "number", gt: 0, help: "training length in thousands of images" },
  lr: { type: "number", gt: 0, help: "Adam learning rate" },
  "lr-rampup": { type: "number", min: 0, help: "learning-rate warm-up in kimg" },
  ema: { type: "number", gt: 0, help: "EMA half-life in kimg" },
  dropout: { type: "number", min: 0, max: 0.99, help: "dropout probability" },
  seed: { type: "int", help: "random seed" },
  "checkpoint-every": { type: "number", gt: 0, help: "kimg between checkpoints" },
  "sample-every": { type: "number", gt: 0, help: "kimg between sample grids" },
  "grid-steps": { type: "int", min: 1, help: "ancestral steps of the sample grids (<= T)" },
  "log-every": { type: "int", min: 1, help: "steps between metric lines" },
  "max-minutes": {
    type: "number",
    min: 0,
    help: "stop (and save) after this many minutes; 0 = off",
  },
  out: { type: "string", default: "runs/ddpm-mnist", help: "run directory" },
  resume: { type: "boolean", help: "continue from the run directory's checkpoint" },
  backend: BACKEND_FLAG,
  "dry-run": { type: "boolean", help: "print the resolved options and exit" },
} as const;

const HELP = {
  task: "train:ddpm",
  summary: "Trains a DDPM noise predictor (Ho et al. 2020): T steps of a linear or cosine beta\n" +
    "schedule, L_simple or the variational bound (t importance-sampled), Adam with warm-up, EMA.\n" +
    "Writes <out>/checkpoint.safetensors (+ .json), <out>/metrics.jsonl, <out>/samples-*.png\n" +
    "(ancestral sampling) and <out>/loss.svg. Ctrl-C saves and exits; --resume continues.",
  examples: [
    "deno task train:ddpm                                    # MNIST, ~11 min on 2 cores",
    "deno task train:ddpm --loss vlb --out runs/ddpm-vlb     # train on the true bound",
    "deno task train:ddpm --schedule cosine --T 500 --kimg 20 --out runs/quick",
    "deno task train:ddpm --resume --out runs/ddpm-mnist     # continue an interrupted run",
    "deno task train:ddpm --preset toy --data toy:swiss-roll --out runs/ddpm-toy",
    "deno task train:ddpm --dry-run --batch 32 --lr 2e-4",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:ddpm" });
  const base: DdpmTrainConfig = DDPM_PRESETS[f.preset as keyof typeof DDPM_PRESETS];
  const config: DdpmTrainConfig = {
    ...base,
    data: f.data ?? base.data,
    model: f.model ?? base.model,
    channels: f.channels,
    channelMult: f["channel-mult"],
    numBlocks: f.blocks,
    T: f.T ?? base.T,
    schedule: (f.schedule ?? base.schedule) as DdpmTrainConfig["schedule"],
    loss: (f.loss ?? base.loss) as DdpmTrainConfig["loss"],
    variance: (f.variance ?? base.variance) as DdpmTrainConfig["variance"],
    batchSize: f.batch ?? base.batchSize,
    kimg: f.kimg ?? base.kimg,
    lr: f.lr ?? base.lr,
    lrRampupKimg: f["lr-rampup"] ?? base.lrRampupKimg,
    emaHalfLifeKimg: f.ema ?? base.emaHalfLifeKimg,
    dropout: f.dropout ?? base.dropout,
    seed: f.seed ?? base.seed,
    checkpointKimg: f["checkpoint-every"] ?? base.checkpointKimg,
    sampleKimg: f["sample-every"] ?? base.sampleKimg,
    logEvery: f["log-every"] ?? base.logEvery,
    maxMinutes: f["max-minutes"] ?? base.maxMinutes,
  };
  // The grids cannot have more steps than the chain: follow a smaller --T unless asked.
  config.gridSteps = f["grid-steps"] ?? Math.min(base.gridSteps, config.T);
  try {
    validateDdpmConfig(config);
  } catch (e) {
    throw new UserError(`train:ddpm: ${(e as Error).message}`);
  }
  await runTrainTask({
    config,
    out: f.out!,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    train: trainDdpm,
  });
});
