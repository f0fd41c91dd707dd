import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { countParams, disposeParams } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import { initMlpParams, type MlpConfig, mlpNetwork, resolveMlpConfig } from "../models/mlp.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function randn(shape: number[], rng: Rng): tf.Tensor {
  return tf.tensor(rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
}

Deno.test("mlpNetwork() maps [N, dim] rows to [N, dim] with in/hidden/out linears", () => {
  const config: MlpConfig = { dim: 2, hidden: 16, layers: 3, embedDim: 8 };
  const params = initMlpParams(config, new Rng(0));
  assert.deepEqual(Object.keys(params).sort(), [
    "hidden0.bias",
    "hidden0.weight",
    "hidden1.bias",
    "hidden1.weight",
    "in.bias",
    "in.weight",
    "out.bias",
    "out.weight",
  ]);
  assert.equal(countParams(params), (2 + 8) * 16 + 16 + 2 * (16 * 16 + 16) + 16 * 2 + 2);
  const net = mlpNetwork(config, params);
  const x = tf.zeros([5, 2]), c = tf.zeros([5]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  const y = net(x, c);
  assert.deepEqual(y.shape, [5, 2]);
  // Output layer at 1e-5 scale (SongUNet's init_zero): a fresh network starts near zero.
  assert.ok(tf.tidy(() => tf.max(tf.abs(y)).dataSync()[0]) < 1e-3);
  y.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => net(tf.zeros([5, 3]), c), /expected \[N, 2\]/);
  assert.throws(() => resolveMlpConfig({ dim: 2, embedDim: 3 }), RangeError);
  tf.dispose([x, c]);
  disposeParams(params);
});

Deno.test("mlpNetwork() learns a toy regression F(x, c) = sin(2 x0) + c x1 (loss falls 10x)", () => {
  const config: MlpConfig = { dim: 2, hidden: 64, layers: 2, embedDim: 16 };
  const rng = new Rng(1);
  const params = initMlpParams(config, rng);
  const net = mlpNetwork(config, params);
  const x = randn([128, 2], rng),
    c = tf.tensor1d(Array.from({ length: 128 }, () => rng.uniform() * 2 - 1));
  const target = tf.tidy(() => {
    const [x0, x1] = tf.split(x, 2, 1);
    const t0 = tf.sin(tf.mul(x0, 2));
    const t1 = tf.mul(tf.reshape(c, [-1, 1]), x1);
    return tf.concat([t0, t1], 1);
  });
  const loss = () => tf.mean(tf.square(tf.sub(net(x, c), target))) as tf.Scalar;
  const first = tf.tidy(() => loss().dataSync()[0]);
  const optimizer = tf.train.adam(3e-3);
  for (let step = 0; step < 300; step++) {
    tf.tidy(() => {
      optimizer.minimize(loss, false, Object.values(params));
    });
  }
  const last = tf.tidy(() => loss().dataSync()[0]);
  assert.ok(last < first / 10, `loss ${first} -> ${last}`);
  optimizer.dispose();
  tf.dispose([x, c, target]);
  disposeParams(params);
});

Deno.test("mlpNetwork() uses class labels (zeros when missing) and the Fourier embedding's seed", () => {
  const config: MlpConfig = {
    dim: 2,
    hidden: 8,
    layers: 1,
    embedDim: 4,
    labelDim: 2,
    embedding: "fourier",
  };
  const rng = new Rng(2);
  const params = initMlpParams(config, rng);
  params["out.weight"].assign(randn([8, 2], rng)); // lift the 1e-5 init so outputs differ visibly
  const x = randn([2, 2], rng), c = tf.tensor1d([0.1, -0.4]);
  const net = mlpNetwork(config, params);
  const diff = (a: tf.Tensor, b: tf.Tensor) =>
    tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  const yNone = net(x, c), yZero = net(x, c, { classLabels: tf.zeros([2, 2]) as tf.Tensor2D });
  const yOne = net(x, c, { classLabels: tf.tensor2d([[1, 0], [0, 1]]) });
  const ySeed = mlpNetwork({ ...config, fourierSeed: 3 }, params)(x, c);
  assert.equal(diff(yNone, yZero), 0);
  assert.ok(diff(yNone, yOne) > 1e-3);
  assert.ok(diff(yNone, ySeed) > 1e-3);
  assert.throws(() => net(x, c, { classLabels: tf.zeros([2, 3]) as tf.Tensor2D }), RangeError);
  tf.dispose([x, c, yNone, yZero, yOne, ySeed]);
  disposeParams(params);
});

Deno.test("mlpNetwork() gives the same output on wasm and cpu", async () => {
  const config: MlpConfig = { dim: 3, hidden: 32, layers: 2 };
  const rng = new Rng(4);
  const params = initMlpParams(config, rng);
  params["out.weight"].assign(randn([32, 3], rng));
  const x = randn([6, 3], rng), c = randn([6], rng) as tf.Tensor1D;
  const net = mlpNetwork(config, params);
  const yCpu = net(x, c).dataSync().slice();
  await selectBackend({ backend: "wasm", log: () => {} });
  const yWasm = net(x, c).dataSync().slice();
  await selectBackend({ backend: "cpu", log: () => {} });
  assert.ok(Math.max(...Array.from(yCpu, Math.abs)) > 0.1);
  for (let i = 0; i < yCpu.length; i++) assert.ok(Math.abs(yCpu[i] - yWasm[i]) < 1e-4);
  tf.dispose([x, c]);
  disposeParams(params);
});
