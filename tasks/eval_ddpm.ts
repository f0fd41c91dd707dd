/**
 * `deno task eval:ddpm`: DDPM's codelength and its pictures for a `train:ddpm` checkpoint
 * (Ho et al. 2020, Section 4.3): the variational bound in bits/dim on held-out images with its
 * terms (prior L_T, diffusion sum, decoder L_0; Table 1's NLL column), the rate-distortion
 * curve (Figure 5), progressive generation (Figure 6) and latent interpolation (Figure 8), all
 * into one folder with a JSON summary.
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
import { parseSeeds } from "../core/seeds.ts";
import { evalChain, loadHeldOut } from "./_held_out.ts";
import { writeImageGrid } from "../data/png.ts";
import type { ReverseVariance } from "../schedules/ddpm.ts";
import { ddpmBound, type DdpmBoundResult, summarizeDdpmBound } from "../eval/ddpm_bound.ts";
import type { BpdConvention } from "../eval/discretized_gaussian_reference.ts";
import { rateDistortionCurve, rateDistortionPlots } from "../eval/rate_distortion.ts";
import { progressiveGeneration, writeProgressiveStrip } from "../eval/ddpm_progressive.ts";
import { ddpmInterpolate } from "../eval/ddpm_interpolate.ts";
import { loadDdpm } from "../training/load_ddpm.ts";
import { runTask } from "./_main.ts";
import { prepareOutputFolder } from "./_write_samples.ts";
import { BACKEND_FLAG, SAMPLE_BATCH_FLAG, WEIGHTS_FLAG } from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    path: "file",
    default: "runs/ddpm-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:ddpm",
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
    help: "steps of the chain, respaced from T [default: T]",
  },
  batch: SAMPLE_BATCH_FLAG,
  seed: { type: "int", default: 0, help: "seed of the x_t draws and of the pictures" },
  variance: {
    type: "string",
    choices: ["beta", "betaTilde"],
    help: "reverse variance sigma_t^2 [default: the training run's]",
  },
  "bpd-convention": {
    type: "string",
    default: "exact",
    choices: ["exact", "reference"],
    help: "bound terms: exact (paper eq. 13, exact CDF) or reference (DDPM / improved-diffusion " +
      "code: decoder variance betaTilde_2, clipped x0-hat, tanh CDF clamped at 1e-12)",
  },
  "progressive-seeds": {
    type: "string",
    default: "0-7",
    help: "seeds of the progressive generation rows",
  },
  weights: WEIGHTS_FLAG,
  "out-dir": {
    type: "string",
    path: "file",
    help: "output folder [default: <checkpoint folder>/eval]",
  },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "eval:ddpm",
  summary: "Measures a train:ddpm model's variational bound in bits/dim on held-out images (the\n" +
    "last --n of the dataset) with its terms, and writes the rate-distortion plots (SVG), a\n" +
    "progressive-generation strip and an interpolation grid (PNG) and summary.json to --out-dir.\n" +
    "Held out: a run trained on mnist:train is evaluated on mnist:test by default.\n" +
    "The full bound costs T network calls per batch; --steps gives the bound of a shorter chain.",
  examples: [
    "deno task eval:ddpm                                      # full T, 256 held-out digits",
    "deno task eval:ddpm --steps 100 --n 64                   # a quick respaced bound",
    "deno task eval:ddpm --checkpoint runs/ddpm-vlb/checkpoint.safetensors --out-dir out/vlb",
    "deno task eval:ddpm --variance betaTilde --progressive-seeds 0-3",
    "deno task eval:ddpm --bpd-convention reference    # per-term numbers as in the DDPM papers' code",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "eval:ddpm" });
  const progressiveSeeds = parseSeeds(f["progressive-seeds"]!);
  await selectBackend({ backend: f.backend });
  const loaded = await loadDdpm(f.checkpoint!, {
    weights: f.weights as "ema" | "raw",
    task: "eval:ddpm",
  });
  try {
    const { eps, process, denoiser, shape, state } = loaded;
    const steps = f.steps ?? process.T;
    const chain = evalChain(process, steps, "eval:ddpm");
    const variance = (f.variance ?? state.config.variance) as ReverseVariance;
    const n = f.n!;
    const { dataset, first } = await loadHeldOut({
      data: f.data,
      trainedOn: state.config.data,
      shape,
      n,
      task: "eval:ddpm",
    });
    const outDir = f["out-dir"] ?? join(dirname(f.checkpoint!), "eval");
    await prepareOutputFolder(outDir, { flag: "--out-dir", task: "eval:ddpm" });
    const per = shape.reduce((a, b) => a * b, 1);
    const decoder = shape.length === 1 ? "gaussian" : "discretized";

    // The bound, batch by batch; each image's x_t draws come from its own seed.
    const results: DdpmBoundResult[] = [];
    const bar = createProgress({ total: n * steps, label: "bound", unit: "img-step" });
    for (let start = 0; start < n; start += f.batch!) {
      const count = Math.min(f.batch!, n - start);
      const offset = (first + start) * per;
      const x0 = tf.tensor(dataset.images.slice(offset, offset + count * per), [count, ...shape]);
      const seeds = Array.from(
        { length: count },
        (_, i) => f.seed! * 1_000_003 + first + start + i,
      );
      try {
        results.push(
          await ddpmBound(eps, x0, {
            process: chain,
            noise: perImageNoise(seeds),
            variance,
            decoder,
            convention: f["bpd-convention"] as BpdConvention,
            onStep: ({ done }) => bar.update(start * steps + done * count),
          }),
        );
      } finally {
        x0.dispose();
      }
    }
    bar.finish();
    const summary = summarizeDdpmBound(results);
    const curve = rateDistortionCurve(summary);
    const plots = rateDistortionPlots(curve);
    const fmt = (v: number) => v.toFixed(4).padStart(9);
    console.log(
      `bound on the last ${n} images of ${dataset.name}, ${steps} steps (T = ${process.T}), ` +
        `sigma_t^2 = ${variance}, ${f["bpd-convention"]} convention:`,
    );
    console.log(`  prior L_T      ${fmt(summary.prior)} bits/dim`);
    console.log(`  diffusion      ${fmt(summary.diffusion)} bits/dim`);
    console.log(`  decoder L_0    ${fmt(summary.decoder)} bits/dim`);
    console.log(`  total          ${fmt(summary.bitsPerDim)} bits/dim`);
    console.log(`  standard error ${fmt(summary.standardError)} bits/dim`);
    const written: string[] = [];
    const write = async (name: string, text: string) => {
      await writeFileAtomic(join(outDir, name), text);
      written.push(join(outDir, name));
    };
    await write("rate_distortion.svg", plots.distortionVsRate);
    await write("rate_vs_time.svg", plots.rateVsTime);
    await write("distortion_vs_time.svg", plots.distortionVsTime);

    if (shape.length === 3) {
      // Progressive generation: x0-hat along the ancestral chain, one row per seed.
      const noise = perImageNoise(progressiveSeeds);
      const xT = noise.randn([progressiveSeeds.length, ...shape]);
      const progressive = await progressiveGeneration(denoiser, xT, {
        process: chain,
        noise,
        variance,
      });
      const progressivePath = join(outDir, "progressive.png");
      await writeProgressiveStrip(progressivePath, progressive);
      tf.dispose([xT, progressive.x, progressive.frames]);
      written.push(progressivePath);
      // Interpolation between the first two held-out images.
      const a = tf.tensor(dataset.images.slice(first * per, (first + 1) * per), [1, ...shape]);
      const b = tf.tensor(
        dataset.images.slice(
          ((first + 1) % dataset.count) * per,
          ((first + 1) % dataset.count + 1) * per,
        ),
        [1, ...shape],
      );
      try {
        const interp = await ddpmInterpolate(denoiser, a, {
          process: chain,
          other: b,
          seed: f.seed!,
          variance,
        });
        const interpPath = join(outDir, "interpolation.png");
        await writeImageGrid(interpPath, interp.grid, { columns: interp.columns });
        interp.grid.dispose();
        written.push(interpPath);
      } finally {
        tf.dispose([a, b]);
      }
    }
    const json = {
      checkpoint: f.checkpoint,
      data: dataset.name,
      heldOut: { first, count: n },
      T: process.T,
      steps,
      variance,
      decoder,
      bpdConvention: f["bpd-convention"],
      bitsPerDim: summary.bitsPerDim,
      prior: summary.prior,
      diffusion: summary.diffusion,
      decoderTerm: summary.decoder,
      standardError: summary.standardError,
      rateDistortion: curve,
    };
    await write("summary.json", JSON.stringify(json, null, 2) + "\n");
    for (const path of written) console.log(`wrote ${path}`);
  } finally {
    loaded.dispose();
  }
});
