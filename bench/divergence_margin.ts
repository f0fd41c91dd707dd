/**
 * How close healthy training comes to the divergence rule (training/divergence.ts): trains a
 * preset for some steps and prints, after the warm-up, the largest ratio of a step's loss (and
 * gradient norm) to the running mean of the earlier ones. The rule stops a run when a ratio is
 * above 10 (loss) or 100 (gradient norm) three steps in a row.
 *
 *   deno run -A bench/divergence_margin.ts toy 400
 *   deno run -A bench/divergence_margin.ts mnist 150
 */
import { selectBackend } from "../core/engine.ts";
import { EDM_PRESETS, type EdmPresetName } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";

const [preset = "toy", stepsText = "300", batchText] = Deno.args;
await selectBackend({ log: () => {} });
const base = EDM_PRESETS[preset as EdmPresetName];
const config = { ...base, batchSize: batchText ? Number(batchText) : base.batchSize };
const runDir = await Deno.makeTempDir();
const records: { loss: number; gradNorm?: number }[] = [];
const t0 = performance.now();
await trainEdm(config, {
  runDir,
  progress: false,
  log: () => {},
  maxSteps: Number(stepsText),
  onStep: (r) => records.push(r),
  divergence: { lossFactor: 1e30, gradFactor: 1e30 },
});
const warmup = 50, window = 50;
let meanLoss = NaN, meanGrad = NaN, maxLoss = 0, maxGrad = 0;
records.forEach((r, i) => {
  if (i >= warmup) {
    maxLoss = Math.max(maxLoss, r.loss / meanLoss);
    maxGrad = Math.max(maxGrad, r.gradNorm! / meanGrad);
  }
  const k = Math.min(i + 1, window);
  meanLoss = Number.isNaN(meanLoss) ? r.loss : meanLoss + (r.loss - meanLoss) / k;
  meanGrad = Number.isNaN(meanGrad) ? r.gradNorm! : meanGrad + (r.gradNorm! - meanGrad) / k;
});
console.log(
  `${preset} batch ${config.batchSize}, ${records.length} steps in ` +
    `${((performance.now() - t0) / 1000).toFixed(0)} s: max loss / running mean ` +
    `${maxLoss.toFixed(2)}, max gradient norm / running mean ${maxGrad.toFixed(2)}`,
);
await Deno.remove(runDir, { recursive: true });
