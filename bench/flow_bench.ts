/**
 * flow-bench: a small Glow's training step (img/s) in this project beside a PyTorch
 * implementation of the same architecture with the same parameter count (bench/flow_torch.py),
 * in one run, interleaved round by round so both see the same machine load; the ratio is
 * ours / PyTorch. With `--train-steps N`, both also train N steps on the same MNIST images
 * (same batch, learning rate, warm-up and clipping) and report the bits/dim of mnist:test, for
 * each seed of `--seeds`. The two runs differ in initial weights, batch order and noise draws, and
 * at lr 1e-3 both show loss spikes of 1-8 bits/dim early on, so one seed's test figure varies by
 * several tenths run to run (the printed `stdError` is over test images, not over runs): compare
 * the means over several seeds (`sd` is their spread). The deterministic check of the numerics
 * is bench/flow_parity.ts (identical weights and batches).
 *
 * Usage:
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run bench/flow_bench.ts
 *   [--quick] [--threads 2] [--rounds 3] [--arch glow-mnist] [--batch 64] [--train-steps 0]
 *   [--no-torch] [--json] [--seeds 0,1,2,3]
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
import { FLOW_TRAIN_PRESETS, type FlowTrainConfig } from "../training/flow_config.ts";
import { flowSpecFor } from "../training/flow_model_spec.ts";
import { flowLoss } from "../training/flow_loss.ts";
import { createAdam } from "../training/adam.ts";
import { createEma } from "../training/ema.ts";
import { optimizerStep } from "../training/run_loop.ts";
import { trainFlow } from "../training/train_flow.ts";
import { loadFlow } from "../training/load_flow.ts";
import { flowBitsPerDim } from "../eval/flow_bits_per_dim.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "3" },
    arch: { type: "string", default: "glow-mnist" },
    batch: { type: "string", default: "64" },
    "train-steps": { type: "string", default: "0" },
    "no-torch": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    seeds: { type: "string", default: "0" },
  },
});
const ROOT = new URL("..", import.meta.url).pathname;
const threads = Number(flags.threads);
const rounds = flags.quick ? 1 : Number(flags.rounds);
const iters = flags.quick ? 3 : 8;
const batch = flags.quick ? 16 : Number(flags.batch);
const archName = flags.arch as FlowArchName;
const arch = FLOW_ARCHS[archName];
if (!arch || arch.kind !== "glow") {
  throw new Error(`--arch must name a Glow of FLOW_ARCHS, got ${flags.arch}`);
}
const shape: [number, number, number] = [28, 28, 1];
const torchOk = !flags["no-torch"] &&
  (await new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" })
      .output().catch(() => ({ code: 1 })))
      .code === 0;

await selectBackend({ backend: "wasm", log: () => {} });
const log = (m: string) => flags.json || console.error(m);

// Our training step: dequantized bits/dim, gradients, clipping, Adam, EMA (as trainFlow runs it).
async function timeOurs(): Promise<{ imgPerSec: number; median: number; params: number }> {
  const model = createFlow(arch, shape);
  const params = model.init(new Rng(0));
  const spec = flowSpecFor(arch, { shape }, 256);
  const rng = new Rng(1);
  const k = Float32Array.from({ length: batch * 784 }, () => rng.int(256) / 127.5 - 1);
  const x = tf.tensor4d(k, [batch, ...shape]);
  model.initialize(
    params,
    tf.tidy(() =>
      tf.sub(tf.div(tf.add(tf.mul(tf.add(x, 1), 127.5), 0.5), 256), 0.5)
    ) as tf.Tensor4D,
  );
  const adam = createAdam(params), ema = createEma(params);
  const trainable = Object.values(params).filter((v) => v.trainable);
  const cfg = FLOW_TRAIN_PRESETS.mnist;
  const step = async () => {
    const { value, grads } = tf.variableGrads(
      () => tf.mean(flowLoss(model, params, x, { spec, rng })),
      trainable,
    );
    const named: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    await value.data();
    value.dispose();
    optimizerStep({ adam, ema, params }, { grads: named, imagesBefore: 1e9, size: batch }, cfg);
  };
  await step();
  await step();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await step();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return {
    imgPerSec: batch / times[0],
    median: batch / times[times.length >> 1],
    params: trainable.reduce((a, v) => a + v.size, 0),
  };
}

async function torch(args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      join(ROOT, "bench", "flow_torch.py"),
      "--threads",
      String(threads),
      "--levels",
      String(arch.levels),
      "--steps",
      String((arch as { steps: number }).steps),
      "--hidden",
      String(arch.hidden),
      "--batch",
      String(batch),
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (out.code !== 0) {
    throw new Error(`flow_torch.py failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
  }
  return JSON.parse(text);
}

const ours: number[] = [],
  oursMedian: number[] = [],
  theirs: number[] = [],
  theirsMedian: number[] = [];
let oursParams = 0, torchParams = 0;
for (let r = 0; r < rounds; r++) {
  const o = await timeOurs();
  ours.push(o.imgPerSec), oursMedian.push(o.median), oursParams = o.params;
  log(`round ${r + 1}: ours ${o.imgPerSec.toFixed(1)} img/s`);
  if (torchOk) {
    const t = await torch(["--mode", "time", "--iters", String(iters)]);
    theirs.push(t.imgPerSec as number),
      theirsMedian.push(t.medianImgPerSec as number),
      torchParams = t.params as number;
    log(`round ${r + 1}: PyTorch ${(t.imgPerSec as number).toFixed(1)} img/s`);
  }
}
const best = (xs: number[]) => Math.max(...xs);
const result: Record<string, unknown> = {
  arch: archName,
  batch,
  threads,
  params: { ours: oursParams, torch: torchParams || null },
  trainImgPerSec: { ours: best(ours), torch: theirs.length ? best(theirs) : null },
  medianImgPerSec: {
    ours: best(oursMedian),
    torch: theirsMedian.length ? best(theirsMedian) : null,
  },
  ratio: theirs.length ? best(ours) / best(theirs) : null,
};

const trainSteps = Number(flags["train-steps"]);
if (trainSteps > 0) {
  const dir = await Deno.makeTempDir();
  const train = await loadDataset("mnist:train"), test = await loadDataset("mnist:test");
  const toBytes = (a: Float32Array) => Uint8Array.from(a, (v) => Math.round((v + 1) * 127.5));
  await Deno.writeFile(join(dir, "train.u8"), toBytes(train.images));
  await Deno.writeFile(join(dir, "test.u8"), toBytes(test.images));
  const tail = (xs: number[]) => xs.slice(-20).reduce((a, b) => a + b, 0) / Math.min(20, xs.length);
  const runs: Record<string, unknown>[] = [];
  for (const seed of flags.seeds.split(",").map(Number)) {
    const config: FlowTrainConfig = {
      ...FLOW_TRAIN_PRESETS.mnist,
      arch,
      batchSize: batch,
      kimg: trainSteps * batch / 1000,
      checkpointKimg: 1e9,
      sampleKimg: 1e9,
      maxMinutes: 0,
      seed,
    };
    const curve: number[] = [];
    const t0 = performance.now();
    const runDir = join(dir, `run${seed}`);
    await trainFlow(config, {
      runDir,
      progress: false,
      log: () => {},
      onStep: (s) => curve.push(s.loss),
    });
    const seconds = (performance.now() - t0) / 1000;
    const loaded = await loadFlow(join(runDir, "checkpoint.safetensors"), { weights: "raw" });
    const bpd = await flowBitsPerDim(loaded.model, loaded.params, test.images, {
      spec: loaded.spec,
      rng: new Rng(0),
    });
    loaded.dispose();
    const run: Record<string, unknown> = {
      seed,
      ours: { testBpd: bpd.mean, stdError: bpd.stdError, lastTrainBpd: tail(curve), seconds },
    };
    if (torchOk) {
      const t = await torch([
        "--mode",
        "train",
        "--data",
        join(dir, "train.u8"),
        "--test",
        join(dir, "test.u8"),
        "--train-steps",
        String(trainSteps),
        "--lr",
        String(config.lr),
        "--rampup-images",
        String(config.lrRampupKimg * 1000),
        "--clip",
        String(config.clipGradNorm),
        "--seed",
        String(seed),
      ]);
      run.torch = {
        testBpd: t.testBpd,
        stdError: t.testBpdStdError,
        lastTrainBpd: tail(t.curve as number[]),
        seconds: t.trainSeconds,
      };
    }
    log(`seed ${seed}: ${JSON.stringify(run)}`);
    runs.push(run);
  }
  const over = (who: "ours" | "torch") => {
    const v = runs.map((r) => (r[who] as { testBpd: number } | undefined)?.testBpd)
      .filter((x): x is number => x !== undefined);
    if (v.length === 0) return null;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length - 1));
    return { meanTestBpd: mean, sd, seeds: v.length };
  };
  const e2e: Record<string, unknown> = { steps: trainSteps, ours: over("ours"), runs };
  if (torchOk) e2e.torch = over("torch");
  result.endToEnd = e2e;
  await Deno.remove(dir, { recursive: true });
}

if (flags.json) {
  console.log(JSON.stringify(result));
} else {
  const f = (v: unknown) => (typeof v === "number" ? v.toFixed(2) : "-");
  console.log(
    `flow-bench: ${archName} (${oursParams} trainable parameters; PyTorch ${
      torchParams || "-"
    }), batch ${batch}, ${threads} threads`,
  );
  console.log(
    `  training img/s  ours ${f(result.trainImgPerSec && best(ours))}  PyTorch ${
      f(theirs.length ? best(theirs) : null)
    }  ratio ours/PyTorch ${f(result.ratio)}`,
  );
  if (result.endToEnd) console.log(`  end to end: ${JSON.stringify(result.endToEnd)}`);
}
