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
import { sampleOutputsFromFlags, sampleToFiles } from "./_write_samples.ts";
import { loadDinof } from "../training/load_dinof.ts";
import { dinofSampler, dinofSteps } from "../samplers/dinof_sampler.ts";
import { planPc } from "../samplers/pc_sampler.ts";
import { correctorByName, type CorrectorName } from "../samplers/sde_correctors.ts";
import { predictorByName, type PredictorName } from "../samplers/sde_predictors.ts";
import { runTask } from "./_main.ts";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { loadDataset } from "../data/load_dataset.ts";
import type { DinofModel } from "../models/dinof.ts";
import { dinofLikelihood } from "../eval/dinof_likelihood.ts";
import { sdeLikelihood } from "../eval/sde_likelihood.ts";
import type { LikelihoodResult } from "../eval/likelihood.ts";
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
  N: {
    type: "int",
    default: 1000,
    min: 2,
    max: 100_000,
    help: "noise scales N; PC takes round(T_m N) steps",
  },
  ...PC_SAMPLER_FLAGS,
  bpd: {
    type: "string",
    path: "dataset",
    help: "also print bits/dim of the last --bpd-count images of this dataset, e.g. mnist:test",
  },
  "bpd-count": {
    type: "int",
    default: 16,
    min: 1,
    max: 100_000,
    help: "images for --bpd (the ODE is slow)",
  },
  "bpd-seed": { type: "int", default: 0, help: "seed of the dequantization noise and probes" },
  weights: WEIGHTS_FLAG,
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:dinof",
  summary:
    "Samples from a train:dinof checkpoint: the flow draws x(T_m), then reverse diffusion +\n" +
    "Langevin (snr 0.16) runs from T_m to eps in round(T_m N) steps of 2 network evaluations,\n" +
    "or the probability-flow ODE from T_m (--ode). Each image has its own seed; --corrector\n" +
    "langevin averages its norms over the batch as score_sde does. --bpd prints the bits/dim of\n" +
    "DiNof (PF ODE from eps to T_m, then the flow) and of its score model alone (PF ODE to T).",
  examples: [
    "deno task sample:dinof                                      # 64 digits, PC from T_m",
    "deno task sample:dinof --temperature 0.8 --out t08.png",
    "deno task sample:dinof --ode --out ode.png                  # probability-flow ODE from T_m",
    "deno task sample:dinof --N 200 --corrector none --predictor euler_maruyama",
    "deno task sample:dinof --checkpoint runs/x/checkpoint.safetensors --seeds 0-15 --images-dir out",
    "deno task sample:dinof --seeds 0-15 --bpd mnist:test --bpd-count 32  # + DiNof and score-only bits/dim",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:dinof" });
  const seeds = parseSeeds(f.seeds!);
  const outputs = await sampleOutputsFromFlags(f, "sample:dinof");
  await selectBackend({ backend: f.backend });
  const loaded = await loadDinof(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:dinof",
  });
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
  }, outputs);
  if (f.bpd) {
    await printBitsPerDim(model, f.bpd, {
      shape: loaded.shape,
      count: f["bpd-count"]!,
      seed: f["bpd-seed"]!,
    });
  }
  loaded.dispose();
});

async function printBitsPerDim(
  model: DinofModel,
  spec: string,
  options: { shape: number[]; count: number; seed: number },
): Promise<void> {
  const data = await loadDataset(spec);
  if (data.shape.join() !== options.shape.join()) {
    throw new UserError(
      `sample:dinof: --bpd ${spec} has examples of shape [${data.shape}], the model [${options.shape}]`,
    );
  }
  const n = Math.min(options.count, data.count);
  const per = data.shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(data.images.subarray((data.count - n) * per), [n, ...data.shape]);
  try {
    // 8-bit images are dequantized (+7 bits/dim); point sets are continuous.
    const dequantize = data.shape.length === 3;
    const dinof = await dinofLikelihood(model, x, { rng: new Rng(options.seed), dequantize });
    const alone = await sdeLikelihood(model.denoiser, x, {
      schedule: model.schedule,
      rng: new Rng(options.seed),
      dequantize,
    });
    const line = (r: LikelihoodResult) =>
      `${r.meanBitsPerDim.toFixed(4)} ± ${r.stdErrorBitsPerDim.toFixed(4)} bits/dim ` +
      `(${r.nfe} ODE evaluations)`;
    console.log(`bits/dim on the last ${n} of ${data.name}:`);
    console.log(`  DiNof (PF ODE to T_m = ${model.tm}, then the flow): ${line(dinof)}`);
    console.log(`  score model alone (PF ODE to T):         ${line(alone)}`);
  } finally {
    x.dispose();
  }
}
