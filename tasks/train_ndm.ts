/**
 * `deno task train:ndm`: trains a Neural Diffusion Model (NDM paper, Algorithm 1): a noise
 * predictor and a learned transformation F_phi(x, t) together on the NELBO (eq. 9, or eq. 11
 * with `--continuous`), or with `--transform identity` the paper's DDPM baseline on the same
 * objective. Thin: flags in, `trainNdm` does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { NDM_PRESETS, type NdmTrainConfig, validateNdmConfig } from "../training/ndm_config.ts";
import { trainNdm } from "../training/train_ndm.ts";
import { runTask } from "./_main.ts";
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(NDM_PRESETS),
    help: "starting configuration",
  },
  ...TRAIN_MODEL_FLAGS,
  transform: {
    type: "string",
    choices: ["learned", "identity"],
    help: "F: the learned F_phi, or the identity (DDPM on the same objective)",
  },
  "transform-model": { type: "string", help: "U-Net preset (or mlp) of F_phi [default: --model]" },
  loss: {
    type: "string",
    default: "nelbo",
    choices: ["nelbo", "simple"],
    help: "the full NELBO (eq. 9); simple is refused, see --help",
  },
  continuous: { type: "boolean", help: "continuous-time objective (eq. 11, t ~ 1/g^2)" },
  T: { type: "int", min: 2, max: 100_000, help: "diffusion steps T of the process" },
  steps: {
    type: "int",
    min: 2,
    max: 100_000,
    help: "train on the T-step process respaced to this many steps [default: T]",
  },
  schedule: { type: "string", choices: ["linear", "cosine"], help: "beta schedule" },
  eta: {
    type: "number",
    gt: 0,
    max: 1,
    help: "posterior noise: sigmaTilde^2 = eta^2 betaTilde (1: DDPM's)",
  },
  ...TRAIN_RUN_FLAGS,
  "max-minutes": maxMinutesFlag(NDM_PRESETS),
  "grid-steps": {
    type: "int",
    min: 1,
    max: 100_000,
    help: "Algorithm 2 steps of the sample grids (<= T)",
  },
  out: { type: "string", path: "file", help: "run directory [default: runs/ndm-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:ndm",
  summary:
    "Trains a Neural Diffusion Model: eps_theta and F_phi(x, t) = x + t NN_phi(x, t), two\n" +
    "U-Nets in one run, on the NELBO in bits/dim (the logged loss). --transform identity trains\n" +
    "the DDPM baseline with the same objective. L_simple is not offered: it ignores F and lets a\n" +
    "learned F collapse to 0 (NDM Section 6). Writes <out>/checkpoint.safetensors (+ .json),\n" +
    "metrics.jsonl, samples-*.png (Algorithm 2) and loss.svg. Ctrl-C saves; --resume continues.",
  examples: [
    "deno task train:ndm                                       # MNIST, 13 min on 2 cores",
    "deno task train:ndm --transform identity --out runs/ndm-ddpm   # the DDPM baseline",
    "deno task train:ndm --steps 10 --out runs/ndm-t10         # Table 4's 10-step model",
    "deno task train:ndm --continuous --out runs/ndm-cont      # eq. 11",
    "deno task train:ndm --preset toy --out runs/ndm-checkerboard",
    "deno task train:ndm --dry-run --kimg 5",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:ndm" });
  if (f.loss === "simple") {
    throw new UserError(
      "train:ndm: --loss simple is not offered: L_simple ignores F, and a learned F collapses " +
        "to 0 under it (NDM Section 6); use the default --loss nelbo, or train:ddpm for DDPM's L_simple",
    );
  }
  const base: NdmTrainConfig = NDM_PRESETS[f.preset as keyof typeof NDM_PRESETS];
  const config: NdmTrainConfig = {
    ...base,
    ...sharedTrainFields(f, base),
    T: f.T ?? base.T,
    schedule: (f.schedule ?? base.schedule) as NdmTrainConfig["schedule"],
    transform: (f.transform ?? base.transform) as NdmTrainConfig["transform"],
    transformModel: f["transform-model"],
    continuous: f.continuous ?? base.continuous,
    eta: f.eta ?? base.eta,
    ...(f.steps !== undefined ? { steps: f.steps } : {}),
  };
  config.gridSteps = f["grid-steps"] ?? Math.min(base.gridSteps, config.steps ?? config.T);
  try {
    validateNdmConfig(config);
  } catch (e) {
    throw new UserError(`train:ndm: ${(e as Error).message}`);
  }
  await runTrainTask({
    config,
    task: "train:ndm",
    out: f.out ?? `runs/ndm-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    keep: f.keep,
    train: trainNdm,
  });
});
