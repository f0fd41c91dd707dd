/**
 * `deno task eval`: sample quality of a checkpoint (or a folder of PNGs) against a dataset: FD
 * (FID with Inception-v3 weights), IS (classifier IS with the built-in MNIST network), KID and
 * precision/recall, optionally bits/dim through the probability-flow ODE; `--sweep` repeats the
 * evaluation over numbers of sampler steps and plots the metrics against network evaluations.
 *
 * With a shard (`--shard i/n` or the scheduler's environment, core/shards.ts) it samples and
 * scores only its slice of the seeds and of the reference set and saves them as
 * `<out-dir>/shard-<i>-of-<n>.safetensors` (eval/feature_shard_file.ts); `deno task eval:merge
 * <out-dir>` then gives the one-process figures. A rerun of a finished shard does nothing.
 *
 * @module
 */
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { createProgress } from "../core/progress.ts";
import { Rng } from "../core/rng.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { linePlotSvg } from "../data/svg_plot.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { denoiserFor } from "./_guidance.ts";
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
import { prepareOutputFolder } from "./_write_samples.ts";
import { BACKEND_FLAG, EDM_CHECKPOINT_FLAG, SAMPLE_BATCH_FLAG, SHARD_FLAGS } from "./_flags.ts";
import { printReport, writeJson } from "./_eval_report.ts";
import { describeDifferences, shardConfig } from "./_shard_config.ts";
import {
  resolveShard,
  type Shard,
  type ShardMode,
  shardName,
  shardPositions,
} from "../core/shards.ts";
import {
  type FeaturePart,
  loadFeatureShard,
  saveFeatureShard,
} from "../eval/feature_shard_file.ts";
import { StatsAccumulator } from "../eval/feature_stats.ts";
import type { Dataset } from "../data/dataset.ts";

