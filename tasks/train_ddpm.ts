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
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(DDPM_PRESETS),
    help: "starting configuration",
  },
  ...TRAIN_MODEL_FLAGS,
  loss: { type: "string", choices: ["simple", "vlb"], help: "L_simple (eq. 14) or the bound" },
  schedule: { type: "string", choices: ["linear", "cosine"], help: "beta schedule" },
  T: { type: "int", min: 2, max: 100_000, help: "diffusion steps T" },
  variance: {
    type: "string",
    choices: ["beta", "betaTilde"],
    help: "reverse variance for the bound and the grids",
  },
  ...TRAIN_RUN_FLAGS,
  "grid-steps": {
    type: "int",
    min: 1,
    max: 100_000,
    help: "ancestral steps of the sample grids (<= T)",
  },
  "max-minutes": maxMinutesFlag(DDPM_PRESETS),
  out: { type: "string", path: "file", help: "run directory [default: runs/ddpm-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:ddpm",
  summary: "Trains a DDPM noise predictor (Ho et al. 2020): T steps of a linear or cosine beta\n" +
    "schedule, L_simple or the variational bound (t importance-sampled), Adam with warm-up, EMA.\n" +
    "Writes <out>/checkpoint.safetensors (+ .json), <out>/metrics.jsonl, <out>/samples-*.png\n" +
    "(ancestral sampling) and <out>/loss.svg. Ctrl-C saves and exits; --resume continues.",
  examples: [
    "deno task train:ddpm                                    # MNIST, under 12 min on 2 cores",
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
    ...sharedTrainFields(f, base),
    T: f.T ?? base.T,
    schedule: (f.schedule ?? base.schedule) as DdpmTrainConfig["schedule"],
    loss: (f.loss ?? base.loss) as DdpmTrainConfig["loss"],
    variance: (f.variance ?? base.variance) as DdpmTrainConfig["variance"],
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
    task: "train:ddpm",
    out: f.out ?? `runs/ddpm-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    keep: f.keep,
    train: trainDdpm,
  });
});
