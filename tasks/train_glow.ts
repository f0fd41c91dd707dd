/**
 * `deno task train:glow`: trains a Glow (Kingma & Dhariwal 2018) or RealNVP (Dinh et al. 2017)
 * normalizing flow by maximum likelihood and writes checkpoints, JSON-lines metrics (bits/dim)
 * and sample grids at several temperatures into a run directory. Thin: flags in, `trainFlow`
 * does the work.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { FLOW_ARCHS, type FlowArch } from "../flows/presets.ts";
import {
  FLOW_TRAIN_PRESETS,
  type FlowTrainConfig,
  validateFlowConfig,
} from "../training/flow_config.ts";
import { trainFlow } from "../training/train_flow.ts";
import { runTask } from "./_main.ts";
import { runTrainTask, sharedTrainFields } from "./_train_run.ts";
import { maxMinutesFlag, TRAIN_END_FLAGS, TRAIN_MODEL_FLAGS, TRAIN_RUN_FLAGS } from "./_flags.ts";

const { dropout: _dropout, ...RUN_FLAGS } = TRAIN_RUN_FLAGS;

const FLAGS = {
  preset: {
    type: "string",
    default: "mnist",
    choices: Object.keys(FLOW_TRAIN_PRESETS),
    help: "starting configuration",
  },
  data: TRAIN_MODEL_FLAGS.data,
  model: {
    type: "string",
    choices: ["glow", "realnvp"],
    help: "flow family (default: the preset's)",
  },
  levels: { type: "int", min: 1, max: 16, help: "levels L (multiscale)" },
  steps: { type: "int", min: 1, max: 256, help: "Glow steps of flow K per level" },
  hidden: {
    type: "int",
    min: 1,
    max: 4096,
    help: "hidden channels of the coupling networks",
  },
  coupling: { type: "string", choices: ["affine", "additive"], help: "Glow coupling kind" },
  permutation: { type: "string", choices: ["lu", "plain"], help: "Glow 1x1 convolution form" },
  ...RUN_FLAGS,
  "max-minutes": maxMinutesFlag(FLOW_TRAIN_PRESETS),
  clip: { type: "number", min: 0, help: "gradient-norm clip (0 = off)" },
  "n-bits": { type: "int", min: 1, max: 8, help: "bits per pixel of the data (Glow's n_bits_x)" },
  out: { type: "string", path: "file", help: "run directory [default: runs/glow-<preset>]" },
  ...TRAIN_END_FLAGS,
} as const;

const HELP = {
  task: "train:glow",
  summary:
    "Trains a normalizing flow (Glow or RealNVP) by maximum likelihood on dequantized images\n" +
    "(bits/dim) or 2-D points, with ActNorm data-dependent init, Adam with warm-up, gradient\n" +
    "clipping and EMA. Writes <out>/checkpoint.safetensors (+ .json), <out>/metrics.jsonl (loss =\n" +
    "training bits/dim), <out>/samples-*.png (one block per temperature) and <out>/loss.svg.\n" +
    "Ctrl-C saves and exits.",
  examples: [
    "deno task train:glow                                  # Glow on MNIST, ~15 min on 2 cores",
    "deno task train:glow --model realnvp --out runs/realnvp-mnist",
    "deno task train:glow --kimg 5 --out runs/quick        # a short run",
    "deno task train:glow --resume --out runs/glow-mnist   # continue an interrupted run",
    "deno task train:glow --preset toy --out runs/glow-toy # two moons",
    "deno task train:glow --levels 2 --steps 8 --hidden 128 --dry-run",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:glow" });
  const base: FlowTrainConfig = FLOW_TRAIN_PRESETS[f.preset as keyof typeof FLOW_TRAIN_PRESETS];
  const { model: _m, channels: _c, channelMult: _cm, numBlocks: _b, ...shared } = sharedTrainFields(
    f,
    {
      ...base,
      model: base.arch.kind,
    },
  );
  const config: FlowTrainConfig = {
    ...base,
    ...shared,
    arch: archFrom(base.arch, f),
    clipGradNorm: f.clip ?? base.clipGradNorm,
    nBins: f["n-bits"] !== undefined ? 2 ** f["n-bits"] : base.nBins,
  };
  try {
    validateFlowConfig(config);
  } catch (e) {
    throw new UserError(`train:glow: ${(e as Error).message}`);
  }
  await runTrainTask({
    config,
    task: "train:glow",
    out: f.out ?? `runs/glow-${f.preset}`,
    resume: f.resume ?? false,
    dryRun: f["dry-run"] ?? false,
    backend: f.backend,
    keep: f.keep,
    train: trainFlow,
  });
});

function archFrom(
  base: FlowArch,
  f: {
    model?: string;
    levels?: number;
    steps?: number;
    hidden?: number;
    coupling?: string;
    permutation?: string;
  },
): FlowArch {
  const start = f.model && f.model !== base.kind
    ? (f.model === "realnvp" ? FLOW_ARCHS["realnvp-mnist"] : FLOW_ARCHS["glow-mnist"])
    : base;
  if (start.kind === "realnvp") {
    for (const flag of ["steps", "coupling", "permutation"] as const) {
      if (f[flag] !== undefined) {
        throw new UserError(`train:glow: --${flag} is a Glow flag; drop it for --model realnvp`);
      }
    }
    return { ...start, levels: f.levels ?? start.levels, hidden: f.hidden ?? start.hidden };
  }
  return {
    ...start,
    levels: f.levels ?? start.levels,
    steps: f.steps ?? start.steps,
    hidden: f.hidden ?? start.hidden,
    coupling: (f.coupling ?? start.coupling) as "affine" | "additive" | undefined,
    permutation: (f.permutation ?? start.permutation) as "lu" | "plain" | undefined,
  };
}
