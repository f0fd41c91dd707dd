/**
 * `deno task eval`: sample quality of a checkpoint (or a folder of PNGs) against a dataset: FD
 * (FID with Inception-v3 weights), IS (classifier IS with the built-in MNIST network), KID and
 * precision/recall, optionally bits/dim through the probability-flow ODE; `--sweep` repeats the
 * evaluation over numbers of sampler steps and plots the metrics against network evaluations.
 *
 * @module
 */
import { join } from "node:path";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { createProgress } from "../core/progress.ts";
import { Rng } from "../core/rng.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { linePlotSvg } from "../data/svg_plot.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { generateSamples, SAMPLER_NAMES, samplingSigmaRange } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { loadMnistClassifier } from "../eval/mnist_classifier.ts";
import { loadInceptionV3 } from "../eval/inception_v3.ts";
import { compareFeatures, type EvaluationReport, extractFeatures } from "../eval/evaluate.ts";
import { bitsPerDimOf } from "../eval/bits_per_dim.ts";
import { sdeLikelihoodRange } from "../eval/sde_likelihood.ts";
import { type ScoreSdeName, scoreSdeSchedule } from "../schedules/score_sde.ts";
import type { FeatureNetwork } from "../eval/types.ts";
import { runTask } from "./_main.ts";
import { BACKEND_FLAG, SAMPLE_BATCH_FLAG } from "./_flags.ts";

