/**
 * `deno task sample:ndm`: samples from a `train:ndm` checkpoint with Algorithm 2 of the NDM paper
 * (posterior eq. 8 around the model's x-prediction), DDPM-style (`--eta 1`) or DDIM-style
 * (`--eta 0`), on the training chain respaced to `--steps`, one seed per image, through the
 * shared `sampleToFiles` path.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { parseSeeds } from "../core/seeds.ts";
import { respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { ndmSampler } from "../samplers/ndm_ancestral.ts";
import { ndmOdeSampler, ndmSdeSampler } from "../samplers/ndm_ode.ts";
import { ndmContinuousSchedule } from "../training/train_ndm.ts";
import { loadNdm } from "../training/load_ndm.ts";
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
    default: "runs/ndm-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:ndm",
  },
  steps: {
    type: "int",
    min: 1,
    max: 100_000,
    help: "steps of the chain, respaced from T [default: the training run's]",
  },
  eta: {
    type: "number",
    default: 1,
    min: 0,
    max: 1,
    help: "posterior noise: 1 DDPM-style, 0 deterministic (DDIM-style)",
  },
  ode: {
    type: "boolean",
    help: "the deterministic ODE (eq. 12-13, constant nu) with RK45 instead of Algorithm 2",
  },
  sde: {
    type: "int",
    min: 1,
    max: 100_000,
    help: "the reverse SDE (eq. 12, DDPM noise) by Euler-Maruyama with this many steps",
  },
  clip: { type: "boolean", help: "Algorithm 2: clip x_hat to [-1, 1] at every step" },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  weights: WEIGHTS_FLAG,
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:ndm",
  summary: "Samples from a train:ndm checkpoint with NDM's Algorithm 2. Each image has its own\n" +
    "seed. Fewer --steps respace the chain (trained with 1000, sampled with 10 works).",
  examples: [
    "deno task sample:ndm                                     # 64 images, the training chain",
    "deno task sample:ndm --steps 10 --eta 0                  # 10 deterministic steps",
    "deno task sample:ndm --ode                               # the ODE, adaptive RK45",
    "deno task sample:ndm --sde 500                           # the reverse SDE, 500 steps",
    "deno task sample:ndm --checkpoint runs/ndm-ddpm/checkpoint.safetensors --out ddpm.png",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:ndm" });
  const seeds = parseSeeds(f.seeds!);
  if (f.ode && f.sde) {
    throw new UserError("sample:ndm: pass --ode or --sde, not both");
  }
  const outputs = await sampleOutputsFromFlags(f, "sample:ndm");
  await selectBackend({ backend: f.backend });
  const loaded = await loadNdm(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:ndm",
  });
  try {
    const { process, denoiser, transform, shape } = loaded;
    const steps = f.steps ?? loaded.chain.T;
    if (steps > process.T) {
      throw new UserError(
        `sample:ndm: --steps must be at most the checkpoint's T = ${process.T}, got ${steps}`,
      );
    }
    const chain = respaceDdpm(process, spaceTimesteps(process.T, { numSteps: steps }));
    const schedule = ndmContinuousSchedule(process.T);
    await sampleToFiles(denoiser, {
      seeds,
      shape,
      sampler: f.ode
        ? ndmOdeSampler(process, transform, { schedule })
        : f.sde
        ? ndmSdeSampler(process, transform, { schedule, steps: f.sde })
        : ndmSampler(chain, transform, { eta: f.eta, clipX0: f.clip }),
      batchSize: f.batch!,
    }, outputs);
  } finally {
    loaded.dispose();
  }
});
