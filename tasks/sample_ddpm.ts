/**
 * `deno task sample:ddpm`: samples images from a `train:ddpm` checkpoint with DDPM's ancestral
 * sampler (Ho et al. 2020, Algorithm 2) or DDIM (Song et al. 2021, eq. 12), on the training chain
 * respaced to `--steps` steps, one seed per image, into a PNG grid and optionally one PNG per image.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { parseSeeds } from "../core/seeds.ts";
import { respaceDdpm, type ReverseVariance, spaceTimesteps } from "../schedules/ddpm.ts";
import { DDPM_SAMPLER_NAMES, ddpmSampler } from "../samplers/ddpm_generate.ts";
import { loadDdpm } from "../training/load_ddpm.ts";
import { sampleOutputsFromFlags, sampleToFiles } from "./_write_samples.ts";
import { runTask } from "./_main.ts";
import {
  BACKEND_FLAG,
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
    default: "runs/ddpm-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:ddpm",
  },
  sampler: {
    type: "string",
    default: "ancestral",
    choices: DDPM_SAMPLER_NAMES,
    help: "Algorithm 2 or DDIM",
  },
  steps: {
    type: "int",
    default: 100,
    min: 1,
    max: 100_000,
    help: "steps of the chain, respaced from T (give T for the full chain)",
  },
  eta: {
    type: "number",
    min: 0,
    help: "ddim only: eta (0 deterministic, 1 ancestral) [default: 0]",
  },
  variance: {
    type: "string",
    choices: ["beta", "betaTilde"],
    help: "ancestral only: sigma_t^2 [default: the training run's]",
  },
  clip: { type: "boolean", help: "clip x0-hat to [-1, 1] at every step" },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  weights: WEIGHTS_FLAG,
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:ddpm",
  summary: "Samples from a train:ddpm checkpoint with the ancestral sampler or DDIM. Each image\n" +
    "has its own seed, so an image does not depend on the batch size. Fewer steps respace the\n" +
    "chain (improved DDPM): the recomputed betas keep every step a valid DDPM step.",
  examples: [
    "deno task sample:ddpm                                   # 64 images, 100 ancestral steps",
    "deno task sample:ddpm --steps 1000                      # the full chain of DDPM",
    "deno task sample:ddpm --sampler ddim --steps 50         # deterministic DDIM",
    "deno task sample:ddpm --sampler ddim --steps 50 --eta 1 # DDIM with ancestral noise",
    "deno task sample:ddpm --variance betaTilde --seeds 100-199 --images-dir out/images",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:ddpm" });
  const seeds = parseSeeds(f.seeds!);
  const only = (flag: string, sampler: string) =>
    new UserError(
      `sample:ddpm: --${flag} applies to --sampler ${sampler} only (got --sampler ${f.sampler}); ` +
        `add --sampler ${sampler} or drop --${flag}`,
    );
  if (f.eta !== undefined && f.sampler !== "ddim") throw only("eta", "ddim");
  if (f.variance !== undefined && f.sampler !== "ancestral") throw only("variance", "ancestral");
  const outputs = await sampleOutputsFromFlags(f, "sample:ddpm");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDdpm(f.checkpoint!, { weights: f.weights as "ema" | "raw" });
  try {
    const { process, denoiser, shape, state } = loaded;
    if (f.steps! > process.T) {
      throw new UserError(
        `sample:ddpm: --steps must be at most the checkpoint's T = ${process.T}, got ${f.steps}`,
      );
    }
    const chain = respaceDdpm(process, spaceTimesteps(process.T, { numSteps: f.steps! }));
    const sampler = ddpmSampler(chain, {
      sampler: f.sampler as typeof DDPM_SAMPLER_NAMES[number],
      variance: (f.variance ?? state.config.variance) as ReverseVariance,
      eta: f.eta ?? 0,
      clipX0: f.clip,
    });
    await sampleToFiles(denoiser, {
      seeds,
      shape,
      sampler,
      batchSize: f.batch!,
    }, outputs);
  } finally {
    loaded.dispose();
  }
});
