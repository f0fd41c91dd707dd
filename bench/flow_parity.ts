/**
 * flow-parity: the identical-weights check of our Glow against the PyTorch implementation of the
 * same architecture (bench/flow_torch.py, driven by bench/flow_parity.py). Both start from OUR
 * initial weights (after ActNorm's data-dependent init on 256 training digits) and train the
 * same `--train-steps` steps on the same dequantized MNIST batches with the same Adam, warm-up
 * (`lrRampupKimg`) and global-norm clip, ours through `optimizerStep` of the shared loop. Prints
 * the loss of both every `--every` steps, the first step whose losses differ by more than 1e-3,
 * and the largest relative difference between the two final weights. Matching losses mean the
 * forward pass (log-dets, priors, the -D log 256 term), the gradients and the optimizer agree;
 * after about 100 steps at lr 1e-3 float32 rounding differences are amplified (training is
 * chaotic there: both show the same kind of loss spikes), so use a short `--train-steps` for
 * the weight comparison.
 *
 * Usage:
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run bench/flow_parity.ts
 *   [--arch glow-mnist] [--batch 32] [--train-steps 60] [--clip 500] [--lr-rampup 5]
 *   [--threads 2] [--every 10]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { createFlow, FLOW_ARCHS, type FlowArchName } from "../flows/presets.ts";
import { dequantize, flowInputOf } from "../flows/image_likelihood.ts";
import { FLOW_TRAIN_PRESETS } from "../training/flow_config.ts";
import { createAdam } from "../training/adam.ts";
import { createEma } from "../training/ema.ts";
import { gradientNorm, optimizerStep } from "../training/run_loop.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    arch: { type: "string", default: "glow-mnist" },
    batch: { type: "string", default: "32" },
    "train-steps": { type: "string", default: "60" },
    clip: { type: "string", default: String(FLOW_TRAIN_PRESETS.mnist.clipGradNorm) },
    "lr-rampup": { type: "string", default: String(FLOW_TRAIN_PRESETS.mnist.lrRampupKimg) },
    threads: { type: "string", default: "2" },
    every: { type: "string", default: "10" },
  },
});
const arch = FLOW_ARCHS[flags.arch as FlowArchName];
if (!arch || arch.kind !== "glow") {
  throw new Error(`--arch must name a Glow of FLOW_ARCHS, got ${flags.arch}`);
}
const batch = Number(flags.batch), steps = Number(flags["train-steps"]);
const config = {
  ...FLOW_TRAIN_PRESETS.mnist,
  clipGradNorm: Number(flags.clip),
  lrRampupKimg: Number(flags["lr-rampup"]),
};
await selectBackend({ backend: "wasm", log: () => {} });
const shape: [number, number, number] = [28, 28, 1];
const model = createFlow(arch, shape);
const params = model.init(new Rng(0));
const train = await loadDataset("mnist:train");
const noiseRng = new Rng(5);
// Dequantized flow inputs of the digits [first, first + n).
const inputs = (first: number, n: number): tf.Tensor4D =>
  tf.tidy(() => {
    const k = tf.tensor4d(train.images.slice(first * 784, (first + n) * 784), [n, ...shape]);
    const u = tf.tensor4d(noiseRng.fillUniform(new Float32Array(n * 784)), [n, ...shape]);
    return flowInputOf(dequantize(k, u)).x;
  });
const dump = async () =>
  Object.fromEntries(
    await Promise.all(
      Object.entries(params).map(async ([k, v]) => [
        k,
        { shape: v.shape, data: Array.from(await v.data()) },
      ]),
    ),
  );
const initBatch = inputs(0, 256);
model.initialize(params, initBatch);
initBatch.dispose();
const start = await dump();

const adam = createAdam(params), ema = createEma(params);
const trainable = Object.values(params).filter((v) => v.trainable);
const xs = new Float32Array(steps * batch * 784);
const losses: number[] = [], norms: number[] = [];
for (let s = 0; s < steps; s++) {
  const x = inputs(1000 + s * batch, batch);
  xs.set(await x.data() as Float32Array, s * batch * 784);
  const { value, grads } = tf.variableGrads(
    () =>
      tf.mean(
        tf.div(tf.sub(784 * Math.log(256), model.logProb(params, x)), 784 * Math.LN2),
      ) as tf.Scalar,
    trainable,
  );
  const named: Record<string, tf.Tensor> = {};
  for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
  losses.push((await value.data())[0]);
  norms.push(await gradientNorm(named));
  tf.dispose([value, x]);
  optimizerStep(
    { adam, ema, params },
    { grads: named, imagesBefore: s * batch, size: batch },
    config,
  );
}

const dir = await Deno.makeTempDir();
await Deno.writeFile(join(dir, "x.f32"), new Uint8Array(xs.buffer));
await Deno.writeTextFile(
  join(dir, "run.json"),
  JSON.stringify({
    ...arch,
    threads: Number(flags.threads),
    batch,
    trainSteps: steps,
    config,
    start,
    final: await dump(),
  }),
);
const here = new URL(".", import.meta.url).pathname;
const out = await new Deno.Command("/usr/bin/python3", {
  args: [join(here, "flow_parity.py"), join(dir, "run.json"), join(dir, "x.f32")],
  stdout: "piped",
  stderr: "piped",
}).output();
await Deno.remove(dir, { recursive: true });
if (out.code !== 0) {
  throw new Error(`flow_parity.py failed: ${new TextDecoder().decode(out.stderr).slice(-800)}`);
}
const torch = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!) as {
  losses: number[];
  gradNorms: number[];
  finalRelDiff: Record<string, number>;
};
const every = Number(flags.every);
console.log(
  `flow-parity: ${flags.arch}, batch ${batch}, ${steps} steps, clip ${config.clipGradNorm}`,
);
console.log("step  ours bits/dim  PyTorch  |diff|   grad norm ours / PyTorch");
for (let s = 0; s < steps; s++) {
  if (s % every !== 0 && s !== steps - 1) continue;
  const [a, b] = [losses[s], torch.losses[s]];
  console.log(
    `${String(s).padStart(4)}  ${a.toFixed(4).padStart(13)}  ${b.toFixed(4)}  ${
      Math.abs(a - b).toExponential(1)
    }  ${norms[s].toFixed(3)} / ${torch.gradNorms[s].toFixed(3)}`,
  );
}
const firstOff = losses.findIndex((l, s) => Math.abs(l - torch.losses[s]) > 1e-3);
const worst = Object.entries(torch.finalRelDiff).sort((a, b) => b[1] - a[1])[0];
console.log(`first step with |loss diff| > 1e-3: ${firstOff < 0 ? "none" : firstOff}`);
console.log(
  `largest relative difference of the final weights: ${worst[1].toExponential(2)} (${worst[0]})`,
);
