/**
 * NDM's Table 4 in miniature on MNIST (NDM paper, Section 4.3): DDPM (the identity F) against
 * NDM (the learned F_phi), both trained on the same NELBO (eq. 9) with the same networks,
 * hyper-parameters and image budget, at T = 10 (trained and evaluated on 10 steps of the
 * 1000-step process) and T = 1000, and the 1000-step models evaluated on 10 steps ("1000 -> 10").
 * Columns: NELBO in bits/dim on held-out digits (`eval/ndm_bound.ts`), and, where a classifier is
 * available, the Frechet distance of MNIST-classifier features for DDPM-style (eta = 1, "FD")
 * and DDIM-style (eta = 0, "FD*") Algorithm 2 samples on the 10-step chains (x_hat clipped to
 * [-1, 1], as `sample:ddpm --clip`, for both models); NLL by the ODE of
 * the deterministic dynamics (`eval/ndm_likelihood.ts`, one Hutchinson probe, `--nll` digits),
 * once per trained model (the ODE does not depend on the evaluation chain).
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/ndm_table4.ts --kimg 2
 * ```
 * Runs go to `<out>/<ddpm|ndm>-<T>` (an existing run is continued to `--kimg`); the table is
 * printed and written to `<out>/table4.json`.
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
import { respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { generateSamples } from "../samplers/generate.ts";
import { ndmSampler } from "../samplers/ndm_ancestral.ts";
import { summarizeDdpmBound } from "../eval/ddpm_bound.ts";
import { ndmBound } from "../eval/ndm_bound.ts";
import { ndmOdeLikelihood } from "../eval/ndm_likelihood.ts";
import { Rng } from "../core/rng.ts";
import { loadMnistClassifier } from "../eval/mnist_classifier.ts";
import { extractFeatures } from "../eval/evaluate.ts";
import { featureStats } from "../eval/feature_stats.ts";
import { frechetDistance } from "../eval/frechet.ts";
import type { FeatureNetwork, FeatureStats } from "../eval/types.ts";
import { NDM_PRESETS, type NdmTrainConfig } from "../training/ndm_config.ts";
import { ndmContinuousSchedule, trainNdm } from "../training/train_ndm.ts";
import { loadNdm } from "../training/load_ndm.ts";
import { fileExists } from "../training/_loop_utils.ts";
import { CHECKPOINT_FILE } from "../training/run_checkpoint.ts";
import { runTask } from "../tasks/_main.ts";

/** The recipe's fixed settings: both models share all of them (spread to override). */
export const NDM_TABLE4 = {
  /** The training run of every model; `transform` and `steps` vary per row. */
  train: {
    ...NDM_PRESETS.mnist,
    channels: 8,
    channelMult: [1, 2],
    batchSize: 32,
    lr: 2e-3,
    lrRampupKimg: 0.5,
    emaHalfLifeKimg: 0.5,
    checkpointKimg: 1000,
    sampleKimg: 1000,
    gridImages: 16,
    maxMinutes: 0,
  },
  /** Training chains: Table 4's T. */
  trainSteps: [10, 1000],
  /** The chain every trained model is also evaluated on ("1000 -> 10"). */
  fewSteps: 10,
} as const satisfies {
  train: NdmTrainConfig;
  trainSteps: readonly number[];
  fewSteps: number;
};

const FLAGS = {
  kimg: { type: "number", default: 2, gt: 0, help: "training length of each run in kimg" },
  n: { type: "int", default: 64, min: 2, help: "held-out digits for the NELBO (the last n)" },
  samples: { type: "int", default: 200, min: 10, help: "samples for FD and FD* (10-step chains)" },
  nll: { type: "int", default: 16, min: 0, help: "held-out digits for the ODE NLL (0: skip)" },
  "skip-1000": { type: "boolean", help: "only the T = 10 rows (two runs instead of four)" },
  out: { type: "string", default: "runs/ndm-table4", help: "output folder" },
  classifier: {
    type: "string",
    help: "MNIST classifier weights [default: eval/weights/mnist_classifier.safetensors]",
  },
  backend: {
    type: "string",
    choices: ["auto", "tensorflow", "wasm", "cpu"],
    help: "tfjs backend (env DIFFUSE_BACKEND)",
  },
} as const;

const HELP = {
  task: "recipes/ndm_table4.ts",
  summary:
    "Trains DDPM (identity F) and NDM (learned F) on the same NELBO on MNIST at T = 10 and\n" +
    "T = 1000 with equal budgets, then reports NELBO (bits/dim, held-out digits) and FD / FD*\n" +
    "(MNIST-classifier features, 10-step DDPM- and DDIM-style sampling), as NDM's Table 4.",
  examples: [
    "deno run -A recipes/ndm_table4.ts                        # 4 x 2 kimg",
    "deno run -A recipes/ndm_table4.ts --skip-1000 --kimg 1 --n 32 --samples 100",
  ],
};

