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
import { polyexponentialSigmas } from "../schedules/sigma_grids.ts";
import { denoiserFor } from "./_guidance.ts";
import { K_SAMPLER_PARAMS, type KSamplerName } from "../samplers/k_samplers.ts";
import { readPng } from "../data/png.ts";
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
  steps: {
    type: "int",
    default: 18,
    min: 1,
    max: 100_000,
    help: "noise levels N (Heun: 2N-1 evaluations; dpm-fast: N; dpm-adaptive: ignored)",
  },
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
  schedule: {
    type: "string",
    default: "karras",
    choices: ["karras", "exponential", "polyexponential"],
    help: "noise-level grid",
  },
  rho: {
    type: "number",
    gt: 0,
    help: "grid exponent: karras (EDM eq. 5) [default: 7], polyexponential [default: 1]",
  },
  "s-churn": { type: "number", min: 0, help: "stochastic: S_churn [default: 0]" },
  "s-tmin": { type: "number", min: 0, help: "stochastic: S_tmin [default: 0]" },
  "s-tmax": { type: "number", min: 0, help: "stochastic: S_tmax [default: infinity]" },
  "s-noise": {
    type: "number",
    gt: 0,
    help: "stochastic, ancestral and SDE samplers: noise scale S_noise [default: 1]",
  },
  eta: {
    type: "number",
    min: 0,
    help: "ancestral and SDE samplers: noise amount [default: 1; dpm-fast, dpm-adaptive: 0]",
  },
  order: {
    type: "int",
    min: 1,
    max: 6,
    help: "lms: order [default: 4]; dpm-adaptive: 2 or 3 [default: 3]",
  },
  rtol: { type: "number", gt: 0, help: "dpm-adaptive: relative tolerance [default: 0.05]" },
  atol: { type: "number", gt: 0, help: "dpm-adaptive: absolute tolerance [default: 0.0078]" },
  "solver-type": {
    type: "string",
    choices: ["midpoint", "heun"],
    help: "dpmpp-2m-sde: correction [default: midpoint]",
  },
  guidance: {
    type: "number",
    min: 0,
    help: "classifier-free guidance scale w (class-conditional model trained with --cond-drop)",
  },
  "init-image": {
    type: "string",
    path: "file",
    help: "img2img / inpainting: start image (PNG of the model's size)",
  },
  strength: {
    type: "number",
    min: 0,
    max: 1,
    help: "img2img: fraction of the steps run from the noised --init-image [default: 0.5]",
  },
  mask: {
    type: "string",
    path: "file",
    help: "inpainting: PNG mask, white (> 0) = keep the --init-image pixel, black = generate",
  },
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
    "deno task sample:edm --sampler dpmpp-2m --steps 10",
    "deno task sample:edm --sampler dpm-adaptive --rtol 0.05   # chooses its own steps",
    "deno task sample:edm --sampler euler-ancestral --eta 1 --schedule exponential",
    "deno task sample:edm --checkpoint runs/edm-cfg/checkpoint.safetensors --guidance 3",
    "deno task sample:edm --init-image digit.png --strength 0.4 --sampler dpmpp-2m",
    "deno task sample:edm --init-image digit.png --mask mask.png --sampler dpmpp-2m-sde",
    "deno task sample:edm --seeds 100-199 --images-dir out/images --resume   # after a Ctrl-C",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:edm" });
  const sampler = f.sampler as typeof SAMPLER_NAMES[number];
  checkSamplerFlags(f, sampler);
  if (sampler === "dpm-adaptive" && f.order !== undefined && f.order !== 2 && f.order !== 3) {
    throw new UserError(`sample:edm: --order for dpm-adaptive must be 2 or 3, got ${f.order}`);
  }
  if (f.schedule === "exponential" && f.rho !== undefined) {
    throw new UserError("sample:edm: --rho does not apply to --schedule exponential; drop it");
  }
  if (f["init-image"] === undefined && (f.strength !== undefined || f.mask !== undefined)) {
    throw new UserError("sample:edm: --strength and --mask need --init-image");
  }
  const seeds = parseSeeds(f.seeds!);
  const outputs = await sampleOutputsFromFlags(f, "sample:edm");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDenoiser(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:edm",
  });
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
  const classLabel = f.class === undefined ? undefined : parseClass(
    f.class,
    numClasses,
    "classNames" in loaded.state ? loaded.state.classNames : undefined,
  );
  const sigmas = f.schedule === "karras"
    ? karrasSigmas({ numSteps: f.steps!, sigmaMin, sigmaMax, rho: f.rho ?? 7 })
    : polyexponentialSigmas({ numSteps: f.steps!, sigmaMin, sigmaMax, rho: f.rho ?? 1 });
  const guided = denoiserFor("sample:edm", loaded, f.guidance);
  const images = await initImages(f, shape);
  await sampleToFiles(guided, {
    ...images,
    seeds,
    shape,
    sigmas,
    sampler,
    batchSize: f.batch!,
    eta: f.eta,
    order: f.order,
    solverType: f["solver-type"] as "midpoint" | "heun" | undefined,
    rtol: f.rtol,
    atol: f.atol,
    sChurn: f["s-churn"],
    sTmin: f["s-tmin"],
    sTmax: f["s-tmax"] ?? Infinity,
    sNoise: f["s-noise"],
    classLabels: numClasses > 0 ? seeds.map((_, i) => classLabel ?? i % numClasses) : undefined,
    numClasses,
  }, {
    ...outputs,
    columns: numClasses > 0 && classLabel === undefined ? numClasses : undefined,
  });
  loaded.dispose();
});