const FLAGS = {
  checkpoint: EDM_CHECKPOINT_FLAG,
  images: {
    type: "string",
    path: "file",
    help: "evaluate a folder of PNGs instead of sampling a checkpoint",
  },
  data: {
    type: "string",
    default: "mnist",
    path: "dataset",
    help: "reference dataset (as train:edm --data)",
  },
  "ref-n": { type: "int", min: 2, max: 1_000_000, help: "reference images used [default: all]" },
  n: { type: "int", default: 1000, min: 2, max: 1_000_000, help: "generated images" },
  seed: { type: "int", default: 0, min: 0, help: "first image seed; also seeds KID subsets" },
  batch: SAMPLE_BATCH_FLAG,
  sampler: { type: "string", default: "heun", choices: SAMPLER_NAMES, help: "sampler" },
  steps: { type: "int", default: 18, min: 1, max: 100_000, help: "noise levels N" },
  guidance: {
    type: "number",
    min: 0,
    help:
      "classifier-free guidance scale w (class-conditional checkpoint trained with --cond-drop)",
  },
  sweep: {
    type: "list",
    integer: true,
    min: 1,
    max: 100_000,
    help: "evaluate at each of these step counts, e.g. 4,8,12,18",
  },
  network: {
    type: "string",
    default: "classifier",
    choices: ["classifier", "inception"],
    help: "feature network: built-in MNIST classifier or Inception-v3 (FID)",
  },
  weights: {
    type: "string",
    path: "file",
    help: "feature network weights [default: the shipped classifier]",
  },
  "kid-subsets": { type: "int", default: 100, min: 1, max: 100_000, help: "KID subsets" },
  "kid-size": { type: "int", default: 1000, min: 2, max: 1_000_000, help: "KID subset size" },
  k: { type: "int", default: 3, min: 1, max: 10_000, help: "neighbours for precision/recall" },
  bpd: {
    type: "int",
    default: 0,
    min: 0,
    max: 1_000_000,
    help: "also bits/dim on this many reference images",
  },
  "out-dir": {
    type: "string",
    default: "runs/eval",
    path: "file",
    help: "where eval.json and plots go",
  },
  ...SHARD_FLAGS,
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
    "deno task eval --n 10000 --shard 0/4 --out-dir runs/eval-sharded   # then eval:merge",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "eval" });
  await prepareOutputFolder(f["out-dir"]!, { flag: "--out-dir", task: "eval" });
  const shard = resolveShard(f.shard, Deno.env.toObject());
  if (shard && (f.images || f.sweep || f.bpd! > 0)) {
    throw new UserError(
      `eval: shards sample a checkpoint at one step count; drop --${
        f.images ? "images" : f.sweep ? "sweep" : "bpd"
      } (or run it without a shard)`,
    );
  }
  await selectBackend({ backend: f.backend });
  const network: FeatureNetwork = f.network === "inception"
    ? await loadInceptionV3(f.weights ?? missingInception())
    : await loadMnistClassifier(f.weights);
  if (f.images && (f.sweep || f.bpd! > 0)) {
    throw new UserError(
      `eval: --${f.sweep ? "sweep" : "bpd"} needs a checkpoint to sample; with --images drop it`,
    );
  }
  const dataset = await loadDataset(f.data!);
  checkInput(f.network!, dataset.shape, `the reference set ${f.data}`);
  const refCount = Math.min(f["ref-n"] ?? dataset.count, dataset.count);
  const per = dataset.shape.reduce((a, b) => a * b, 1);
  if (shard) {
    const files = ["checkpoint", "weights"];
    const config = { ...(await shardConfig("eval", f, files)), refCount, backend: tf.getBackend() };
    return await evalShard(shard, f["shard-mode"] as ShardMode, config, {
      network,
      networkFlag: f.network!,
      dataset,
      refCount,
      checkpoint: f.checkpoint!,
      n: f.n!,
      seed: f.seed!,
      steps: f.steps!,
      sampler: f.sampler as typeof SAMPLER_NAMES[number],
      guidance: f.guidance,
      batch: f.batch!,
      outDir: f["out-dir"]!,
    });
  }
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
    checkSameShape(folder.shape, dataset.shape, `the PNGs in ${f.images}`, dataset.name);
    checkInput(f.network!, folder.shape, `the images in ${f.images}`);
    const samples = await extractFeatures(network, folder.images, [folder.count, ...folder.shape]);
    const report = await compare(samples);
    printReport(report, `${folder.count} images from ${f.images}`, refName);
    await writeJson(join(f["out-dir"]!, "eval.json"), { reference: refName, report });
    return;
  }

  const loaded = await loadDenoiser(f.checkpoint!, { task: "eval" });
  checkSameShape(loaded.shape, dataset.shape, `the samples of ${f.checkpoint}`, dataset.name);
  checkInput(f.network!, loaded.shape, `the checkpoint's samples`);
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
    const out = await generateSamples(denoiserFor("eval", loaded, f.guidance), {
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
    const guided = f.guidance === undefined ? "" : `, guidance ${f.guidance}`;
    printReport(
      report,
      `${seeds.length} samples, ${f.sampler} ${steps} steps (${out.nfe} NFE${guided})`,
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
    const { precond, sde } = loaded.state.config as { precond?: string; sde?: unknown };
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
    guidance: f.guidance ?? null,
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

// The built-in classifier reads 28x28 grayscale digits only; Inception-v3 resizes anything.
function checkInput(network: string, shape: readonly number[], what: string): void {
  if (network !== "classifier" || shape.join("x") === "28x28x1") return;
  throw new UserError(
    `eval: the MNIST classifier reads 28x28x1 images, but ${what} are ${shape.join("x")}; ` +
      `use --network inception --weights <fid_inception.safetensors> for other images`,
  );
}

function missingInception(): never {
  throw new UserError(
    "eval: --network inception needs --weights <fid_inception.safetensors>; convert pytorch-fid's " +
      "weights with recipes/convert_inception.py",
  );
}

// Features of images of another size or channel count than the reference mean nothing (and
// fail deep inside the feature network): refuse them with both shapes named.
function checkSameShape(got: number[], want: number[], what: string, reference: string): void {
  if (got.join("x") === want.join("x")) return;
  throw new UserError(
    `eval: ${what} are [${got}] (height, width, channels) but the reference ${reference} is ` +
      `[${want}]; evaluate against a --data of the same size`,
  );
}

/** One shard of an evaluation: its slice of the reference set and of the seeds, saved. */
async function evalShard(
  shard: Shard,
  mode: ShardMode,
  config: Record<string, unknown>,
  o: {
    network: FeatureNetwork;
    networkFlag: string;
    dataset: Dataset;
    refCount: number;
    checkpoint: string;
    n: number;
    seed: number;
    steps: number;
    sampler: typeof SAMPLER_NAMES[number];
    guidance: number | undefined;
    batch: number;
    outDir: string;
  },
): Promise<void> {
  const name = `shard ${shard.index}/${shard.count}`;
  const path = join(o.outDir, `${shardName(shard)}.safetensors`);
  try {
    const done = await loadFeatureShard(path);
    const differs = describeDifferences(done.config, config);
    if (differs) {
      throw new UserError(
        `eval: ${path} holds ${name} of another run (${differs}); use another --out-dir`,
      );
    }
    console.log(`${name} already finished (${path}); nothing to do`);
    return;
  } catch (e) {
    if (!(e instanceof UserError) || !(await missing(path))) throw e;
  }
  const { network, dataset } = o;
  const per = dataset.shape.reduce((a, b) => a * b, 1);
  const refIds = shardPositions(o.refCount, shard, mode);
  const refImages = new Float32Array(refIds.length * per);
  refIds.forEach((r, k) => refImages.set(dataset.images.subarray(r * per, (r + 1) * per), k * per));
  const allSeeds = Array.from({ length: o.n }, (_, i) => o.seed + i);
  const seeds = shardPositions(o.n, shard, mode).map((p) => allSeeds[p]);
  console.log(
    `${name} (${mode}): ${seeds.length} of ${o.n} samples, ${refIds.length} of ${o.refCount} ` +
      `reference images`,
  );
  const reference = await extractFeatures(network, refImages, [refIds.length, ...dataset.shape], {
    batchSize: o.batch,
  });
  const loaded = await loadDenoiser(o.checkpoint, { task: "eval" });
  checkInput(o.networkFlag, loaded.shape, "the checkpoint's samples");
  const { sigmaMin, sigmaMax } = samplingSigmaRange(loaded.denoiser);
  const bar = createProgress({
    total: seeds.length,
    label: `sample ${o.steps} steps`,
    unit: "img",
  });
  const out = seeds.length === 0
    ? { images: new Float32Array(0), shape: [0, ...loaded.shape], nfe: 0 }
    : await generateSamples(denoiserFor("eval", loaded, o.guidance), {
      seeds,
      shape: loaded.shape,
      sigmas: karrasSigmas({ numSteps: o.steps, sigmaMin, sigmaMax }),
      sampler: o.sampler,
      batchSize: o.batch,
      classLabels: loaded.numClasses > 0 ? seeds.map((s) => s % loaded.numClasses) : undefined,
      numClasses: loaded.numClasses,
      onBatch: (d) => bar.update(d),
    });
  bar.finish({ nfe: out.nfe });
  loaded.dispose();
  const samples = await extractFeatures(network, out.images, out.shape, { batchSize: o.batch });
  const part = (x: typeof samples, ids: number[]): FeaturePart => {
    const acc = new StatsAccumulator({ dim: network.featureDim, network: network.name });
    acc.add(x.features);
    return { sums: acc.sums(), features: x.features, logits: x.logits, ids: Int32Array.from(ids) };
  };
  await saveFeatureShard(path, {
    network: network.name,
    featureDim: network.featureDim,
    numClasses: network.numClasses,
    shard,
    config,
    samples: part(samples, seeds),
    reference: part(reference, refIds),
  });
  console.log(
    `${name} finished: wrote ${path}; when all are done: deno task eval:merge ${o.outDir}`,
  );
}

async function missing(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return false;
  } catch {
    return true;
  }
}
