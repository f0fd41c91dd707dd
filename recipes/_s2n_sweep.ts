/**
 * Shared by the two S2N sweep recipes: load an EDM checkpoint and the MNIST reference features,
 * then score one (rho, gamma, delta) setting of the S2N backward step (S2N Corollary 1) by FD and
 * classifier IS of its samples.
 *
 * @module
 */
import { selectBackend } from "../core/engine.ts";
import { BACKEND_FLAG, EDM_CHECKPOINT_FLAG } from "../tasks/_flags.ts";
import { Rng } from "../core/rng.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { generateSamples } from "../samplers/generate.ts";
import { s2nSampler } from "../samplers/s2n_generate.ts";
import { s2nSchedule } from "../schedules/s2n_schedules.ts";
import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
import { loadMnistClassifier } from "../eval/mnist_classifier.ts";
import { compareFeatures, type EvaluationReport, extractFeatures } from "../eval/evaluate.ts";

/**
 * The flags both sweep recipes take; `outDir` is the default `--out-dir`.
 *
 * @example
 * ```ts ignore
 * const f = parseFlags(args, sweepFlags("runs/s2n-gamma"), { task: "s2n_gamma_sweep" });
 * ```
 */
export function sweepFlags(outDir: string): {
  checkpoint: typeof EDM_CHECKPOINT_FLAG;
  "out-dir": { type: "string"; default: string; path: "file"; help: string };
  n: { type: "int"; default: number; min: number; help: string };
  steps: { type: "int"; default: number; min: number; help: string };
  backend: typeof BACKEND_FLAG;
} {
  return {
    checkpoint: EDM_CHECKPOINT_FLAG,
    "out-dir": {
      type: "string",
      default: outDir,
      path: "file",
      help: "where the plot and JSON go",
    },
    n: { type: "int", default: 500, min: 2, help: "samples per setting (seeds 0..n-1)" },
    steps: { type: "int", default: 35, min: 1, help: "steps = network evaluations per sample" },
    backend: BACKEND_FLAG,
  };
}

/** What a sweep needs to score settings. */
export interface SweepContext {
  /** Scores one setting with `n` samples at `steps` network evaluations. */
  score(setting: { rho: number; gamma: number; delta: number }): Promise<EvaluationReport>;
  /** Frees the model. */
  dispose(): void;
}

/** Options of {@linkcode openSweep}. */
export interface SweepOptions {
  /** Checkpoint written by train:edm. */
  checkpoint: string;
  /** tfjs backend (see `selectBackend`). @default DIFFUSE_BACKEND, else auto */
  backend?: string;
  /** Samples per setting. */
  n: number;
  /** Steps (= network evaluations) per sample. */
  steps: number;
  /** S2N schedule name. */
  schedule: "vp" | "ve" | "iddpm" | "fm-ot" | "edm";
}

/** Loads everything once; every setting then uses the same seeds 0..n-1. */
export async function openSweep(options: SweepOptions): Promise<SweepContext> {
  await selectBackend({ backend: options.backend });
  const { denoiser, shape, numClasses, dispose } = await loadDenoiser(options.checkpoint);
  const network = await loadMnistClassifier();
  const data = await loadDataset("mnist");
  const reference = await extractFeatures(network, data.images, [data.count, ...data.shape]);
  const schedule = s2nSchedule(options.schedule);
  const times = s2nTimeGrid(schedule, { numSteps: options.steps, endTime: 0 });
  const seeds = Array.from({ length: options.n }, (_, i) => i);
  return {
    async score(setting) {
      const out = await generateSamples(denoiser, {
        seeds,
        shape,
        sampler: s2nSampler({ schedule, times, ...setting }),
        classLabels: numClasses > 0 ? seeds.map((s) => s % numClasses) : undefined,
        numClasses,
      });
      const samples = await extractFeatures(network, out.images, out.shape);
      return compareFeatures(reference, samples, { network, rng: new Rng(0), kidSubsets: 10 });
    },
    dispose,
  };
}
