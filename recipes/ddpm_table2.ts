/**
 * DDPM's Table 2 in miniature on MNIST (Ho et al. 2020, Section 4.2): the same eps-predicting
 * U-Net trained once with `L_simple` (eq. 14) and once with the true variational bound (eq. 5,
 * t importance-sampled as in improved DDPM), then compared on the bound in bits/dim (held-out
 * digits, `eval/ddpm_bound.ts`) and on sample quality: Frechet distance and Inception Score
 * computed with the built-in MNIST classifier in place of Inception (`eval/mnist_classifier.ts`,
 * `eval/frechet.ts`, `eval/inception_score.ts`). The paper's finding: L_simple gives better
 * samples (lower FD, higher IS), the bound gives better bits/dim.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/ddpm_table2.ts --kimg 20
 * ```
 * Runs go to `<out>/simple` and `<out>/vlb` (an existing run there is continued to `--kimg`);
 * the table is printed and written to `<out>/table2.json`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { perImageNoise } from "../core/noise.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { loadDataset } from "../data/load_dataset.ts";
import type { Dataset } from "../data/dataset.ts";
import { respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { generateSamples } from "../samplers/generate.ts";
import { ddpmSampler } from "../samplers/ddpm_generate.ts";
import { ddpmBound, summarizeDdpmBound } from "../eval/ddpm_bound.ts";
import { loadMnistClassifier } from "../eval/mnist_classifier.ts";
import { frechetDistance } from "../eval/frechet.ts";
import { inceptionScore } from "../eval/inception_score.ts";
import { featureStats } from "../eval/feature_stats.ts";
import { quantize8Bit } from "../eval/quantize.ts";
import type { FeatureNetwork, FeatureStats } from "../eval/types.ts";
import { DDPM_PRESETS, type DdpmLossKind, type DdpmTrainConfig } from "../training/ddpm_config.ts";
import { trainDdpm } from "../training/train_ddpm.ts";
import { loadDdpm } from "../training/load_ddpm.ts";
import { fileExists } from "../training/_loop_utils.ts";
import { CHECKPOINT_FILE } from "../training/run_checkpoint.ts";
import { runTask } from "../tasks/_main.ts";

const FLAGS = {
  kimg: { type: "number", default: 10, gt: 0, help: "training length of each run in kimg" },
  T: { type: "int", default: 1000, min: 2, help: "diffusion steps T" },
  n: { type: "int", default: 128, min: 2, help: "held-out digits for bits/dim (the last n)" },
  "bound-steps": { type: "int", default: 100, min: 1, help: "steps of the bound (T: full)" },
  samples: { type: "int", default: 500, min: 10, help: "samples for FD and IS" },
  "sample-steps": { type: "int", default: 100, min: 1, help: "ancestral steps per sample" },
  out: { type: "string", path: "file", default: "runs/ddpm-table2", help: "output folder" },
  classifier: {
    type: "string",
    path: "file",
    help: "MNIST classifier weights [default: eval/weights/mnist_classifier.safetensors]",
  },
  backend: {
    type: "string",
    choices: ["auto", "tensorflow", "wasm", "cpu"],
    help: "tfjs backend (env DIFFUSE_BACKEND)",
  },
} as const;

const HELP = {
  task: "recipes/ddpm_table2.ts",
  usage: "deno run -A recipes/ddpm_table2.ts [flags]",
  summary: "Trains eps prediction with L_simple and with the bound on MNIST, then reports\n" +
    "bits/dim and FD/IS (MNIST classifier features) side by side, as DDPM's Table 2.",
  examples: [
    "deno run -A recipes/ddpm_table2.ts                      # 2 x 10 kimg",
    "deno run -A recipes/ddpm_table2.ts --kimg 2 --n 16 --samples 50 --bound-steps 20",
  ],
};

/** One row of the table. */
interface Row {
  loss: DdpmLossKind;
  kimg: number;
  bitsPerDim: number;
  standardError: number;
  fd: number | null;
  isMean: number | null;
  isStd: number | null;
}

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "ddpm_table2" });
  await selectBackend({ backend: f.backend });
  const dataset = await loadDataset("mnist");
  let classifier: (FeatureNetwork & { dispose(): void }) | null = null;
  try {
    classifier = await loadMnistClassifier(f.classifier);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`FD and IS skipped: ${e.message}`);
  }
  const real = classifier
    ? featuresOf(classifier, dataset.images.subarray(0, f.samples! * 784), dataset.shape).stats
    : null;
  const rows: Row[] = [];
  for (const loss of ["simple", "vlb"] as const) {
    const runDir = join(f.out!, loss);
    const resume = await fileExists(join(runDir, CHECKPOINT_FILE));
    const config: DdpmTrainConfig = {
      ...DDPM_PRESETS.mnist,
      loss,
      T: f.T!,
      kimg: f.kimg!,
      maxMinutes: 0,
    };
    config.gridSteps = Math.min(config.gridSteps, config.T);
    console.error(`training eps prediction with ${loss === "simple" ? "L_simple" : "the bound"}`);
    await trainDdpm(config, { runDir, resume });
    rows.push(await evaluate(join(runDir, CHECKPOINT_FILE), loss, dataset, real, classifier));
  }
  classifier?.dispose();
  const cell = (v: number | null, d: number) => v === null ? "-" : v.toFixed(d);
  console.log("\nObjective            kimg   NLL bits/dim        FD (MNIST clf)   IS (MNIST clf)");
  for (const r of rows) {
    const name = r.loss === "simple" ? "L_simple" : "L (true bound)";
    console.log(
      `${name.padEnd(20)} ${String(r.kimg).padStart(5)}   ` +
        `${r.bitsPerDim.toFixed(3)} +- ${r.standardError.toFixed(3)}   ` +
        `${cell(r.fd, 2).padStart(14)}   ${cell(r.isMean, 2)} +- ${cell(r.isStd, 2)}`,
    );
  }
  const path = join(f.out!, "table2.json");
  await writeFileAtomic(path, JSON.stringify({ settings: f, rows }, null, 2) + "\n");
  console.log(`wrote ${path}`);

  async function evaluate(
    checkpoint: string,
    loss: DdpmLossKind,
    data: Dataset,
    realStats: FeatureStats | null,
    network: FeatureNetwork | null,
  ): Promise<Row> {
    const model = await loadDdpm(checkpoint);
    try {
      const { eps, process, denoiser, shape, state } = model;
      const steps = Math.min(f["bound-steps"]!, process.T);
      const chain = respaceDdpm(process, spaceTimesteps(process.T, { numSteps: steps }));
      const first = data.count - f.n!;
      const x0 = tf.tensor(data.images.subarray(first * 784), [f.n!, ...shape]);
      const seeds = Array.from({ length: f.n! }, (_, i) => first + i);
      const bound = summarizeDdpmBound([
        await ddpmBound(eps, x0, {
          process: chain,
          noise: perImageNoise(seeds),
          variance: state.config.variance,
        }),
      ]);
      x0.dispose();
      let fd: number | null = null, isMean: number | null = null, isStd: number | null = null;
      if (network && realStats) {
        const sampleChain = respaceDdpm(
          process,
          spaceTimesteps(process.T, { numSteps: Math.min(f["sample-steps"]!, process.T) }),
        );
        const out = await generateSamples(denoiser, {
          seeds: Array.from({ length: f.samples! }, (_, i) => i),
          shape,
          sampler: ddpmSampler(sampleChain, { variance: state.config.variance }),
        });
        const gen = featuresOf(network, out.images, data.shape);
        fd = frechetDistance(realStats, gen.stats);
        // Ten parts as usual, each of at least ten samples; the spread is over the parts.
        const splits = Math.max(1, Math.min(10, Math.floor(f.samples! / 10)));
        const is = inceptionScore(gen.logits, { numClasses: network.numClasses, splits });
        isMean = is.mean, isStd = is.std;
      }
      return {
        loss,
        kimg: state.imagesSeen / 1000,
        bitsPerDim: bound.bitsPerDim,
        standardError: bound.standardError,
        fd,
        isMean,
        isStd,
      };
    } finally {
      model.dispose();
    }
  }
});

// Classifier features and logits of images in [-1, 1], 100 at a time, clipped and quantized to
// 8 bits first as every evaluation route does (eval/quantize.ts).
function featuresOf(
  network: FeatureNetwork,
  images: Float32Array,
  shape: readonly number[],
): { stats: FeatureStats; logits: Float32Array } {
  const per = shape.reduce((a, b) => a * b, 1), n = images.length / per;
  const features = new Float32Array(n * network.featureDim);
  const logits = new Float32Array(n * network.numClasses);
  for (let start = 0; start < n; start += 100) {
    const count = Math.min(100, n - start);
    const [feat, logit] = tf.tidy(() => {
      const x = tf.tensor4d(quantize8Bit(images.subarray(start * per, (start + count) * per)), [
        count,
        ...shape,
      ] as [number, number, number, number]);
      const out = network.apply(x);
      return [out.features, out.logits ?? tf.zeros([count, network.numClasses])];
    });
    features.set(feat.dataSync(), start * network.featureDim);
    logits.set(logit.dataSync(), start * network.numClasses);
    tf.dispose([feat, logit]);
  }
  return {
    stats: featureStats(features, { dim: network.featureDim, network: network.name }),
    logits,
  };
}
