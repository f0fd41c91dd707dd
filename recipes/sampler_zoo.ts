/**
 * Sampler comparison: Frechet distance against the number of denoiser evaluations (NFE) for
 * every sampler `generateSamples` knows (EDM's Heun, Euler and stochastic sampler, and the
 * k-diffusion family), all on one checkpoint and the same seeds, Karras sigmas (EDM eq. 5,
 * rho = 7, sigma in [0.002, 80]). Writes one SVG with a line per sampler and a JSON table.
 *
 * Checkpoint: a `train:edm` run on a 2-D toy set (default `runs/toy-zoo`, trained here in
 * about a minute if missing: EDM preset "toy" on swiss-roll, 1500 kimg). For 2-D points the FD
 * is the Frechet distance between Gaussian fits of the raw coordinates (no feature network),
 * against all 10,000 training points; the table's "floor" is the FD of `n` data points.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/sampler_zoo.ts \
 *   [runDir=runs/toy-zoo] [outDir=runs/sampler-zoo] [n=2000]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { linePlotSvg } from "../data/svg_plot.ts";
import { featureStats } from "../eval/feature_stats.ts";
import { frechetDistance } from "../eval/frechet.ts";
import { generateSamples, SAMPLER_NAMES, samplingSigmaRange } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { EDM_PRESETS } from "../training/edm_config.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { trainEdm } from "../training/train_edm.ts";

const [runDir = "runs/toy-zoo", outDir = "runs/sampler-zoo", n = "2000"] = Deno.args;
const count = Number(n);
/** Samplers that spend two evaluations per step (all but the last). */
const TWO_PER_STEP = new Set([
  "heun",
  "stochastic",
  "dpm2",
  "dpm2-ancestral",
  "dpmpp-2s-ancestral",
  "dpmpp-sde",
]);
const ONE_STEP_COUNTS = [4, 6, 10, 16, 25, 40];
const TWO_STEP_COUNTS = [3, 4, 6, 9, 13, 21];
const RTOLS = [0.4, 0.2, 0.1, 0.05, 0.02, 0.01];

await selectBackend({});
const checkpoint = join(runDir, "checkpoint.safetensors");
try {
  await Deno.stat(checkpoint);
} catch {
  console.log(`no checkpoint at ${checkpoint}: training a toy model`);
  await trainEdm({ ...EDM_PRESETS.toy, data: "toy:swiss-roll", kimg: 1500 }, { runDir });
}
const loaded = await loadDenoiser(checkpoint);
const data = await loadDataset(loaded.state.config.data);
const dim = data.shape.reduce((a, b) => a * b, 1);
const stats = (x: Float32Array) => featureStats(x, { dim, network: "raw-coordinates" });
const reference = stats(data.images);
const floor = frechetDistance(stats(data.images.subarray(0, count * dim)), reference);
const { sigmaMin, sigmaMax } = samplingSigmaRange(loaded.denoiser);
const seeds = Array.from({ length: count }, (_, i) => i);

const rows: { sampler: string; steps: number; nfe: number; fd: number; rtol?: number }[] = [];
for (const sampler of SAMPLER_NAMES) {
  // Adaptive DPM-Solver picks its own steps: sweep its tolerance instead (atol = rtol / 6.4).
  const adaptive = sampler === "dpm-adaptive";
  const counts = adaptive ? RTOLS : TWO_PER_STEP.has(sampler) ? TWO_STEP_COUNTS : ONE_STEP_COUNTS;
  for (const setting of counts) {
    const steps = adaptive ? 2 : setting;
    const sigmas = karrasSigmas({ numSteps: steps, sigmaMin, sigmaMax });
    const out = await generateSamples(loaded.denoiser, {
      seeds,
      shape: loaded.shape,
      sigmas,
      sampler,
      batchSize: 1000,
      // EDM's stochastic sampler needs churn to differ from Heun; the rest use their defaults.
      ...(sampler === "stochastic" ? { sChurn: 40, sTmin: 0.05, sTmax: 50, sNoise: 1.003 } : {}),
      ...(adaptive ? { rtol: setting, atol: setting / 6.4 } : {}),
    });
    const fd = frechetDistance(stats(out.images), reference);
    rows.push({
      sampler,
      steps: adaptive ? NaN : steps,
      nfe: out.nfe,
      fd,
      ...(adaptive ? { rtol: setting } : {}),
    });
    console.log(
      `${sampler.padEnd(19)} ${
        adaptive ? `rtol ${setting}` : `${String(steps).padStart(3)} steps`
      } ${String(out.nfe).padStart(3)} NFE  FD ${fd.toFixed(5)}`,
    );
  }
}
loaded.dispose();
await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(
  join(outDir, "sampler_zoo.json"),
  JSON.stringify(
    { checkpoint, data: data.name, n: count, floor, sigmaMin, sigmaMax, rows },
    null,
    2,
  ) + "\n",
);
const series = SAMPLER_NAMES.map((s) => {
  const r = rows.filter((row) => row.sampler === s);
  return { x: r.map((row) => row.nfe), y: r.map((row) => row.fd), label: s };
});
await Deno.writeTextFile(
  join(outDir, "sampler_zoo.svg"),
  linePlotSvg(series, {
    width: 800,
    height: 500,
    title: `FD against NFE, ${count} samples, ${data.name} (data floor ${floor.toFixed(4)})`,
    xLabel: "denoiser evaluations (NFE)",
    yLabel: "FD (raw coordinates)",
    logY: true,
    colors: [
      "#1f77b4",
      "#d62728",
      "#2ca02c",
      "#ff7f0e",
      "#9467bd",
      "#8c564b",
      "#e377c2",
      "#7f7f7f",
      "#bcbd22",
      "#17becf",
      "#000000",
      "#aec7e8",
      "#98df8a",
      "#ff9896",
    ],
  }),
);
console.log(
  `data floor FD ${floor.toFixed(5)}; wrote ${
    join(outDir, "sampler_zoo.svg")
  } and sampler_zoo.json`,
);
