/**
 * DiNof's Table 1 in miniature on MNIST (shared/papers/dinof.txt, Section 4.2.1): for T_m in
 * {0.1, ..., 1.0}, a flow prior at T_m for one frozen score model (the two-stage mode of
 * `trainDinof`), sampled with the PC sampler (reverse diffusion + Langevin, snr 0.16) from T_m
 * in round(T_m N) steps; beside it the plain PC sampler from T = 1 with N steps on the same score
 * model (DiNof at T_m = T with the prior N(0, sigma(T)^2 I) as its flow, which is the same
 * sampler seed for seed). Sample quality is the Frechet distance and Inception Score of the
 * built-in MNIST classifier (`eval/mnist_classifier.ts`) against held-out digits; NFE counts
 * score evaluations per image (each DiNof image adds one flow pass).
 *
 * The paper trains a DiNof model per T_m jointly (CIFAR-10, 500k iterations, N = 1000); here the
 * score model is shared (a `train:sde` / `train:edm` checkpoint, or a short `train:sde` VP run
 * made here) and only the flows are trained, so the rows differ only in T_m and the flow.
 *
 * ```sh
 * deno run -A recipes/dinof_tm_sweep.ts --score-checkpoint runs/sde-mnist/checkpoint.safetensors
 * deno run -A recipes/dinof_tm_sweep.ts --N 20 --samples 200 --flow-kimg 2   # minutes
 * ```
 * Writes `<out>/tm-<T_m>/` (flow runs, resumed when present, and a sample grid),
 * `<out>/table1.json`, `<out>/fd_vs_tm.svg` and `<out>/fd_vs_nfe.svg`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { Rng } from "../core/rng.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { writeImageGrid } from "../data/png.ts";
import { linePlotSvg } from "../data/svg_plot.ts";
import { loadMnistClassifier } from "../eval/mnist_classifier.ts";
import { extractFeatures } from "../eval/evaluate.ts";
import { featureStats } from "../eval/feature_stats.ts";
import { frechetDistance } from "../eval/frechet.ts";
import { inceptionScore } from "../eval/inception_score.ts";
import { dinofLikelihood } from "../eval/dinof_likelihood.ts";
import { sdeLikelihood } from "../eval/sde_likelihood.ts";
import { createDinofFlow, type DinofModel, dinofModel, setAffineFlow } from "../models/dinof.ts";
import { generateSamples } from "../samplers/generate.ts";
import { dinofSampler, dinofSteps } from "../samplers/dinof_sampler.ts";
import { langevinCorrector } from "../samplers/sde_correctors.ts";
import {
  SCORE_SDE_NAMES,
  type ScoreSdeName,
  scoreSdeSchedule,
  sdePriorStd,
} from "../schedules/score_sde.ts";
import { EDM_PRESETS } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";
import { DINOF_FLOW_NAMES, DINOF_PRESETS } from "../training/dinof_config.ts";
import { trainDinof } from "../training/train_dinof.ts";
import { loadDinof } from "../training/load_dinof.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { readMetrics } from "../training/metrics_log.ts";
import { fileExists } from "../training/_loop_utils.ts";
import { CHECKPOINT_FILE } from "../training/run_checkpoint.ts";
import { runTask } from "../tasks/_main.ts";
import { BACKEND_FLAG } from "../tasks/_flags.ts";

const FLAGS = {
  "score-checkpoint": {
    type: "string",
    help: "frozen score model (train:sde / train:edm) [default: train one into <out>/score]",
  },
  "score-kimg": { type: "number", default: 20, gt: 0, help: "length of that score run" },
  sde: { type: "string", default: "vp", choices: SCORE_SDE_NAMES, help: "the process" },
  flow: { type: "string", default: "glow-tiny", choices: DINOF_FLOW_NAMES, help: "flow" },
  "flow-kimg": { type: "number", default: 2, gt: 0, help: "flow training per T_m in kimg" },
  tms: { type: "list", help: "T_m values [default: 0.1,0.2,...,1]" },
  N: { type: "int", default: 20, min: 2, help: "noise scales N (PC from T_m: round(T_m N) steps)" },
  snr: { type: "number", default: 0.16, gt: 0, help: "Langevin signal-to-noise ratio" },
  samples: { type: "int", default: 200, min: 10, help: "samples per row for FD and IS" },
  bpd: {
    type: "int",
    default: 8,
    min: 0,
    help: "held-out digits for bits/dim of the baseline and the --bpd-tms rows (0: skip)",
  },
  "bpd-tms": { type: "list", help: "T_m rows that also get bits/dim [default: 0.6]" },
  reference: { type: "int", default: 1000, min: 10, help: "held-out digits for the FD reference" },
  out: { type: "string", default: "runs/dinof-sweep", help: "output folder" },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "recipes/dinof_tm_sweep.ts",
  summary:
    "DiNof Table 1 in miniature: FD / IS (MNIST classifier) and NFE for T_m = 0.1..1 with\n" +
    "round(T_m N) PC steps from a flow prior, beside plain PC from T = 1 with N steps.",
  examples: [
    "deno run -A recipes/dinof_tm_sweep.ts --score-checkpoint runs/sde-mnist/checkpoint.safetensors",
    "deno run -A recipes/dinof_tm_sweep.ts --N 20 --samples 200 --flow-kimg 2",
    "deno run -A recipes/dinof_tm_sweep.ts --tms 0.4,0.6,1 --N 100 --out runs/sweep-b",
  ],
};

/** One row of the table. */
interface Row {
  /** "pc" (plain PC from T) or "dinof". */
  method: "pc" | "dinof";
  /** Start time of the reverse process (T for the baseline). */
  tm: number;
  /** PC steps. */
  steps: number;
  /** Score evaluations per image. */
  nfe: number;
  /** Frechet distance in MNIST-classifier features. */
  fd: number;
  /** Classifier Inception Score: mean and spread over the splits. */
  isMean: number;
  isStd: number;
  /** The flow's bits/dim on x(T_m) at the end of its training (continuous density). */
  flowBitsPerDim: number | null;
  /** Bits/dim of held-out digits (dequantized) under the row's model, and its standard error. */
  bitsPerDim: number | null;
  bitsPerDimStdError: number | null;
}

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "dinof_tm_sweep" });
  const tms = f.tms ?? Array.from({ length: 10 }, (_, i) => (i + 1) / 10);
  if (!tms.every((t) => t > 0 && t <= 1)) {
    throw new UserError(`dinof_tm_sweep: --tms must lie in (0, 1], got ${tms.join(",")}`);
  }
  await Deno.mkdir(f.out!, { recursive: true });
  await selectBackend({ backend: f.backend });
  const process = f.sde as ScoreSdeName;
  const scoreCheckpoint = f["score-checkpoint"] ?? await trainScore(process);
  const classifier = await loadMnistClassifier();
  const real = await loadDataset("mnist:test");
  const nRef = Math.min(f.reference!, real.count);
  const refFeatures = await extractFeatures(classifier, real.images.subarray(0, nRef * 784), [
    nRef,
    28,
    28,
    1,
  ]);
  const refStats = featureStats(refFeatures.features, {
    dim: classifier.featureDim,
    network: classifier.name,
  });
  const rows: Row[] = [];

  // The baseline: the prior N(0, sigma(T)^2 I) as an affine flow at T_m = T.
  const score = await loadDenoiser(scoreCheckpoint);
  const schedule = scoreSdeSchedule(process);
  const prior = createDinofFlow({ kind: "affine" }, score.shape);
  const priorParams = prior.init(new Rng(0));
  setAffineFlow(priorParams, { mean: 0, std: sdePriorStd(schedule) });
  const baseline = dinofModel({
    denoiser: score.denoiser,
    schedule,
    flow: prior,
    flowParams: priorParams,
    tm: schedule.tMax,
  });
  rows.push(await evaluate(baseline, "pc", null, join(f.out!, "pc-baseline.png")));
  report(rows.at(-1)!);
  tf.dispose(Object.values(priorParams));
  score.dispose();

  for (const tm of tms) {
    const runDir = join(f.out!, `tm-${tm}`);
    const resume = await fileExists(join(runDir, CHECKPOINT_FILE));
    console.error(`T_m = ${tm}: training the flow (${f.flow}, ${f["flow-kimg"]} kimg)`);
    await trainDinof({
      ...DINOF_PRESETS.mnist,
      process,
      tm,
      flow: f.flow!,
      scoreCheckpoint,
      kimg: f["flow-kimg"]!,
      maxMinutes: 0,
      checkpointKimg: 1000,
      sampleKimg: 1000,
      logEvery: 5,
      gridImages: 16,
      gridSteps: f.N!,
    }, { runDir, resume, progress: false });
    const lines = await readMetrics(join(runDir, "metrics.jsonl"));
    const loaded = await loadDinof(join(runDir, CHECKPOINT_FILE));
    rows.push(
      await evaluate(
        loaded.model,
        "dinof",
        lines.at(-1)?.flowBitsPerDim ?? null,
        join(runDir, "sweep-samples.png"),
      ),
    );
    report(rows.at(-1)!);
    loaded.dispose();
  }
  classifier.dispose();

  const path = join(f.out!, "table1.json");
  await writeFileAtomic(
    path,
    JSON.stringify({ settings: { ...f, scoreCheckpoint }, rows }, null, 2) + "\n",
  );
  const dinof = rows.filter((r) => r.method === "dinof");
  const base = rows[0];
  await writeFileAtomic(
    join(f.out!, "fd_vs_tm.svg"),
    linePlotSvg([
      { x: dinof.map((r) => r.tm), y: dinof.map((r) => r.fd), label: "DiNof (round(T_m N) steps)" },
      {
        x: [Math.min(...tms), 1],
        y: [base.fd, base.fd],
        label: `plain PC from T (${base.steps} steps)`,
      },
    ], { title: `FD vs T_m (MNIST, N = ${f.N})`, xLabel: "T_m", yLabel: "FD (MNIST classifier)" }),
  );
  await writeFileAtomic(
    join(f.out!, "fd_vs_nfe.svg"),
    linePlotSvg([
      { x: dinof.map((r) => r.nfe), y: dinof.map((r) => r.fd), label: "DiNof" },
      { x: [base.nfe], y: [base.fd], label: "plain PC from T" },
    ], { title: "FD vs NFE per image", xLabel: "NFE", yLabel: "FD (MNIST classifier)" }),
  );
  console.log(`wrote ${path}, ${join(f.out!, "fd_vs_tm.svg")}, ${join(f.out!, "fd_vs_nfe.svg")}`);

  async function trainScore(name: ScoreSdeName): Promise<string> {
    const runDir = join(f.out!, "score");
    console.error(`training a ${name} score model (${f["score-kimg"]} kimg) into ${runDir}`);
    await trainEdm({
      ...EDM_PRESETS["mnist-uncond"],
      precond: name,
      sde: { weighting: "sigma2" },
      kimg: f["score-kimg"]!,
      maxMinutes: 0,
    }, { runDir, resume: await fileExists(join(runDir, CHECKPOINT_FILE)) });
    return join(runDir, CHECKPOINT_FILE);
  }

  function bitsPerDim(model: DinofModel, method: "pc" | "dinof") {
    const wanted = method === "pc" || (f["bpd-tms"] ?? [0.6]).includes(model.tm);
    const count = wanted ? Math.min(f.bpd!, real.count) : 0;
    // The last held-out digits, apart from the FD reference at the start.
    const images = real.images.subarray((real.count - count) * 784);
    return heldOutBitsPerDim(model, method, images, count);
  }

  async function evaluate(
    model: DinofModel,
    method: "pc" | "dinof",
    flowBitsPerDim: number | null,
    gridPath: string,
  ): Promise<Row> {
    const out = await generateSamples(model.denoiser, {
      seeds: Array.from({ length: f.samples! }, (_, i) => i),
      shape: [28, 28, 1],
      batchSize: 100,
      sampler: dinofSampler(model, {
        numScales: f.N,
        corrector: langevinCorrector({ snr: f.snr }),
      }),
    });
    const n = Math.min(64, f.samples!);
    await writeImageGrid(gridPath, {
      data: out.images.subarray(0, n * 784),
      shape: [n, 28, 28, 1],
    });
    // Samples as images: clipped to [-1, 1] (as the PNGs), then classifier features.
    const m = f.samples!;
    const clipped = out.images.map((v) => Math.max(-1, Math.min(1, v)));
    const e = await extractFeatures(classifier, clipped, [m, 28, 28, 1]);
    const fd = frechetDistance(
      refStats,
      featureStats(e.features, { dim: classifier.featureDim, network: classifier.name }),
    );
    // Ten parts as usual, each of at least ten samples; the spread is over the parts.
    const splits = Math.max(1, Math.min(10, Math.floor(m / 10)));
    const is = inceptionScore(e.logits!, { numClasses: classifier.numClasses, splits });
    const bpd = await bitsPerDim(model, method);
    return {
      ...bpd,
      method,
      tm: model.tm,
      steps: dinofSteps(model.tm, { numScales: f.N!, T: model.schedule.tMax }),
      nfe: out.nfe,
      fd,
      isMean: is.mean,
      isStd: is.std,
      flowBitsPerDim,
    };
  }
});

