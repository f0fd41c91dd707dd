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
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(EDM_PRESETS),
    help: "starting configuration",
  },
  ...TRAIN_MODEL_FLAGS,
  precond: { type: "string", choices: ["edm", "vp", "ve"], help: "preconditioning and loss" },
  cond: {
    type: "boolean",
    help: "condition on class labels (the mnist preset does for mnist data)",
  },
  "cond-drop": {
    type: "number",
    min: 0,
    max: 0.99,
    help:
      "label dropout probability for classifier-free guidance [default: per preset: mnist 0.1, others 0]",
  },
  ...TRAIN_RUN_FLAGS,
  augment: { type: "number", min: 0, max: 0.99, help: "augmentation probability" },
  "max-minutes": maxMinutesFlag(EDM_PRESETS),
  out: { type: "string", path: "file", help: "run directory [default: runs/edm-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:edm",
  summary: "Trains an EDM denoiser (Karras et al. 2022) with EDM preconditioning and loss,\n" +
    "Adam with warm-up, EMA, and optional non-leaky augmentation. Writes <out>/checkpoint.safetensors\n" +
    "(+ .json), <out>/metrics.jsonl, <out>/samples-*.png and <out>/loss.svg. Ctrl-C saves and exits.",
  examples: [
    "deno task train:edm                                   # MNIST, class-conditional, ~9 min on 2 cores",
    "deno task train:edm --preset mnist-uncond             # MNIST without labels, ~13 min",
    "deno task train:edm --kimg 20 --out runs/quick        # a short run",
    "deno task train:edm --resume --out runs/edm-mnist     # continue an interrupted run",
    "deno task train:edm --preset toy --data toy:swiss-roll --out runs/toy",
    "deno task train:edm --preset cifar10 --data cifar10:/data/cifar-10-batches-bin",
    "deno task train:edm --dry-run --batch 32 --lr 2e-4",
    "deno task train:edm --cond --cond-drop 0.1 --out runs/edm-cfg   # for --guidance sampling",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:edm" });
  const base = EDM_PRESETS[f.preset as keyof typeof EDM_PRESETS];
  // The mnist preset conditions on MNIST's labels; other data is conditional with --cond only.
  const conditional = f.cond ||
    (base.classConditional && (f.data === undefined || f.data.startsWith("mnist")));
  const config: EdmTrainConfig = {
    ...base,
    ...sharedTrainFields(f, base),
    precond: (f.precond ?? base.precond) as EdmTrainConfig["precond"],
    classConditional: conditional,
    augmentP: f.augment ?? base.augmentP,
    condDrop: f["cond-drop"] ?? (conditional ? base.condDrop ?? 0 : 0),
  };
  try {
    validateEdmConfig(config);
  } catch (e) {
    throw new UserError(`train:edm: ${(e as Error).message}`);
  }
  await runTrainTask({
    config,
    task: "train:edm",
    out: f.out ?? `runs/edm-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    keep: f.keep,
    train: trainEdm,
  });
});
