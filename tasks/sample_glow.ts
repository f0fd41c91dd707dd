/**
 * `deno task sample:glow`: samples a `train:glow` flow at a temperature (Glow, Kingma & Dhariwal
 * 2018, Section 5: every latent's std multiplied by T), one seed per image, into a PNG grid and
 * optionally one PNG per image; with `--bpd <data>` also the exact bits/dim of a test set.
 *
 * @module
 */
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { createProgress } from "../core/progress.ts";
import { Rng } from "../core/rng.ts";
import { parseSeeds } from "../core/seeds.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { FLOW_DENOISER, flowSampler } from "../flows/flow_sampler.ts";
import { flowBitsPerDim } from "../eval/flow_bits_per_dim.ts";
import { loadFlow } from "../training/load_flow.ts";
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
    default: "runs/glow-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:glow",
  },
  seeds: SEEDS_FLAG,
  batch: SAMPLE_BATCH_FLAG,
  temperature: { type: "number", default: 0.7, min: 0, help: "latent std multiplier T" },
  weights: WEIGHTS_FLAG,
  out: SAMPLE_OUT_FLAG,
  ...SAMPLE_FILE_FLAGS,
  bpd: {
    type: "string",
    path: "dataset",
    help: "also print the bits/dim of this dataset, e.g. mnist:test",
  },
  "bpd-seed": { type: "int", default: 0, help: "seed of the dequantization noise for --bpd" },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "sample:glow",
  summary:
    "Samples from a train:glow checkpoint at temperature T (Glow's default for figures: 0.7).\n" +
    "Each image has its own seed, so an image does not depend on the batch size. --bpd evaluates\n" +
    "the exact bits/dim (uniform dequantization) of a dataset under the same weights.",
  examples: [
    "deno task sample:glow                                    # 64 images at T = 0.7",
    "deno task sample:glow --temperature 1 --seeds 0-15 --out t1.png",
    "deno task sample:glow --bpd mnist:test                   # samples and test bits/dim",
    "deno task sample:glow --checkpoint runs/glow-toy/checkpoint.safetensors --seeds 0-999",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "sample:glow" });
  const seeds = parseSeeds(f.seeds!);
  const outputs = await sampleOutputsFromFlags(f, "sample:glow");
  await selectBackend({ backend: f.backend });
  const loaded = await loadFlow(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "sample:glow",
  });
  const { model, params, spec } = loaded;
  const shape = spec.input === "none" ? [spec.shape[2]] : spec.shape;
  try {
    await sampleToFiles(FLOW_DENOISER, {
      seeds,
      shape,
      sampler: flowSampler(model, params, { temperature: f.temperature, input: spec.input }),
      batchSize: f.batch!,
    }, outputs);
    if (f.bpd) {
      const data = await loadDataset(f.bpd);
      if (data.shape.join() !== shape.join()) {
        throw new UserError(
          `sample:glow: --bpd ${f.bpd} has examples of shape [${data.shape}], the flow models [${shape}]`,
        );
      }
      const bar = createProgress({ total: data.count, label: "bits/dim", unit: "img" });
      const r = await flowBitsPerDim(model, params, data.images, {
        spec,
        rng: new Rng(f["bpd-seed"]!),
        batchSize: f.batch!,
        onBatch: (done) => bar.update(done),
      });
      bar.finish();
      const unit = spec.input === "none" ? "nats/dim" : "bits/dim";
      console.log(
        `${unit} on ${data.name} (${data.count} examples): ${r.mean.toFixed(4)} ± ${
          r.stdError.toFixed(4)
        }`,
      );
    }
  } finally {
    loaded.dispose();
  }
});
