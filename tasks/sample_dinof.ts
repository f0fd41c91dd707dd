/**
 * `deno task sample:dinof`: samples a `train:dinof` checkpoint: x(T_m) from the flow at a
 * temperature, then the predictor-corrector sampler from T_m with round(T_m N) steps (or the
 * probability-flow ODE, `--ode`), one seed per image, into a PNG grid and optionally one PNG per
 * image. Thin: flags in, `dinofSampler` through `sampleToFiles`.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { parseSeeds } from "../core/seeds.ts";
import { prepareSampleOutputs, sampleToFiles } from "./_write_samples.ts";
import { loadDinof } from "../training/load_dinof.ts";
import { dinofSampler, dinofSteps } from "../samplers/dinof_sampler.ts";
import { planPc } from "../samplers/pc_sampler.ts";
import { correctorByName, type CorrectorName } from "../samplers/sde_correctors.ts";
import { predictorByName, type PredictorName } from "../samplers/sde_predictors.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
  IMAGES_DIR_FLAG,
  PC_SAMPLER_FLAGS,
  SAMPLE_BATCH_FLAG,
  SEEDS_FLAG,
  WEIGHTS_FLAG,
} from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    default: "runs/dinof-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:dinof",
  },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  tm: {
    type: "number",
    gt: 0,
    max: 1,
    help: "start time of the reverse process [default: the checkpoint's T_m]",
  },
  temperature: { type: "number", default: 1, min: 0, help: "flow latent temperature" },
  N: { type: "int", default: 1000, min: 2, help: "noise scales N; PC takes round(T_m N) steps" },
  ...PC_SAMPLER_FLAGS,
  weights: WEIGHTS_FLAG,
  out: { type: "string", default: "samples.png", help: "grid PNG (SVG scatter for 2-D data)" },
  "images-dir": IMAGES_DIR_FLAG,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:dinof",
  summary:
    "Samples from a train:dinof checkpoint: the flow draws x(T_m), then reverse diffusion +\n" +
    "Langevin (snr 0.16) runs from T_m to eps in round(T_m N) steps of 2 network evaluations,\n" +
    "or the probability-flow ODE from T_m (--ode). Each image has its own seed; --corrector\n" +
    "langevin averages its norms over the batch as score_sde does.",
  examples: [
    "deno task sample:dinof                                      # 64 digits, PC from T_m",
    "deno task sample:dinof --temperature 0.8 --out t08.png",
    "deno task sample:dinof --ode --out ode.png                  # probability-flow ODE from T_m",
    "deno task sample:dinof --N 200 --corrector none --predictor euler_maruyama",
    "deno task sample:dinof --checkpoint runs/x/checkpoint.safetensors --seeds 0-15 --images-dir out",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:dinof" });
  const seeds = parseSeeds(f.seeds!);
  await prepareSampleOutputs({ out: f.out!, imagesDir: f["images-dir"] });
  await selectBackend({ backend: f.backend });
  const loaded = await loadDinof(f.checkpoint!, { weights: f.weights as "ema" | "raw" });
  const trained = loaded.model.tm;
  const tm = f.tm ?? trained;
  if (tm !== trained) {
    console.error(
      `warning: the flow models x(${trained}); starting the reverse process at ${tm} treats ` +
        `its samples as x(${tm})`,
    );
  }
  const model = { ...loaded.model, tm };
  const { schedule } = model;
  try {
    planPc({
      schedule,
      tStart: tm,
      eps: f.eps,
      steps: dinofSteps(tm, { numScales: f.N!, T: schedule.tMax }),
    });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new UserError(`sample:dinof: ${e.message} (--tm, --eps, --N)`);
  }
  const sampler = dinofSampler(model, {
    temperature: f.temperature,
    method: f.ode ? "ode" : "pc",
    predictor: predictorByName(f.predictor as PredictorName),
    corrector: correctorByName(f.corrector as CorrectorName, {
      snr: f.snr,
      nStepsEach: f["n-steps-each"],
    }),
    numScales: f.N,
    eps: f.eps,
    denoise: f.denoise,
    rtol: f.rtol,
    atol: f.atol,
  });
  await sampleToFiles(model.denoiser, {
    seeds,
    shape: loaded.shape,
    sampler,
    batchSize: f.batch!,
  }, { out: f.out!, imagesDir: f["images-dir"] });
  loaded.dispose();
});
