import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { twoMoons } from "../data/toy2d.ts";
import { actNorm } from "../flows/actnorm.ts";
import { createGlow } from "../flows/glow.ts";
import { standardNormalLogProb } from "../flows/multiscale.ts";
import { adamStep, createAdam } from "../training/adam.ts";
import { FLOW_TRAIN_PRESETS, type FlowTrainConfig } from "../training/flow_config.ts";
import { trainFlow } from "../training/train_flow.ts";
import { loadFlow } from "../training/load_flow.ts";
import { gradientNorm, optimizerStep } from "../training/run_loop.ts";
import { createEma } from "../training/ema.ts";
import type { Params } from "../core/params.ts";
import { trainSteps } from "./_train_steps.ts";

await selectBackend({ backend: "wasm", log: () => {} });

// Adam on -mean log p of `loss`, full parameter map, `steps` times.
function fit(
  params: Params,
  loss: () => tf.Scalar,
  steps: number,
  lr: number,
  onStep?: (l: number) => void,
): void {
  const adam = createAdam(params);
  const trainable = Object.entries(params).filter(([, v]) => v.trainable);
  for (let s = 0; s < steps; s++) {
    const { value, grads } = tf.variableGrads(loss, trainable.map(([, v]) => v));
    const named: Record<string, tf.Tensor> = {};
    for (const [k, v] of trainable) named[k] = grads[v.name];
    adamStep(adam, named, { lr });
    onStep?.(value.dataSync()[0]);
    tf.dispose([value, ...Object.values(grads)]);
  }
}

Deno.test("a 1-D affine flow (ActNorm) trained by maximum likelihood matches the closed-form Gaussian fit", () => {
  const rng = new Rng(4);
  const data = Float32Array.from(
    { length: 512 },
    () => 1.5 + 0.4 * rng.normal() + 0.3 * rng.uniform(),
  );
  const mean = data.reduce((a, b) => a + b, 0) / data.length;
  const std = Math.sqrt(data.reduce((a, b) => a + (b - mean) ** 2, 0) / data.length); // ML: 1/N
  const an = actNorm({ name: "an", shape: [1, 1, 1] });
  const params = an.init(new Rng(0));
  const x = tf.tensor4d(data, [512, 1, 1, 1]);
  fit(
    params,
    () =>
      tf.tidy(() => {
        const { y, logdet } = an.forward(params, x);
        return tf.neg(tf.mean(tf.add(standardNormalLogProb(y), logdet))) as tf.Scalar;
      }),
    600,
    0.05,
  );
  // y = (x + b) exp(s) ~ N(0, 1)  <=>  x ~ N(-b, exp(-2 s)).
  assert.ok(
    Math.abs(-params["an.bias"].dataSync()[0] - mean) < 1e-3,
    `mean ${-params["an.bias"].dataSync()[0]} vs ${mean}`,
  );
  assert.ok(Math.abs(Math.exp(-params["an.logs"].dataSync()[0]) - std) < 1e-3, `std vs ${std}`);
});

// Mean log density of `test` under a Gaussian KDE of `train` with bandwidth h (log-sum-exp).
function kdeLogLik(train: Float32Array, test: Float32Array, h: number): number {
  const n = train.length / 2, m = test.length / 2;
  let total = 0;
  const l = new Float64Array(n);
  for (let j = 0; j < m; j++) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      l[i] = -((test[2 * j] - train[2 * i]) ** 2 + (test[2 * j + 1] - train[2 * i + 1]) ** 2) /
        (2 * h * h);
      if (l[i] > max) max = l[i];
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += Math.exp(l[i] - max);
    total += max + Math.log(s / n) - Math.log(2 * Math.PI * h * h);
  }
  return total / m;
}

// Squared MMD with a Gaussian kernel (bandwidth s): 0 iff the distributions are equal.
function mmd2(a: Float32Array, b: Float32Array, s: number): number {
  const k = (x: Float32Array, i: number, y: Float32Array, j: number) =>
    Math.exp(-((x[2 * i] - y[2 * j]) ** 2 + (x[2 * i + 1] - y[2 * j + 1]) ** 2) / (2 * s * s));
  const mean = (x: Float32Array, y: Float32Array, same: boolean) => {
    const n = x.length / 2, m = y.length / 2;
    let t = 0, c = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) if (!same || i !== j) (t += k(x, i, y, j), c++);
    }
    return t / c;
  };
  return mean(a, a, true) + mean(b, b, true) - 2 * mean(a, b, false);
}