// The likelihood of the row's model: the score model alone (PF ODE to T, Gaussian prior) for
// the baseline, the PF ODE to T_m and the flow for DiNof; one Rademacher probe per image.
async function heldOutBitsPerDim(
  model: DinofModel,
  method: "pc" | "dinof",
  images: Float32Array,
  count: number,
): Promise<{ bitsPerDim: number | null; bitsPerDimStdError: number | null }> {
  if (count === 0) return { bitsPerDim: null, bitsPerDimStdError: null };
  const x = tf.tensor(images.subarray(0, count * 784), [count, 28, 28, 1]);
  const options = { rng: new Rng(0), numProbes: 1 };
  try {
    const r = method === "pc"
      ? await sdeLikelihood(model.denoiser, x, { ...options, schedule: model.schedule })
      : await dinofLikelihood(model, x, options);
    return { bitsPerDim: r.meanBitsPerDim, bitsPerDimStdError: r.stdErrorBitsPerDim };
  } finally {
    x.dispose();
  }
}

function report(r: Row): void {
  console.error(
    `${r.method === "pc" ? "plain PC" : "DiNof"} T_m ${r.tm}: ${r.steps} steps, NFE ${r.nfe}, ` +
      `FD ${r.fd.toFixed(2)}, IS ${r.isMean.toFixed(2)} +- ${r.isStd.toFixed(2)}` +
      (r.bitsPerDim === null ? "" : `, ${r.bitsPerDim.toFixed(3)} bits/dim`),
  );
}
