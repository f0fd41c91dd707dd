/**
 * `deno task eval:ndm`: the NELBO (NDM paper, eq. 9) of a `train:ndm` checkpoint in bits/dim on
 * held-out images with its parts (L_prior, L_diff, L_rec), on the training chain or a respacing
 * of it (`--steps`, Table 4's "1000 -> 10"), and the pictures of Figure 2: the strip of
 * F_phi(x, t) over t for some held-out digits and the x-predictions at z_T; with a JSON summary.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { dirname, join } from "node:path";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { selectBackend } from "../core/engine.ts";
import { createProgress } from "../core/progress.ts";
import { perImageNoise } from "../core/noise.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { evalChain, loadHeldOut } from "./_held_out.ts";
import { writeImageGrid } from "../data/png.ts";
import { type DdpmBoundResult, summarizeDdpmBound } from "../eval/ddpm_bound.ts";
import { ndmBound } from "../eval/ndm_bound.ts";
import { predictionsAtNoise, transformStrip } from "../eval/ndm_pictures.ts";
import { ndmOdeLikelihood } from "../eval/ndm_likelihood.ts";
import { Rng } from "../core/rng.ts";
import { ndmContinuousSchedule } from "../training/train_ndm.ts";
import { loadNdm } from "../training/load_ndm.ts";
import { runTask } from "./_main.ts";
import { prepareOutputFolder } from "./_write_samples.ts";
import { BACKEND_FLAG, SAMPLE_BATCH_FLAG, WEIGHTS_FLAG } from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    path: "file",
    default: "runs/ndm-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:ndm",
  },
  data: {
    type: "string",
    path: "dataset",
    help: "dataset to evaluate on [default: the training run's; mnist:test for mnist:train]",
  },
  n: {
    type: "int",
    default: 256,
    min: 1,
    max: 1_000_000,
    help: "held-out images: the last n of the dataset",
  },
  steps: {
    type: "int",
    min: 1,
    max: 100_000,
    help: "steps of the chain, respaced from T [default: the training run's]",
  },
  eta: { type: "number", gt: 0, max: 1, help: "posterior noise [default: the training run's]" },
  nll: {
    type: "int",
    default: 16,
    min: 0,
    max: 1_000_000,
    help: "held-out images for the ODE NLL (RK45 + Hutchinson; 0: skip)",
  },
  probes: {
    type: "int",
    default: 1,
    min: 1,
    max: 1000,
    help: "Hutchinson probes per image for the NLL",
  },
  batch: SAMPLE_BATCH_FLAG,
  seed: { type: "int", default: 0, help: "seed of the z_k draws and of the pictures" },
  weights: WEIGHTS_FLAG,
  "out-dir": {
    type: "string",
    path: "file",
    help: "output folder [default: <checkpoint folder>/eval]",
  },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "eval:ndm",
  summary: "Measures a train:ndm model's NELBO in bits/dim on held-out images (the last --n of\n" +
    "the dataset; mnist:test for a run on mnist:train) with its parts, and writes the strip of\n" +
    "F(x, t) over t (transform.png), the x-predictions at z_T (predictions.png) and\n" +
    "summary.json to --out-dir. The NELBO costs one network call per step and batch.",
  examples: [
    "deno task eval:ndm                                       # training chain, 256 digits",
    "deno task eval:ndm --steps 10 --n 64                     # the 1000 -> 10 model's NELBO",
    "deno task eval:ndm --checkpoint runs/ndm-ddpm/checkpoint.safetensors --out-dir out/ddpm",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "eval:ndm" });
  await selectBackend({ backend: f.backend });
  const loaded = await loadNdm(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "eval:ndm",
  });
  try {
    const { eps, transform, process, shape, state } = loaded;
    const outDir = f["out-dir"] ?? join(dirname(f.checkpoint!), "eval");
    await prepareOutputFolder(outDir, { flag: "--out-dir", task: "eval:ndm" });
    const steps = f.steps ?? loaded.chain.T;
    const chain = evalChain(process, steps, "eval:ndm");
    const eta = f.eta ?? state.config.eta;
    const n = f.n!;
    const { dataset, first } = await loadHeldOut({
      data: f.data,
      trainedOn: state.config.data,
      shape,
      n,
      task: "eval:ndm",
    });
    const per = shape.reduce((a, b) => a * b, 1);
    const decoder = shape.length === 1 ? "gaussian" : "discretized";
    const heldOut = (start: number, count: number) =>
      tf.tensor(dataset.images.slice((first + start) * per, (first + start + count) * per), [
        count,
        ...shape,
      ]);

    const results: DdpmBoundResult[] = [];
    const bar = createProgress({ total: n * steps, label: "nelbo", unit: "img-step" });
    for (let start = 0; start < n; start += f.batch!) {
      const count = Math.min(f.batch!, n - start);
      const x0 = heldOut(start, count);
      const seeds = Array.from(
        { length: count },
        (_, i) => f.seed! * 1_000_003 + first + start + i,
      );
      try {
        results.push(
          await ndmBound(eps, transform, x0, {
            process: chain,
            noise: perImageNoise(seeds),
            eta,
            decoder,
            onStep: ({ done }) => bar.update(start * steps + done * count),
          }),
        );
      } finally {
        x0.dispose();
      }
    }
    bar.finish();
    const summary = summarizeDdpmBound(results);
    const fmt = (v: number) => v.toFixed(4).padStart(9);
    console.log(
      `NELBO on the last ${n} images of ${dataset.name}, ${steps} steps (T = ${process.T}), ` +
        `F ${transform.kind}, eta ${eta}:`,
    );
    console.log(`  prior L_prior  ${fmt(summary.prior)} bits/dim`);
    console.log(`  diffusion      ${fmt(summary.diffusion)} bits/dim`);
    console.log(`  L_rec          ${fmt(summary.decoder)} bits/dim`);
    console.log(`  NELBO          ${fmt(summary.bitsPerDim)} bits/dim`);
    console.log(`  standard error ${fmt(summary.standardError)} bits/dim`);
    // NLL by the ODE (the deterministic dynamics of eq. 12-13) on the first --nll held-out images.
    let nll: { bitsPerDim: number; standardError: number; count: number; nfe: number } | null =
      null;
    const nllCount = Math.min(f.nll!, n);
    if (nllCount > 0) {
      const schedule = ndmContinuousSchedule(process.T);
      const perImage: number[] = [];
      let nfe = 0;
      const nllBar = createProgress({ total: nllCount, label: "nll", unit: "img" });
      for (let start = 0; start < nllCount; start += f.batch!) {
        const count = Math.min(f.batch!, nllCount - start);
        const x0 = heldOut(start, count);
        try {
          const r = await ndmOdeLikelihood({ eps, transform, schedule, T: process.T }, x0, {
            rng: new Rng(f.seed! * 1_000_003 + first + start),
            numProbes: f.probes!,
            dequantize: decoder === "discretized",
          });
          perImage.push(...r.bitsPerDim);
          nfe += r.nfe;
        } finally {
          x0.dispose();
        }
        nllBar.update(start + count);
      }
      nllBar.finish();
      const mean = perImage.reduce((a, b) => a + b, 0) / perImage.length;
      const variance = perImage.reduce((a, b) => a + (b - mean) ** 2, 0) /
        Math.max(perImage.length - 1, 1);
      nll = {
        bitsPerDim: mean,
        standardError: Math.sqrt(variance / perImage.length),
        count: nllCount,
        nfe,
      };
      console.log(
        `NLL (ODE, RK45, ${f.probes} Hutchinson probe(s)) on ${nllCount} held-out images: ` +
          `${fmt(mean)} +- ${nll.standardError.toFixed(4)} bits/dim (${nfe} drift evaluations)`,
      );
    }
    const written: string[] = [];
    if (shape.length === 3) {
      const times = Array.from({ length: 11 }, (_, j) => j / 10);
      const digits = heldOut(0, Math.min(8, n));
      const strip = transformStrip(transform, digits, times);
      const stripPath = join(outDir, "transform.png");
      await writeImageGrid(stripPath, strip, { columns: times.length });
      const xHat = predictionsAtNoise(eps, {
        process,
        noise: perImageNoise(Array.from({ length: 16 }, (_, i) => f.seed! + i)),
        shape: [16, ...shape],
      });
      const predPath = join(outDir, "predictions.png");
      await writeImageGrid(predPath, xHat, { columns: 8 });
      tf.dispose([digits, strip, xHat]);
      written.push(stripPath, predPath);
    }
    const json = {
      checkpoint: f.checkpoint,
      data: dataset.name,
      heldOut: { first, count: n },
      transform: transform.kind,
      continuous: state.config.continuous,
      T: process.T,
      steps,
      eta,
      decoder,
      nelbo: summary.bitsPerDim,
      prior: summary.prior,
      diffusion: summary.diffusion,
      reconstruction: summary.decoder,
      standardError: summary.standardError,
      nll,
    };
    const jsonPath = join(outDir, "summary.json");
    await writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + "\n");
    written.push(jsonPath);
    for (const path of written) console.log(`wrote ${path}`);
  } finally {
    loaded.dispose();
  }
});