Deno.test("Glow on two moons: held-out log-likelihood near a KDE's, and samples far closer to the data than a Gaussian fit", () => {
  const train = twoMoons({ rng: new Rng(1), count: 2000, noise: 0.1 }).images;
  const test = twoMoons({ rng: new Rng(2), count: 500, noise: 0.1 }).images;
  const model = createGlow({ levels: 1, steps: 4, hidden: 32, squeeze: false }, [1, 1, 2]);
  const params = model.init(new Rng(0));
  const X = tf.tensor4d(train, [2000, 1, 1, 2]);
  model.initialize(params, X);
  const rng = new Rng(3);
  let batch: tf.Tensor4D | null = null;
  fit(
    params,
    () => {
      batch?.dispose();
      batch = tf.tidy(() =>
        tf.gather(
          X,
          tf.tensor1d(Int32Array.from({ length: 256 }, () => rng.int(2000)), "int32"),
        ) as tf.Tensor4D
      );
      return tf.neg(tf.mean(model.logProb(params, batch))) as tf.Scalar;
    },
    300,
    5e-3,
  );
  const flowLogLik = tf.tidy(() =>
    tf.mean(model.logProb(params, tf.tensor4d(test, [500, 1, 1, 2]))).dataSync()[0]
  );
  // Scott's rule bandwidth for the KDE: sigma n^(-1/6) in 2-D.
  const sd = Math.sqrt(
    tf.tidy(() => tf.mean(tf.moments(tf.tensor2d(train, [2000, 2]), 0).variance).dataSync()[0]),
  );
  const kde = kdeLogLik(train, test, sd * 2000 ** (-1 / 6));
  // The Gaussian with the data's mean and covariance: its held-out log-likelihood and samples.
  const { mean, variance } = tf.moments(tf.tensor2d(train, [2000, 2]), 0);
  const mu = mean.dataSync(), v = variance.dataSync();
  const gauss = Float32Array.from(
    { length: 1000 },
    (_, i) => mu[i % 2] + Math.sqrt(v[i % 2]) * rng.normal(),
  );
  let gaussLogLik = 0;
  for (let j = 0; j < 500; j++) {
    for (let c = 0; c < 2; c++) {
      gaussLogLik += -0.5 * Math.log(2 * Math.PI * v[c]) -
        (test[2 * j + c] - mu[c]) ** 2 / (2 * v[c]);
    }
  }
  gaussLogLik /= 500;
  assert.ok(flowLogLik > kde - 0.4, `flow ${flowLogLik} vs KDE ${kde} nats per point`);
  assert.ok(flowLogLik > gaussLogLik + 0.3, `flow ${flowLogLik} vs Gaussian ${gaussLogLik}`);
  const samples = model.sample(params, 500, { rng: new Rng(9) });
  const s = samples.dataSync() as Float32Array;
  const flowMmd = mmd2(s, test, 0.3), gaussMmd = mmd2(gauss.subarray(0, 1000), test, 0.3);
  assert.ok(flowMmd < 0.25 * gaussMmd, `MMD^2 flow ${flowMmd} vs Gaussian ${gaussMmd}`);
  tf.dispose([X, samples, mean, variance]);
  (batch as tf.Tensor | null)?.dispose();
});