/** Flags of one sampler only: giving one to another sampler is a mistake worth exit 2. */
function checkSamplerFlags(f: Record<string, unknown>, sampler: string): void {
  const takes: Record<string, string[]> = {
    "s-churn": ["stochastic"],
    "s-tmin": ["stochastic"],
    "s-tmax": ["stochastic"],
    "s-noise": ["stochastic"],
    eta: [],
    order: [],
    "solver-type": [],
    rtol: [],
    atol: [],
  };
  const flagOf = {
    eta: "eta",
    sNoise: "s-noise",
    order: "order",
    solverType: "solver-type",
    rtol: "rtol",
    atol: "atol",
  };
  for (const [name, params] of Object.entries(K_SAMPLER_PARAMS)) {
    for (const p of params) takes[flagOf[p]].push(name as KSamplerName);
  }
  for (const [flag, samplers] of Object.entries(takes)) {
    if (f[flag] !== undefined && !samplers.includes(sampler)) {
      throw new UserError(
        `sample:edm: --${flag} does not apply to --sampler ${sampler}; it is for ${
          samplers.join(", ")
        }`,
      );
    }
  }
}

/** --init-image, --strength and --mask as GenerateOptions' init / inpaint. */
async function initImages(
  f: { "init-image"?: string; strength?: number; mask?: string },
  shape: readonly number[],
): Promise<
  {
    init?: { images: Float32Array; strength: number };
    inpaint?: { images: Float32Array; mask: Float32Array };
  }
> {
  if (f["init-image"] === undefined) {
    if (f.strength !== undefined || f.mask !== undefined) {
      throw new UserError("sample:edm: --strength and --mask need --init-image");
    }
    return {};
  }
  const read = async (path: string, what: string) => {
    const channels = shape[2] === 3 ? 3 : 1;
    let img;
    try {
      img = await readPng(path, { channels });
    } catch (e) {
      throw new UserError(`sample:edm: cannot read ${what} ${path}: ${(e as Error).message}`);
    }
    if (img.shape.join() !== shape.join()) {
      throw new UserError(
        `sample:edm: ${what} ${path} is [${img.shape}] but the model makes [${shape}]; resize it`,
      );
    }
    return img.data;
  };
  const images = await read(f["init-image"], "--init-image");
  if (f.mask !== undefined) {
    const mask = (await read(f.mask, "--mask")).map((v) => (v > 0 ? 1 : 0));
    return {
      inpaint: { images, mask },
      ...(f.strength !== undefined ? { init: { images, strength: f.strength } } : {}),
    };
  }
  return { init: { images, strength: f.strength ?? 0.5 } };
}

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
