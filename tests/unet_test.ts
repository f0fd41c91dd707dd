import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { countParams, disposeParams, type Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import type { ApplyOptions, Conditioning } from "../core/types.ts";
import { countSpecs } from "../models/param_specs.ts";
import {
  initUNetParams,
  resolveUNetConfig,
  type UNetConfig,
  unetNetwork,
  unetParamSpecs,
} from "../models/unet.ts";
import { UNET_PRESETS } from "../models/unet_presets.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** Two levels (8x8, 4x4), attention at 4x4, class and augment labels, dropout. */
const TINY: UNetConfig = {
  imgResolution: 8,
  inChannels: 2,
  outChannels: 3,
  modelChannels: 8,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
  labelDim: 3,
  augmentDim: 2,
  dropout: 0.2,
};

function randn(shape: number[], rng: Rng, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillNormal(new Float32Array(n)).map((v) => v * scale), shape);
}

function uniformFrom(rng: Rng): (shape: number[]) => tf.Tensor {
  return (shape) =>
    tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
}

/** Replaces the near-zero SongUNet init by O(1) weights so outputs are far from zero. */
function activate(params: Params, rng: Rng): void {
  for (const [name, v] of Object.entries(params)) {
    const fanIn = v.shape.length > 1 ? v.size / v.shape[v.shape.length - 1] : 1;
    const base = name.endsWith("norm0.weight") || /norm\d?\.weight$/.test(name) ? 1 : 0;
    tf.tidy(() => v.assign(tf.add(randn(v.shape, rng, 1 / Math.sqrt(fanIn)), base)));
  }
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Image `i` of a batch, as a batch of one. */
function img(t: tf.Tensor, i: number): tf.Tensor {
  return tf.slice(t, [i], [1]);
}

function inputs(cfg: UNetConfig, n: number, rng: Rng): { x: tf.Tensor4D; c: tf.Tensor1D } {
  const r = cfg.imgResolution;
  return {
    x: randn([n, r, r, cfg.inChannels], rng) as tf.Tensor4D,
    c: randn([n], rng) as tf.Tensor1D,
  };
}

Deno.test("unet-bench preset has exactly 1,592,643 parameters (unet-bench.md)", () => {
  const config = UNET_PRESETS["unet-bench"];
  const specs = unetParamSpecs(config);
  assert.equal(countSpecs(specs), 1_592_643);
  const names = specs.map((s) => s.name);
  // 5 attention blocks: 2 encoder and 3 decoder blocks at 16x16.
  assert.equal(names.filter((s) => s.endsWith(".qkv.weight")).length, 5);
  assert.ok(names.includes("enc.32x32_block0.conv0.weight"));
  assert.ok(names.includes("dec.8x8_block2.skip.weight"));
  const params = initUNetParams(config, new Rng(0));
  assert.equal(countParams(params), 1_592_643);
  disposeParams(params);
});

Deno.test("presets give outputs shaped [N, R, R, outChannels]", async () => {
  await selectBackend({ backend: "wasm", log: () => {} });
  for (const [name, config] of Object.entries(UNET_PRESETS)) {
    const params = initUNetParams(config, new Rng(1));
    const { x, c } = inputs(config, 1, new Rng(2));
    const cond: Conditioning = "augmentDim" in config
      ? { augmentLabels: tf.zeros([1, config.augmentDim]) as tf.Tensor2D }
      : {};
    const y = unetNetwork(config, params)(x, c, cond);
    const r = config.imgResolution;
    assert.deepEqual(y.shape, [1, r, r, config.outChannels], name);
    assert.ok(Number.isFinite(tf.tidy(() => tf.sum(tf.abs(y)).dataSync()[0])), name);
    tf.dispose([x, c, y, cond.augmentLabels]);
    disposeParams(params);
  }
  await selectBackend({ backend: "cpu", log: () => {} });
});

Deno.test("class and augment labels steer the output; missing labels act as zeros", () => {
  const rng = new Rng(3);
  const params = initUNetParams(TINY, rng);
  activate(params, rng);
  const net = unetNetwork(TINY, params);
  const { x, c } = inputs(TINY, 2, rng);
  const labelsA = tf.tensor2d([[1, 0, 0], [0, 1, 0]]),
    labelsB = tf.tensor2d([[0, 0, 1], [0, 1, 0]]);
  const augA = tf.tensor2d([[0.5, -1], [0, 0]]);
  const yA = net(x, c, { classLabels: labelsA });
  const yB = net(x, c, { classLabels: labelsB });
  // Image 0's label changed, image 1's did not: only image 0 moves.
  assert.ok(maxAbsDiff(img(yA, 0), img(yB, 0)) > 1e-3);
  assert.ok(maxAbsDiff(img(yA, 1), img(yB, 1)) < 1e-5);
  const yNone = net(x, c);
  const yZero = net(x, c, { classLabels: tf.zeros([2, 3]) as tf.Tensor2D });
  assert.ok(maxAbsDiff(yNone, yZero) < 1e-6);
  const yAug = net(x, c, { classLabels: labelsA, augmentLabels: augA });
  assert.ok(maxAbsDiff(img(yAug, 0), img(yA, 0)) > 1e-3);
  // map.augment has no bias: zero augment labels equal none (image 1 here).
  assert.ok(maxAbsDiff(img(yAug, 1), img(yA, 1)) < 1e-5);
  assert.throws(() => net(x, c, { classLabels: tf.zeros([2, 4]) as tf.Tensor2D }), RangeError);
  tf.dispose([x, c, labelsA, labelsB, augA, yA, yB, yNone, yZero, yAug]);
  disposeParams(params);
});

Deno.test("gradients reach every parameter, including the near-zero initialized ones", () => {
  const rng = new Rng(4);
  const params = initUNetParams(TINY, rng); // SongUNet init: conv1, proj, out.conv at 1e-5 scale
  const net = unetNetwork(TINY, params);
  const { x, c } = inputs(TINY, 2, rng);
  const cond: Conditioning = {
    classLabels: tf.tensor2d([[1, 0, 0], [0, 0, 1]]),
    augmentLabels: tf.tensor2d([[0.3, -0.2], [1, 0.5]]),
  };
  const target = randn([2, 8, 8, 3], rng);
  const opts: ApplyOptions = { training: true, uniform: uniformFrom(new Rng(5)) };
  const { value, grads } = tf.variableGrads(
    () => tf.sum(tf.mul(net(x, c, cond, opts), target)) as tf.Scalar,
    Object.values(params),
  );
  const byName = new Map(Object.values(params).map((v) => [v.name, v]));
  assert.equal(Object.keys(grads).length, Object.keys(params).length);
  for (const [name, v] of Object.entries(params)) {
    const g = grads[v.name];
    assert.ok(g, `no gradient for ${name}`);
    assert.deepEqual(g.shape, v.shape);
    const norm = tf.tidy(() => tf.norm(g).dataSync()[0]);
    assert.ok(norm > 0 && Number.isFinite(norm), `zero gradient for ${name}`);
  }
  assert.equal(byName.size, Object.keys(params).length);
  tf.dispose([x, c, cond.classLabels, cond.augmentLabels, target, value, ...Object.values(grads)]);
  disposeParams(params);
});

Deno.test("a forward and a gradient step leave no tensors behind", () => {
  const rng = new Rng(6);
  const params = initUNetParams(TINY, rng);
  const net = unetNetwork(TINY, params);
  const { x, c } = inputs(TINY, 2, rng);
  const opts: ApplyOptions = { training: true, uniform: uniformFrom(new Rng(7)) };
  const before = tf.memory().numTensors;
  net(x, c).dispose();
  assert.equal(tf.memory().numTensors, before);
  const { value, grads } = tf.variableGrads(
    () => tf.mean(tf.square(net(x, c, {}, opts))) as tf.Scalar,
    Object.values(params),
  );
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, c]);
  disposeParams(params);
});

