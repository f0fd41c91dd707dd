/**
 * `deno task train:dinof`: trains a DiNof model (shared/papers/dinof.txt): jointly, the score
 * network with DSM on t in (eps, T_m) and a normalizing flow on x(T_m) (`--joint`, the default),
 * or only the flow for a frozen `train:sde` / `train:edm` checkpoint (`--score-checkpoint`).
 * Same run directory, checkpoints, metrics, resume and Ctrl-C as the other trainers. Thin: flags
 * in, `trainDinof` does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import {
  DINOF_FLOW_NAMES,
  DINOF_PRESETS,
  type DinofTrainConfig,
  validateDinofConfig,
} from "../training/dinof_config.ts";
import { trainDinof } from "../training/train_dinof.ts";
import { SCORE_SDE_NAMES, type ScoreSdeName } from "../schedules/score_sde.ts";
import { runTask } from "./_main.ts";
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(DINOF_PRESETS),
    help: "starting configuration",
  },
  tm: { type: "number", gt: 0, max: 1, help: "switch time T_m [default: 0.6, the paper's]" },
  joint: { type: "boolean", help: "train score network and flow together (the default)" },
  "score-checkpoint": {
    type: "string",
    path: "file",
    help: "two-stage: train only the flow for this frozen train:sde / train:edm checkpoint",
  },
  sde: { type: "string", choices: SCORE_SDE_NAMES, help: "the process [default: vp]" },
  flow: { type: "string", choices: DINOF_FLOW_NAMES, help: "flow architecture" },
  w: { type: "number", gt: 0, help: "weight of the flow NLL in DSM + w NLL [default: 1]" },
  clip: { type: "number", min: 0, help: "gradient-norm clip, 0 = off [default: 1]" },
  weighting: {
    type: "string",
    choices: ["sigma2", "likelihood"],
    help: "DSM lambda(t) [default: sigma2]",
  },
  reduce: {
    type: "string",
    choices: ["sum", "mean"],
    help: "DSM per-image reduction [default: mean, score_sde's VP configs]",
  },
  ...TRAIN_MODEL_FLAGS,
  ...TRAIN_RUN_FLAGS,
  "max-minutes": maxMinutesFlag(DINOF_PRESETS),
  out: { type: "string", path: "file", help: "run directory [default: runs/dinof-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:dinof",
  summary: "Trains DiNof (a Glow prior at T_m, then the reverse SDE to the data): jointly,\n" +
    "loss = DSM(t ~ U(eps, T_m)) + w NLL_flow(x(T_m)) with one Adam, warm-up and gradient\n" +
    "clipping, or two-stage: only the flow, for a frozen score checkpoint. Writes\n" +
    "<out>/checkpoint.safetensors (+ .json), <out>/metrics.jsonl (loss, dsm, nll, flowBitsPerDim),\n" +
    "<out>/samples-*.png and <out>/loss.svg; sample with sample:dinof. Ctrl-C saves and exits.",
  examples: [
    "deno task train:dinof                                  # MNIST, joint, T_m 0.6, ~13 min",
    "deno task train:dinof --tm 0.5 --kimg 20 --out runs/dinof-quick",
    "deno task train:dinof --score-checkpoint runs/sde-mnist/checkpoint.safetensors --out runs/flow-only",
    "deno task train:dinof --preset toy --data toy:two-moons --out runs/dinof-toy",
    "deno task train:dinof --resume --out runs/dinof-mnist  # continue an interrupted run",
    "deno task train:dinof --dry-run --w 0.5 --clip 0",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:dinof" });
  if (f.joint && f["score-checkpoint"] !== undefined) {
    throw new UserError(
      "train:dinof: --joint trains the score network, --score-checkpoint freezes one; pass one",
    );
  }
  const base = DINOF_PRESETS[f.preset as keyof typeof DINOF_PRESETS];
  const config: DinofTrainConfig = {
    ...base,
    ...sharedTrainFields(f, base),
    process: (f.sde ?? base.process) as ScoreSdeName,
    sde: {
      weighting: (f.weighting ?? base.sde.weighting) as "sigma2" | "likelihood",
      reduce: (f.reduce ?? base.sde.reduce) as "sum" | "mean",
    },
    tm: f.tm ?? base.tm,
    flow: f.flow ?? base.flow,
    nllWeight: f.w ?? base.nllWeight,
    clipGradNorm: f.clip ?? base.clipGradNorm,
    scoreCheckpoint: f["score-checkpoint"] ?? null,
  };
  try {
    validateDinofConfig(config);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UserError(`train:dinof: ${e.message}`);
  }
  await runTrainTask({
    config,
    task: "train:dinof",
    keep: f.keep,
    out: f.out ?? `runs/dinof-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    train: trainDinof,
  });
});
