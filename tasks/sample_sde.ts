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
import { prepareSampleOutputs, sampleToFiles } from "./_write_samples.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import type { CustomSampler } from "../samplers/generate.ts";
import { planPc, samplePc } from "../samplers/pc_sampler.ts";
import { samplePfOde } from "../samplers/pf_ode.ts";
import {
  CORRECTOR_NAMES,
  correctorByName,
  type CorrectorName,
} from "../samplers/sde_correctors.ts";
import {
  PREDICTOR_NAMES,
  predictorByName,
  type PredictorName,
} from "../samplers/sde_predictors.ts";
import { type ScoreSdeName, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
  IMAGES_DIR_FLAG,
  SAMPLE_BATCH_FLAG,
  SEEDS_FLAG,
  WEIGHTS_FLAG,
} from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    default: "runs/sde-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:sde",
  },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  predictor: {
    type: "string",
    default: "reverse_diffusion",
    choices: PREDICTOR_NAMES,
    help: "PC predictor",
  },
  corrector: {
    type: "string",
    default: "langevin",
    choices: CORRECTOR_NAMES,
    help: "PC corrector",
  },
  snr: { type: "number", default: 0.16, gt: 0, help: "Langevin signal-to-noise ratio" },
  "n-steps-each": { type: "int", default: 1, min: 1, help: "corrector steps per noise level" },
  steps: {
    type: "int",
    min: 1,
    help: "PC steps [default: 1000 from T, round(1000 t-start) from --t-start]",
  },
  ode: { type: "boolean", help: "probability-flow ODE (RK45) instead of the PC sampler" },
  rtol: { type: "number", default: 1e-5, gt: 0, help: "ODE relative tolerance" },
  atol: { type: "number", default: 1e-5, gt: 0, help: "ODE absolute tolerance" },
  "t-start": {
    type: "number",
    gt: 0,
    max: 1,
    help: "start time; the start is N(0, sigma(t-start)^2) [default: T = 1]",
  },
  eps: { type: "number", gt: 0, help: "end time [default: 1e-5 VE, 1e-3 VP / sub-VP]" },
  denoise: {
    type: "boolean",
    default: true,
    help: "return the last step's mean (score_sde's noise_removal); --no-denoise keeps the noise",
  },
  weights: WEIGHTS_FLAG,
  class: { type: "int", min: 0, help: "class label for conditional models [default: cycle]" },
  out: { type: "string", default: "samples.png", help: "grid PNG (SVG scatter for 2-D data)" },
  "images-dir": IMAGES_DIR_FLAG,
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
  await prepareSampleOutputs({ out: f.out!, imagesDir: f["images-dir"] });
  await selectBackend({ backend: f.backend });
  const loaded = await loadDenoiser(f.checkpoint!, { weights: f.weights as "ema" | "raw" });
  const { denoiser, shape, numClasses, state } = loaded;
  const kind = state.config.precond;
  if (!state.config.sde && kind !== "subvp") {
    throw new UserError(
      `sample:sde: ${f.checkpoint} was trained by train:edm (precond ${kind}), not train:sde; ` +
        `sample it with sample:edm`,
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
    out: f.out!,
    columns: numClasses > 0 && f.class === undefined ? numClasses : undefined,
    imagesDir: f["images-dir"],
  });
  loaded.dispose();
});