Deno.test("wasm and cpu give the same outputs and gradients on a tiny config", async () => {
  const rng = new Rng(8);
  const params = initUNetParams(TINY, rng);
  activate(params, rng);
  const net = unetNetwork(TINY, params);
  const { x, c } = inputs(TINY, 2, rng);
  const cond: Conditioning = {
    classLabels: tf.tensor2d([[0, 1, 0], [1, 0, 0]]),
    augmentLabels: tf.tensor2d([[0.2, 0], [-1, 1]]),
  };
  const run = () => {
    const y = net(x, c, cond);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(net(x, c, cond))) as tf.Scalar,
      Object.values(params),
    );
    const out = {
      y: y.dataSync().slice(),
      g: Object.values(params).map((v) => grads[v.name].dataSync().slice()),
    };
    tf.dispose([y, value, ...Object.values(grads)]);
    return out;
  };
  const cpu = run();
  await selectBackend({ backend: "wasm", log: () => {} });
  const wasm = run();
  await selectBackend({ backend: "cpu", log: () => {} });
  const scale = Math.max(...Array.from(cpu.y, Math.abs));
  assert.ok(scale > 0.1, `outputs should be O(1), got max ${scale}`);
  for (let i = 0; i < cpu.y.length; i++) assert.ok(Math.abs(cpu.y[i] - wasm.y[i]) < 1e-4);
  cpu.g.forEach((g, k) => {
    const gMax = Math.max(...Array.from(g, Math.abs));
    for (let i = 0; i < g.length; i++) {
      assert.ok(Math.abs(g[i] - wasm.g[k][i]) <= 1e-3 * gMax + 1e-6, Object.keys(params)[k]);
    }
  });
  tf.dispose([x, c, cond.classLabels, cond.augmentLabels]);
  disposeParams(params);
});

