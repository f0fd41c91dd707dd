/**
 * `deno task sample:sde`: samples a `train:sde` checkpoint with the predictor-corrector sampler
 * (Song et al. 2021, Algorithm 1; score_sde's `get_pc_sampler`) or the probability-flow ODE
 * (`--ode`, adaptive RK45), one seed per image, into a PNG grid and optionally one PNG per image.
 * Thin: flags in, `samplePc` / `samplePfOde` through `sampleToFiles`.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { parseSeeds } from "../core/seeds.ts";
import { sampleOutputsFromFlags, sampleToFiles } from "./_write_samples.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import type { CustomSampler } from "../samplers/generate.ts";
import { planPc, samplePc } from "../samplers/pc_sampler.ts";
import { samplePfOde } from "../samplers/pf_ode.ts";
import { correctorByName, type CorrectorName } from "../samplers/sde_correctors.ts";
import { predictorByName, type PredictorName } from "../samplers/sde_predictors.ts";
import { type ScoreSdeName, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
  PC_SAMPLER_FLAGS,
  SAMPLE_BATCH_FLAG,
  SAMPLE_FILE_FLAGS,
  SAMPLE_OUT_FLAG,
  SEEDS_FLAG,
  WEIGHTS_FLAG,
} from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    path: "file",
    default: "runs/sde-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:sde",
  },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  ...PC_SAMPLER_FLAGS,
  steps: {
    type: "int",
    min: 1,
    max: 100_000,
    help: "PC steps [default: 1000 from T, round(1000 t-start) from --t-start]",
  },
  "t-start": {
    type: "number",
    gt: 0,
    max: 1,
    help: "start time; the start is N(0, sigma(t-start)^2) [default: T = 1]",
  },
  weights: WEIGHTS_FLAG,
  class: {
    type: "int",
    min: 0,
    max: 100_000,
    help: "class label for conditional models [default: cycle]",
  },
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:sde",
  summary: "Samples from a train:sde checkpoint with a predictor-corrector sampler (score_sde's\n" +
    "reverse diffusion + Langevin, snr 0.16, by default; 1000 steps, 2 network evaluations each)\n" +
    "or the probability-flow ODE. Each image has its own seed; --corrector langevin averages\n" +
    "its norms over the batch as score_sde does, so images then depend on their batch.",
  examples: [
    "deno task sample:sde                                         # 64 images, PC sampler",
    "deno task sample:sde --ode --out ode.png                     # probability-flow ODE",
    "deno task sample:sde --predictor euler_maruyama --corrector none --steps 500",
    "deno task sample:sde --predictor ancestral_sampling --snr 0.1 --n-steps-each 2",
    "deno task sample:sde --t-start 0.5 --seeds 0-15 --out truncated.png",
    "deno task sample:sde --checkpoint runs/ve/checkpoint.safetensors --images-dir out/images",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:sde" });
  const seeds = parseSeeds(f.seeds!);
  const outputs = await sampleOutputsFromFlags(f, "sample:sde");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDenoiser(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:sde",
  });
  const { denoiser, shape, numClasses } = loaded;
  const config = loaded.state.config as { precond?: string; sde?: unknown };
  const kind = config.precond;
  if (!config.sde && kind !== "subvp") {
    throw new UserError(
      `sample:sde: ${f.checkpoint} was trained by ${
        kind ? `train:edm (precond ${kind})` : "train:ddpm"
      }, not train:sde; sample it with sample:edm`,
    );
  }
  if (f.class !== undefined && (numClasses === 0 || f.class >= numClasses)) {
    throw new UserError(
      numClasses === 0
        ? "sample:sde: --class given, but the checkpoint is unconditional; drop --class"
        : `sample:sde: --class must be below ${numClasses}, got ${f.class}`,
    );
  }
  const schedule = scoreSdeSchedule(kind as ScoreSdeName);
  const tStart = f["t-start"] ?? schedule.tMax;
  const grid = { schedule, tStart, eps: f.eps, steps: f.steps };
  try {
    planPc(grid);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UserError(`sample:sde: ${e.message} (--t-start, --eps, --steps)`);
  }
  const predictor = predictorByName(f.predictor as PredictorName);
  const corrector = correctorByName(f.corrector as CorrectorName, {
    snr: f.snr,
    nStepsEach: f["n-steps-each"],
  });
  const sampler: CustomSampler = {
    initialScale: schedule.sigma(tStart),
    run: (d, x, { noise, cond, signal }) =>
      f.ode
        ? samplePfOde(d, x, {
          schedule,
          tStart,
          tEnd: f.eps,
          rtol: f.rtol,
          atol: f.atol,
          denoise: f.denoise,
          cond,
          signal,
        })
        : samplePc(d, x, {
          ...grid,
          noise,
          predictor,
          corrector,
          denoise: f.denoise,
          cond,
          signal,
        }),
  };
  await sampleToFiles(denoiser, {
    seeds,
    shape,
    sampler,
    batchSize: f.batch!,
    classLabels: numClasses > 0 ? seeds.map((_, i) => f.class ?? i % numClasses) : undefined,
    numClasses,
  }, {
    ...outputs,
    columns: numClasses > 0 && f.class === undefined ? numClasses : undefined,
  });
  loaded.dispose();
});