/** One row of the table. */
interface Row {
  model: "DDPM" | "NDM";
  trainedSteps: number;
  evalSteps: number;
  kimg: number;
  nll: number | null;
  nelbo: number;
  standardError: number;
  prior: number;
  diffusion: number;
  reconstruction: number;
  fd: number | null;
  fdStar: number | null;
}

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "ndm_table4" });
  await selectBackend({ backend: f.backend });
  const test = await loadDataset("mnist:test");
  if (f.n! > test.count) throw new UserError(`--n must be at most ${test.count}, got ${f.n}`);
  let classifier: (FeatureNetwork & { dispose(): void }) | null = null;
  try {
    classifier = await loadMnistClassifier(f.classifier);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`FD skipped: ${e.message}`);
  }
  const realStats = classifier
    ? statsOf(
      classifier,
      await extractFeatures(classifier, test.images.slice(0, f.samples! * 784), [
        f.samples!,
        28,
        28,
        1,
      ]),
    )
    : null;
  const rows: Row[] = [];
  const trainSteps = f["skip-1000"] ? [NDM_TABLE4.fewSteps] : NDM_TABLE4.trainSteps;
  for (const steps of trainSteps) {
    for (const transform of ["identity", "learned"] as const) {
      const runDir = join(f.out!, `${transform === "identity" ? "ddpm" : "ndm"}-${steps}`);
      const config: NdmTrainConfig = {
        ...NDM_TABLE4.train,
        channelMult: [...NDM_TABLE4.train.channelMult],
        transform,
        steps,
        gridSteps: Math.min(NDM_TABLE4.fewSteps, steps),
        kimg: f.kimg!,
      };
      console.error(`training ${transform === "identity" ? "DDPM" : "NDM"} with T = ${steps}`);
      const started = performance.now();
      await trainNdm(config, {
        runDir,
        resume: await fileExists(join(runDir, CHECKPOINT_FILE)),
        progress: false,
      });
      console.error(`  trained in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      const evalSteps = steps === NDM_TABLE4.fewSteps ? [steps] : [steps, NDM_TABLE4.fewSteps];
      for (const k of evalSteps) rows.push(await evaluate(join(runDir, CHECKPOINT_FILE), k));
    }
  }
  classifier?.dispose();
  const cell = (v: number | null) => v === null ? "    -" : v.toFixed(2).padStart(6);
  console.log(
    "\nSteps        Model  kimg    NLL  NELBO bits/dim    (prior, diffusion, rec)        FD     FD*",
  );
  for (const r of rows) {
    const steps = r.trainedSteps === r.evalSteps
      ? String(r.trainedSteps)
      : `${r.trainedSteps} -> ${r.evalSteps}`;
    console.log(
      `${steps.padEnd(12)} ${r.model.padEnd(5)} ${r.kimg.toFixed(1).padStart(5)} ` +
        `${cell(r.nll)}  ` +
        `${r.nelbo.toFixed(3)} +- ${r.standardError.toFixed(3)}   ` +
        `(${r.prior.toFixed(3)}, ${r.diffusion.toFixed(3)}, ${r.reconstruction.toFixed(3)})   ` +
        `${cell(r.fd)}  ${cell(r.fdStar)}`,
    );
  }
  const path = join(f.out!, "table4.json");
  await writeFileAtomic(path, JSON.stringify({ settings: f, rows }, null, 2) + "\n");
  console.log(`wrote ${path}`);

  async function evaluate(checkpoint: string, steps: number): Promise<Row> {
    const model = await loadNdm(checkpoint);
    try {
      const { eps, transform, process, denoiser, shape, state } = model;
      const chain = respaceDdpm(process, spaceTimesteps(process.T, { numSteps: steps }));
      const first = test.count - f.n!;
      const x0 = tf.tensor(test.images.slice(first * 784), [f.n!, ...shape]);
      const seeds = Array.from({ length: f.n! }, (_, i) => first + i);
      const bound = summarizeDdpmBound([
        await ndmBound(eps, transform, x0, { process: chain, noise: perImageNoise(seeds) }),
      ]);
      x0.dispose();
      let nll: number | null = null;
      if (f.nll! > 0 && steps === (state.config.steps ?? state.config.T)) {
        const x = tf.tensor(test.images.slice(first * 784, (first + f.nll!) * 784), [
          f.nll!,
          ...shape,
        ]);
        const schedule = ndmContinuousSchedule(process.T);
        const r = await ndmOdeLikelihood({ eps, transform, schedule, T: process.T }, x, {
          rng: new Rng(first),
        });
        nll = r.meanBitsPerDim;
        x.dispose();
      }
      const fds: (number | null)[] = [null, null];
      if (classifier && realStats && steps <= NDM_TABLE4.fewSteps) {
        for (const [j, eta] of [1, 0].entries()) {
          const out = await generateSamples(denoiser, {
            seeds: Array.from({ length: f.samples! }, (_, i) => i),
            shape,
            sampler: ndmSampler(chain, transform, { eta, clipX0: true }),
          });
          const feats = await extractFeatures(classifier, out.images, out.shape);
          fds[j] = frechetDistance(realStats, statsOf(classifier, feats));
        }
      }
      return {
        model: transform.kind === "identity" ? "DDPM" : "NDM",
        trainedSteps: state.config.steps ?? state.config.T,
        evalSteps: steps,
        kimg: state.imagesSeen / 1000,
        nll,
        nelbo: bound.bitsPerDim,
        standardError: bound.standardError,
        prior: bound.prior,
        diffusion: bound.diffusion,
        reconstruction: bound.decoder,
        fd: fds[0],
        fdStar: fds[1],
      };
    } finally {
      model.dispose();
    }
  }
});

function statsOf(network: FeatureNetwork, feats: { features: Float32Array }): FeatureStats {
  return featureStats(feats.features, { dim: network.featureDim, network: network.name });
}
