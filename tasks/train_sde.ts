/**
 * `deno task train:sde`: trains a score-SDE model (Song et al. 2021: VE, VP or sub-VP SDE,
 * continuous denoising score matching with sigma^2 or likelihood weighting) through the EDM
 * training loop (`trainEdm` with `config.sde`): same checkpoints, metrics, sample grids, resume
 * and bad-input behaviour as `train:edm`. Thin: flags in, `trainEdm` does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { EDM_PRESETS, type EdmTrainConfig, validateEdmConfig } from "../training/edm_config.ts";
import { objectiveFor } from "../training/objective.ts";
import { trainEdm } from "../training/train_edm.ts";
import { SCORE_SDE_NAMES, type ScoreSdeName } from "../schedules/score_sde.ts";
import { runTask } from "./_main.ts";
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

// train:edm's presets, but score SDEs train unconditional models: MNIST is the unconditional recipe.
const SDE_PRESETS = { ...EDM_PRESETS, mnist: EDM_PRESETS["mnist-uncond"] };

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(SDE_PRESETS),
    help: "starting configuration (the train:edm presets)",
  },
  sde: { type: "string", default: "vp", choices: SCORE_SDE_NAMES, help: "the SDE" },
  weighting: {
    type: "string",
    default: "sigma2",
    choices: ["sigma2", "likelihood"],
    help: "lambda(t): sigma^2 (score SDE paper) or g^2 (likelihood weighting)",
  },
  importance: {
    type: "boolean",
    help: "sample t with density g^2 / sigma^2 (needs --weighting likelihood)",
  },
  eps: { type: "number", default: 1e-5, gt: 0, help: "smallest training time" },
  "t-max": { type: "number", default: 1, gt: 0, max: 1, help: "largest training time" },
  reduce: {
    type: "string",
    default: "sum",
    choices: ["sum", "mean"],
    help: "per-image reduction: 0.5 * sum (score_sde) or mean",
  },
  ...TRAIN_MODEL_FLAGS,
  cond: { type: "boolean", help: "condition on class labels" },
  ...TRAIN_RUN_FLAGS,
  augment: { type: "number", min: 0, max: 0.99, help: "augmentation probability" },
  "max-minutes": maxMinutesFlag(SDE_PRESETS),
  out: { type: "string", path: "file", help: "run directory [default: runs/sde-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:sde",
  summary: "Trains a score-based model on a VE, VP or sub-VP SDE (Song et al. 2021) with the\n" +
    "continuous DSM loss, t ~ U(eps, t-max), sigma^2 or likelihood weighting (score_sde's\n" +
    "defaults: VE sigma 0.01..50, VP/sub-VP beta 0.1..20, eps 1e-5). Writes\n" +
    "<out>/checkpoint.safetensors (+ .json), <out>/metrics.jsonl, <out>/samples-*.png and\n" +
    "<out>/loss.svg; sample with sample:sde, score with eval. Ctrl-C saves and exits.",
  examples: [
    "deno task train:sde --sde vp                           # MNIST, ~13 min on 2 cores",
    "deno task train:sde --sde subvp --out runs/subvp-mnist",
    "deno task train:sde --sde ve --kimg 20 --out runs/ve-quick",
    "deno task train:sde --weighting likelihood --importance --out runs/vp-ll",
    "deno task train:sde --resume --out runs/sde-mnist      # continue an interrupted run",
    "deno task train:sde --dry-run --sde subvp --t-max 0.5",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:sde" });
  const base = SDE_PRESETS[f.preset as keyof typeof SDE_PRESETS];
  const config: EdmTrainConfig = {
    ...base,
    ...sharedTrainFields(f, base),
    precond: f.sde as ScoreSdeName,
    sde: {
      weighting: f.weighting as "sigma2" | "likelihood",
      importance: f.importance ?? false,
      eps: f.eps!,
      tMax: f["t-max"]!,
      reduce: f.reduce as "sum" | "mean",
    },
    classConditional: f.cond || base.classConditional,
    augmentP: f.augment ?? base.augmentP,
  };
  try {
    validateEdmConfig(config);
    objectiveFor(config.precond, config.sde);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UserError(`train:sde: ${e.message}`);
  }
  await runTrainTask({
    config,
    task: "train:sde",
    out: f.out ?? `runs/sde-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    keep: f.keep,
    train: trainEdm,
  });
});
