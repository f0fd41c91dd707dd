/**
 * `deno task sample:s2n`: samples from a `train:edm` checkpoint with the S2N generalized backward
 * step (S2N Corollary 1, eq. 7 / eq. 12): rho = 0 is the probability-flow ODE (gamma = 0: DDIM),
 * rho = 1 the reverse SDE (gamma = delta = 1: the variational posterior step), on any schedule of
 * S2N Table 1 and a grid uniform in t, in log-SNR, or Karras-style.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { parseSeeds } from "../core/seeds.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { s2nSampler } from "../samplers/s2n_generate.ts";
import { S2N_SCHEDULE_NAMES, s2nSchedule } from "../schedules/s2n_schedules.ts";
import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
import { sampleOutputsFromFlags, sampleToFiles } from "./_write_samples.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
  EDM_CHECKPOINT_FLAG,
  SAMPLE_BATCH_FLAG,
  SAMPLE_FILE_FLAGS,
  SEEDS_FLAG,
  WEIGHTS_FLAG,
} from "./_flags.ts";

const FLAGS = {
  checkpoint: EDM_CHECKPOINT_FLAG,
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  steps: {
    type: "int",
    default: 35,
    min: 1,
    max: 100_000,
    help: "steps N (one network evaluation each)",
  },
  schedule: { type: "string", default: "vp", choices: S2N_SCHEDULE_NAMES, help: "noise process" },
  spacing: {
    type: "string",
    default: "karras",
    choices: ["karras", "logSnr", "time"],
    help: "time grid",
  },
  rho: { type: "number", default: 0, help: "S2N rho: 0 = probability-flow ODE, 1 = reverse SDE" },
  gamma: { type: "number", default: 0, help: "S2N gamma (0 with rho 0: DDIM)" },
  delta: {
    type: "number",
    default: 1,
    min: 0,
    help: "S2N delta: noise between eq. 6 (0) and posterior (1)",
  },
  weights: WEIGHTS_FLAG,
  out: { type: "string", path: "file", default: "samples-s2n.png", help: "grid PNG" },
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:s2n",
  summary:
    "Samples an EDM checkpoint with the S2N backward family (rho, gamma, delta). The paper's\n" +
    "settings: deterministic rho 0, gamma 0.026; stochastic rho 1, gamma 1.25, delta 0.95.",
  examples: [
    "deno task sample:s2n                                         # DDIM (rho 0, gamma 0), 35 steps",
    "deno task sample:s2n --gamma 0.026 --out s2n-ode.png",
    "deno task sample:s2n --rho 1 --gamma 1.25 --delta 0.95 --out s2n-sde.png",
    "deno task sample:s2n --schedule fm-ot --spacing logSnr --steps 18",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:s2n" });
  const seeds = parseSeeds(f.seeds!);
  const outputs = await sampleOutputsFromFlags(f, "sample:s2n");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDenoiser(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:s2n",
  });
  const schedule = s2nSchedule(f.schedule as typeof S2N_SCHEDULE_NAMES[number]);
  // Grids end at zero noise, except VE, whose sigma never reaches 0: a final denoise ends it.
  const ve = f.schedule === "ve";
  let sampler;
  try {
    const times = s2nTimeGrid(schedule, {
      numSteps: f.steps,
      spacing: f.spacing as "karras" | "logSnr" | "time",
      endTime: ve ? undefined : 0,
    });
    sampler = s2nSampler({
      schedule,
      times,
      rho: f.rho,
      gamma: f.gamma,
      delta: f.delta,
      finalDenoise: ve,
    });
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`sample:s2n: ${e.message}`);
    throw e;
  }
  await sampleToFiles(loaded.denoiser, {
    seeds,
    shape: loaded.shape,
    sampler,
    batchSize: f.batch!,
    classLabels: loaded.numClasses > 0 ? seeds.map((_, i) => i % loaded.numClasses) : undefined,
    numClasses: loaded.numClasses,
  }, outputs);
  loaded.dispose();
});