const FLAGS = {
  checkpoint: {
    type: "string",
    default: "runs/edm-mnist/checkpoint.safetensors",
    help: "checkpoint written by train:edm",
  },
  images: { type: "string", help: "evaluate a folder of PNGs instead of sampling a checkpoint" },
  data: { type: "string", default: "mnist", help: "reference dataset (as train:edm --data)" },
  "ref-n": { type: "int", min: 2, help: "reference images used [default: all]" },
  n: { type: "int", default: 1000, min: 2, help: "generated images" },
  seed: { type: "int", default: 0, min: 0, help: "first image seed; also seeds KID subsets" },
  batch: SAMPLE_BATCH_FLAG,
  sampler: { type: "string", default: "heun", choices: SAMPLER_NAMES, help: "sampler" },
  steps: { type: "int", default: 18, min: 1, help: "noise levels N" },
  sweep: { type: "list", help: "evaluate at each of these step counts, e.g. 4,8,12,18" },
  network: {
    type: "string",
    default: "classifier",
    choices: ["classifier", "inception"],
    help: "feature network: built-in MNIST classifier or Inception-v3 (FID)",
  },
  weights: { type: "string", help: "feature network weights [default: the shipped classifier]" },
  "kid-subsets": { type: "int", default: 100, min: 1, help: "KID subsets" },
  "kid-size": { type: "int", default: 1000, min: 2, help: "KID subset size" },
  k: { type: "int", default: 3, min: 1, help: "neighbours for precision/recall" },
  bpd: { type: "int", default: 0, min: 0, help: "also bits/dim on this many reference images" },
  "out-dir": { type: "string", default: "runs/eval", help: "where eval.json and plots go" },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "eval",
  summary: "Evaluates generated images against a dataset: FD, IS, KID, precision/recall (and,\n" +
    "with --bpd, bits/dim). Every report names the sample count and the reference set.",
  examples: [
    "deno task eval                                     # runs/edm-mnist vs MNIST, 1000 samples",
    "deno task eval --sweep 4,6,8,12,18 --n 500         # metrics against network evaluations",
    "deno task eval --images out/images --data mnist    # a folder of PNGs",
    "deno task eval --bpd 64 --n 200",
    "deno task eval --network inception --weights fid_inception.safetensors --data cifar10:/data/cifar",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "eval" });
  await selectBackend({ backend: f.backend });
  const network: FeatureNetwork = f.network === "inception"
    ? await loadInceptionV3(f.weights ?? missingInception())
    : await loadMnistClassifier(f.weights);
  const dataset = await loadDataset(f.data!);
  const refCount = Math.min(f["ref-n"] ?? dataset.count, dataset.count);
  const per = dataset.shape.reduce((a, b) => a * b, 1);
  const refBar = createProgress({ total: refCount, label: "reference", unit: "img" });
  const reference = await extractFeatures(
    network,
    dataset.images.subarray(0, refCount * per),
    [refCount, ...dataset.shape],
    { batchSize: f.batch, onBatch: (d) => refBar.update(d) },
  );
  refBar.finish();
  const rng = new Rng(f.seed!);
  const compare = (samples: Awaited<ReturnType<typeof extractFeatures>>) =>
    compareFeatures(reference, samples, {
      network,
      rng,
      kidSubsets: f["kid-subsets"],
      kidSubsetSize: f["kid-size"],
      k: f.k,
    });
  const refName = `${dataset.name} (${refCount} images)`;
  await Deno.mkdir(f["out-dir"]!, { recursive: true });

  if (f.images) {
    const folder = await loadDataset(`png:${f.images}`);
    const samples = await extractFeatures(network, folder.images, [folder.count, ...folder.shape]);
    const report = await compare(samples);
    printReport(report, `${folder.count} images from ${f.images}`, refName);
    await writeJson(join(f["out-dir"]!, "eval.json"), { reference: refName, report });
    return;
  }

  const loaded = await loadDenoiser(f.checkpoint!);
  const { sigmaMin, sigmaMax } = samplingSigmaRange(loaded.denoiser);
  const seeds = Array.from({ length: f.n! }, (_, i) => f.seed! + i);
  const stepsList = f.sweep ?? [f.steps!];
  const rows: { steps: number; nfe: number; report: EvaluationReport }[] = [];
  for (const steps of stepsList) {
    if (!Number.isInteger(steps) || steps < 1) {
      throw new UserError(`eval: --sweep entries must be positive integers, got ${steps}`);
    }
    const bar = createProgress({
      total: seeds.length,
      label: `sample ${steps} steps`,
      unit: "img",
    });
    const out = await generateSamples(loaded.denoiser, {
      seeds,
      shape: loaded.shape,
      sigmas: karrasSigmas({ numSteps: steps, sigmaMin, sigmaMax }),
      sampler: f.sampler as typeof SAMPLER_NAMES[number],
      batchSize: f.batch,
      classLabels: loaded.numClasses > 0 ? seeds.map((s) => s % loaded.numClasses) : undefined,
      numClasses: loaded.numClasses,
      onBatch: (d) => bar.update(d),
    });
    bar.finish({ nfe: out.nfe });
    const report = await compare(await extractFeatures(network, out.images, out.shape));
    printReport(
      report,
      `${seeds.length} samples, ${f.sampler} ${steps} steps (${out.nfe} NFE)`,
      refName,
    );
    rows.push({ steps, nfe: out.nfe, report });
  }
  let bpd;
  if (f.bpd! > 0) {
    const count = Math.min(f.bpd!, dataset.count);
    // The last images of the set: with MNIST's fixed order, digits of every class.
    const x = dataset.images.subarray((dataset.count - count) * per);
    const bar = createProgress({ total: count, label: "bits/dim", unit: "img" });
    // train:sde checkpoints integrate their process's interval [1e-5, 1] (score_sde's).
    const { precond, sde } = loaded.state.config;
    const range = sde || precond === "subvp"
      ? sdeLikelihoodRange(scoreSdeSchedule(precond as ScoreSdeName))
      : {};
    bpd = await bitsPerDimOf(loaded.denoiser, x, [count, ...dataset.shape], {
      ...range,
      rng: new Rng(f.seed!),
      batchSize: f.batch,
      onBatch: (d) => bar.update(d),
    });
    bar.finish();
    console.log(
      `bits/dim: ${bpd.mean.toFixed(4)} +- ${bpd.stdError.toFixed(4)} on the last ${count} ` +
        `images of ${dataset.name} (PF-ODE, RK45, Hutchinson)`,
    );
  }
  await writeJson(join(f["out-dir"]!, "eval.json"), {
    checkpoint: f.checkpoint,
    reference: refName,
    sampler: f.sampler,
    rows,
    bitsPerDim: bpd,
  });
  if (rows.length > 1) {
    const nfe = rows.map((r) => r.nfe);
    const svg = linePlotSvg([{ x: nfe, y: rows.map((r) => r.report.fd), label: "FD" }], {
      title: `FD (${network.name}) against network evaluations, ${seeds.length} samples`,
      xLabel: "network evaluations (NFE)",
      yLabel: "FD",
      logY: true,
    });
    const path = join(f["out-dir"]!, "sweep_fd.svg");
    await writeFileAtomic(path, svg);
    console.log(`wrote ${path} and ${join(f["out-dir"]!, "eval.json")}`);
  }
  loaded.dispose();
});

function printReport(r: EvaluationReport, what: string, reference: string): void {
  const is = r.is ? `IS ${r.is.mean.toFixed(3)} +- ${r.is.std.toFixed(3)}` : "IS n/a";
  const refIs = r.referenceIs ? ` (reference IS ${r.referenceIs.mean.toFixed(3)})` : "";
  console.log(
    `${what} vs ${reference}, features ${r.network}:\n` +
      `  FD ${r.fd.toFixed(3)} | ${is}${refIs} | KID ${r.kid.mean.toExponential(3)} +- ` +
      `${r.kid.std.toExponential(2)} | precision ${r.precision.toFixed(3)} | recall ${
        r.recall.toFixed(3)
      }`,
  );
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

function missingInception(): never {
  throw new UserError(
    "eval: --network inception needs --weights <fid_inception.safetensors>; convert pytorch-fid's " +
      "weights with recipes/convert_inception.py",
  );
}