Deno.test("dropout draws from opts.uniform only when training", () => {
  const rng = new Rng(9);
  const params = initUNetParams(TINY, rng);
  activate(params, rng);
  const net = unetNetwork(TINY, params);
  const { x, c } = inputs(TINY, 1, rng);
  assert.throws(() => net(x, c, {}, { training: true }), TypeError);
  const evalA = net(x, c),
    evalB = net(x, c, {}, { training: false, uniform: uniformFrom(new Rng(1)) });
  assert.ok(maxAbsDiff(evalA, evalB) === 0);
  const t1 = net(x, c, {}, { training: true, uniform: uniformFrom(new Rng(1)) });
  const t1again = net(x, c, {}, { training: true, uniform: uniformFrom(new Rng(1)) });
  const t2 = net(x, c, {}, { training: true, uniform: uniformFrom(new Rng(2)) });
  assert.ok(maxAbsDiff(t1, evalA) > 1e-3);
  assert.ok(maxAbsDiff(t1, t1again) === 0);
  assert.ok(maxAbsDiff(t1, t2) > 1e-3);
  tf.dispose([x, c, evalA, evalB, t1, t1again, t2]);
  disposeParams(params);
});

Deno.test("label dropout drops a row's class label where its uniform draw is below the rate", () => {
  const config = { ...TINY, dropout: 0, labelDropout: 0.5 };
  const rng = new Rng(11);
  const params = initUNetParams(config, rng);
  activate(params, rng);
  const net = unetNetwork(config, params);
  const { x, c } = inputs(config, 1, rng);
  const cond: Conditioning = { classLabels: tf.tensor2d([[0, 1, 0]]) };
  const dropAll = (s: number[]) => tf.zeros(s), keepAll = (s: number[]) => tf.fill(s, 0.99);
  const yLabel = net(x, c, cond), yNone = net(x, c);
  const yDropped = net(x, c, cond, { training: true, uniform: dropAll });
  const yKept = net(x, c, cond, { training: true, uniform: keepAll });
  assert.ok(maxAbsDiff(yLabel, yNone) > 1e-3);
  assert.ok(maxAbsDiff(yDropped, yNone) < 1e-6);
  assert.ok(maxAbsDiff(yKept, yLabel) < 1e-6);
  tf.dispose([x, c, cond.classLabels, yLabel, yNone, yDropped, yKept]);
  disposeParams(params);
});

Deno.test("the Fourier embedding adds no parameters and follows its seed", () => {
  const fourier = { ...TINY, embedding: "fourier" as const, labelDim: 0, augmentDim: 0 };
  assert.equal(
    countSpecs(unetParamSpecs(fourier)),
    countSpecs(unetParamSpecs({ ...fourier, embedding: "positional" })),
  );
  const rng = new Rng(10);
  const params = initUNetParams(fourier, rng);
  activate(params, rng);
  const { x, c } = inputs(fourier, 1, rng);
  const y0 = unetNetwork(fourier, params)(x, c);
  const y0again = unetNetwork(fourier, params)(x, c);
  const y1 = unetNetwork({ ...fourier, fourierSeed: 1 }, params)(x, c);
  assert.equal(maxAbsDiff(y0, y0again), 0);
  assert.ok(maxAbsDiff(y0, y1) > 1e-3);
  tf.dispose([x, c, y0, y0again, y1]);
  disposeParams(params);
});

Deno.test("invalid configs and inputs throw errors that name the fix", () => {
  const base = { ...TINY, imgResolution: 28, channelMult: [1, 2, 2], attnResolutions: [7] };
  assert.equal(resolveUNetConfig(base).imgResolution, 28); // 28, 14, 7
  assert.throws(
    () => resolveUNetConfig({ ...base, imgResolution: 30 }),
    (e: Error) =>
      e instanceof RangeError && /30 does not divide by 2\^\(3 levels - 1\) = 4/.test(e.message),
  );
  assert.throws(
    () => resolveUNetConfig({ ...base, attnResolutions: [16] }),
    /levels are at 28, 14, 7/,
  );
  assert.throws(() => resolveUNetConfig({ ...base, dropout: 1 }), RangeError);
  assert.throws(() => unetParamSpecs({ ...base, modelChannels: 18 }), /GroupNorm cannot split/);
  const params = initUNetParams(TINY, new Rng(0));
  assert.throws(() => unetNetwork({ ...TINY, modelChannels: 16 }, params), /shape/);
  const net = unetNetwork(TINY, params);
  assert.throws(() => net(tf.zeros([1, 8, 8, 3]), tf.zeros([1])), /expected \[N, 8, 8, 2\]/);
  assert.throws(() => net(tf.zeros([2, 8, 8, 2]), tf.zeros([3])), /cNoise/);
  disposeParams(params);
});
