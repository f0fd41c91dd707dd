/**
 * `deno task sample:edm`: samples images from a `train:edm` checkpoint with Heun (EDM
 * Algorithm 1), Euler, or the stochastic sampler (Algorithm 2), one seed per image, into a PNG
 * grid and optionally one PNG per image.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { sampleOutputsFromFlags, sampleToFiles } from "./_write_samples.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { SAMPLER_NAMES, samplingSigmaRange } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { parseSeeds } from "../core/seeds.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
  EDM_CHECKPOINT_FLAG,
  SAMPLE_BATCH_FLAG,
  SAMPLE_FILE_FLAGS,
  SAMPLE_OUT_FLAG,
  SEEDS_FLAG,
  WEIGHTS_FLAG,
} from "./_flags.ts";

const FLAGS = {
  checkpoint: EDM_CHECKPOINT_FLAG,
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  steps: { type: "int", default: 18, min: 1, help: "noise levels N (Heun: 2N-1 evaluations)" },
  sampler: { type: "string", default: "heun", choices: SAMPLER_NAMES, help: "sampler" },
  "sigma-min": {
    type: "number",
    gt: 0,
    help: "smallest noise level [default: 0.002, clamped to the model's]",
  },
  "sigma-max": {
    type: "number",
    gt: 0,
    help: "largest noise level [default: 80, clamped to the model's]",
  },
  rho: { type: "number", default: 7, gt: 0, help: "step spacing exponent (EDM eq. 5)" },
  "s-churn": { type: "number", min: 0, help: "stochastic only: S_churn [default: 0]" },
  "s-tmin": { type: "number", min: 0, help: "stochastic only: S_tmin [default: 0]" },
  "s-tmax": { type: "number", min: 0, help: "stochastic only: S_tmax [default: infinity]" },
  "s-noise": { type: "number", gt: 0, help: "stochastic only: S_noise [default: 1]" },
  weights: WEIGHTS_FLAG,
  class: {
    type: "string",
    help: "class of a conditional model: its label or its folder name [default: cycle]",
  },
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:edm",
  summary: "Samples from a train:edm checkpoint. Each image has its own seed, so an image does\n" +
    "not depend on the batch size. EDM's defaults: 18 steps, sigma in [0.002, 80], rho 7.",
  examples: [
    "deno task sample:edm                                        # 64 images from runs/edm-mnist",
    "deno task sample:edm --checkpoint runs/quick/checkpoint.safetensors --seeds 0-15 --out a.png",
    "deno task sample:edm --sampler stochastic --s-churn 40 --s-tmin 0.05 --s-tmax 50 --s-noise 1.003",
    "deno task sample:edm --steps 10 --sampler euler --weights raw",
    "deno task sample:edm --seeds 100-199 --images-dir out/images",
    "deno task sample:edm --seeds 100-199 --images-dir out/images --resume   # after a Ctrl-C",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:edm" });
  const seeds = parseSeeds(f.seeds!);
  for (const name of ["s-churn", "s-tmin", "s-tmax", "s-noise"] as const) {
    if (f[name] !== undefined && f.sampler !== "stochastic") {
      throw new UserError(
        `sample:edm: --${name} applies to --sampler stochastic only (got --sampler ${f.sampler}); ` +
          `add --sampler stochastic or drop --${name}`,
      );
    }
  }
  const outputs = await sampleOutputsFromFlags(f, "sample:edm");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDenoiser(f.checkpoint!, { weights: f.weights as "ema" | "raw" });
  const { denoiser, shape, numClasses } = loaded;
  const { sigmaMin, sigmaMax } = samplingSigmaRange(denoiser, {
    sigmaMin: f["sigma-min"],
    sigmaMax: f["sigma-max"],
  });
  if (!(sigmaMax > sigmaMin)) {
    throw new UserError(
      `sample:edm: --sigma-max (${sigmaMax}) must exceed --sigma-min (${sigmaMin})`,
    );
  }
  const classLabel = f.class === undefined
    ? undefined
    : parseClass(f.class, numClasses, loaded.state.classNames);
  const sigmas = karrasSigmas({ numSteps: f.steps!, sigmaMin, sigmaMax, rho: f.rho! });
  await sampleToFiles(denoiser, {
    seeds,
    shape,
    sigmas,
    sampler: f.sampler as typeof SAMPLER_NAMES[number],
    batchSize: f.batch!,
    sChurn: f["s-churn"] ?? 0,
    sTmin: f["s-tmin"] ?? 0,
    sTmax: f["s-tmax"] ?? Infinity,
    sNoise: f["s-noise"] ?? 1,
    classLabels: numClasses > 0 ? seeds.map((_, i) => classLabel ?? i % numClasses) : undefined,
    numClasses,
  }, {
    ...outputs,
    columns: numClasses > 0 && classLabel === undefined ? numClasses : undefined,
  });
  loaded.dispose();
});

// --class as a label (0..numClasses-1) or as a class folder name the checkpoint recorded.
function parseClass(text: string, numClasses: number, names: string[] | undefined): number {
  if (numClasses === 0) {
    throw new UserError(
      "sample:edm: --class given, but the checkpoint is unconditional; drop --class",
    );
  }
  const byName = names?.indexOf(text) ?? -1;
  if (byName >= 0) return byName;
  const label = /^\d+$/.test(text) ? Number(text) : NaN;
  if (label < numClasses) return label;
  const known = names ? `one of ${names.join(", ")} or ` : "";
  throw new UserError(
    `sample:edm: --class must be ${known}a label below ${numClasses}, got "${text}"`,
  );
}