Deno.test("gradientNorm is the float64 norm over every gradient, on wasm's memory and composed", async () => {
  const rng = new Rng(3);
  const shapes = [[3, 3, 16, 32], [32], [7, 5], [1]];
  const grads = Object.fromEntries(shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    return [`g${i}`, tf.tensor(rng.fillNormal(new Float32Array(n)).map((v) => v * 10 ** i), s)];
  }));
  let sum = 0;
  for (const g of Object.values(grads)) for (const v of g.dataSync()) sum += v * v;
  const fromViews = await gradientNorm(grads);
  assert.ok(Math.abs(fromViews - Math.sqrt(sum)) <= 1e-12 * Math.sqrt(sum), `${fromViews}`);
  // The composed path (other backends) agrees to float32 accuracy.
  await selectBackend({ backend: "cpu", log: () => {} });
  const onCpu = Object.fromEntries(
    Object.entries(grads).map(([k, g]) => [k, tf.tensor(g.dataSync(), g.shape)]),
  );
  const composed = tf.tidy(() =>
    tf.sqrt(Object.values(onCpu).map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)))
  );
  assert.ok(Math.abs(composed.dataSync()[0] - fromViews) <= 1e-5 * fromViews);
  tf.dispose([composed, ...Object.values(onCpu)]);
  await selectBackend({ backend: "wasm", log: () => {} });
  tf.dispose(Object.values(grads));
});

Deno.test("optimizerStep clips the global gradient norm before Adam", async () => {
  const params = { w: tf.variable(tf.tensor1d([0, 0])) };
  const adam = createAdam(params);
  const ema = createEma(params);
  const grads = { w: tf.tensor1d([30, 40]) };
  assert.equal(await gradientNorm(grads), 50);
  optimizerStep({ adam, ema, params }, { grads, imagesBefore: 0, size: 1 }, {
    lr: 0.1,
    lrRampupKimg: 0,
    emaHalfLifeKimg: 1,
    emaRampupRatio: 0.05,
    clipGradNorm: 5,
  });
  // Adam's first step moves each weight by lr * sign(g) whatever the scale; the moment shows the clip.
  assert.ok(Math.abs(adam.m.w.dataSync()[0] - 0.1 * 3) < 1e-6, `${adam.m.w.dataSync()[0]}`);
});

Deno.test("optimizerStep leaves gradients under the clip norm unchanged", () => {
  const params = { w: tf.variable(tf.tensor1d([0, 0])) };
  const adam = createAdam(params);
  const ema = createEma(params);
  // Norm 5 under a clip of 50: Adam's first moment is exactly (1 - beta1) g.
  const grads = { w: tf.tensor1d([3, -4]) };
  optimizerStep({ adam, ema, params }, { grads, imagesBefore: 0, size: 1 }, {
    lr: 0.1,
    lrRampupKimg: 0,
    emaHalfLifeKimg: 1,
    emaRampupRatio: 0.05,
    clipGradNorm: 50,
  });
  assert.deepEqual(Array.from(adam.m.w.dataSync()), [Math.fround(0.3), Math.fround(-0.4)]);
});

const TOY: FlowTrainConfig = {
  ...FLOW_TRAIN_PRESETS.toy,
  arch: { kind: "glow", levels: 1, steps: 2, hidden: 8, squeeze: false },
  batchSize: 64,
  kimg: 1,
  lrRampupKimg: 0.1,
  checkpointKimg: 1000,
  sampleKimg: 1000,
  logEvery: 2,
  gridImages: 64,
  initBatch: 64,
};

const run = (runDir: string, maxSteps: number, resume = false) =>
  trainSteps(trainFlow, TOY, { runDir, maxSteps, resume });

Deno.test("trainFlow: flat tensor count per step, exact resume, ActNorm flags in the checkpoint", async () => {
  const straight = await Deno.makeTempDir(), split = await Deno.makeTempDir();
  const a = await run(straight, 8);
  assert.equal(new Set(a.tensors.slice(2)).size, 1, `tensor counts ${[...new Set(a.tensors)]}`);
  const b1 = await run(split, 5);
  const b2 = await run(split, 3, true);
  assert.deepEqual([...b1.losses, ...b2.losses], a.losses);
  const loaded = await loadFlow(`${split}/checkpoint.safetensors`, { weights: "raw" });
  assert.equal(loaded.params["level0.step0.actnorm.initialized"].dataSync()[0], 1);
  const before = tf.memory().numTensors;
  const s = loaded.model.sample(loaded.params, 4, { rng: new Rng(0), temperature: 0.7 });
  s.dispose();
  assert.equal(tf.memory().numTensors, before, "sampling leaks nothing");
  loaded.dispose();
  await Deno.remove(straight, { recursive: true });
  await Deno.remove(split, { recursive: true });
});
