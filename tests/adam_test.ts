import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { loadNativeKernels } from "../core/native/kernels.ts";
import type { Params } from "../core/params.ts";
import {
  adamScalars,
  adamStateTensors,
  adamStep,
  createAdam,
  disposeAdam,
  rampedLearningRate,
  restoreAdam,
} from "../training/adam.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function makeParams(values: Record<string, number[]>): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(values)) out[k] = tf.tidy(() => tf.variable(tf.tensor1d(v)));
  return out;
}

function read(params: Params): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(params)) out[k] = Array.from(v.dataSync());
  return out;
}

function dispose(params: Params): void {
  for (const v of Object.values(params)) v.dispose();
}

function assertClose(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: got ${actual}, expected ${expected}`,
  );
}

for (const [backend, inPlace] of [["cpu", true], ["cpu", false], ["wasm", true]] as const) {
  Deno.test(
    `adamStep() matches Kingma and Ba's Algorithm 1 step by step (${backend}, ${
      inPlace ? "in place" : "kernels"
    })`,
    async () => {
      await selectBackend({ backend, log: () => {} });
      const start = { a: [0.5, -1.25], b: [2] };
      const gradSeq = [
        { a: [0.3, -2], b: [1e-3] },
        { a: [-0.1, 0.5], b: [4] },
        { a: [0.7, 0.2], b: [-0.5] },
        { a: [0, 1], b: [2] },
      ];
      const lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
      const params = makeParams(start);
      const adam = createAdam(params);
      // Float64 textbook reference: bias-corrected moments mHat, vHat.
      const ref = structuredClone(start) as Record<string, number[]>;
      const m: Record<string, number[]> = { a: [0, 0], b: [0] };
      const v: Record<string, number[]> = { a: [0, 0], b: [0] };
      gradSeq.forEach((gs, step) => {
        const t = step + 1;
        for (const k of Object.keys(ref)) {
          ref[k] = ref[k].map((theta, i) => {
            const g = gs[k as "a" | "b"][i];
            m[k][i] = beta1 * m[k][i] + (1 - beta1) * g;
            v[k][i] = beta2 * v[k][i] + (1 - beta2) * g * g;
            const mHat = m[k][i] / (1 - beta1 ** t), vHat = v[k][i] / (1 - beta2 ** t);
            return theta - lr * mHat / (Math.sqrt(vHat) + eps);
          });
        }
        const grads = { a: tf.tensor1d(gs.a), b: tf.tensor1d(gs.b) };
        adamStep(adam, grads, { lr, inPlace });
        tf.dispose(grads);
        const got = read(params);
        for (const k of Object.keys(ref)) {
          ref[k].forEach((x, i) => assertClose(got[k][i], x, 1e-6, `step ${t} ${k}[${i}]`));
        }
      });
      assert.equal(adam.t, gradSeq.length);
      disposeAdam(adam);
      dispose(params);
    },
  );
}

Deno.test("adamStep() first step moves each parameter by about -lr * sign(g)", () => {
  const params = makeParams({ w: [1, 1, 1, 1] });
  const adam = createAdam(params);
  const grads = { w: tf.tensor1d([3, -0.02, 1e-3, -50]) };
  adamStep(adam, grads, { lr: 0.1 });
  const got = Array.from(params.w.dataSync());
  [0.9, 1.1, 0.9, 1.1].forEach((x, i) => assertClose(got[i], x, 1e-5, `w[${i}]`));
  tf.dispose(grads);
  disposeAdam(adam);
  dispose(params);
});

Deno.test("adamStep() minimizes a quadratic", () => {
  const target = [3, -1, 0.5];
  const params = makeParams({ w: [0, 0, 0] });
  const adam = createAdam(params);
  const c = tf.tensor1d(target);
  for (let i = 0; i < 600; i++) {
    const grads = { w: tf.tidy(() => tf.mul(tf.sub(params.w, c), 2)) };
    adamStep(adam, grads, { lr: 0.05 });
    tf.dispose(grads);
  }
  const got = Array.from(params.w.dataSync());
  target.forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-2, `w[${i}] = ${got[i]} vs ${x}`));
  c.dispose();
  disposeAdam(adam);
  dispose(params);
});

Deno.test("rampedLearningRate() follows EDM's linear warm-up in images", () => {
  assert.equal(rampedLearningRate(1e-3, { imagesSeen: 0 }), 0);
  assertClose(rampedLearningRate(1e-3, { imagesSeen: 2.5e6 }), 2.5e-4, 1e-12, "quarter");
  assert.equal(rampedLearningRate(1e-3, { imagesSeen: 2e7 }), 1e-3);
  assert.equal(rampedLearningRate(2e-4, { imagesSeen: 0, rampupImages: 0 }), 2e-4);
  assert.throws(() => rampedLearningRate(1e-3, { imagesSeen: -1 }), RangeError);
  assert.throws(() => rampedLearningRate(-1, { imagesSeen: 0 }), RangeError);
});

Deno.test("adamStep() applies the warm-up: zero rate at zero images, half at half way", () => {
  const params = makeParams({ w: [1] });
  const adam = createAdam(params);
  const grads = { w: tf.tensor1d([5]) };
  assert.equal(adamStep(adam, grads, { lr: 0.1, imagesSeen: 0, rampupImages: 100 }), 0);
  assert.equal(params.w.dataSync()[0], 1);
  assert.equal(adam.t, 1);
  // Step 2 with constant g: mHat / sqrt(vHat) = 1, so the move is the ramped rate 0.05.
  const lr = adamStep(adam, grads, { lr: 0.1, imagesSeen: 50, rampupImages: 100 });
  assertClose(lr, 0.05, 1e-12, "lr");
  assertClose(params.w.dataSync()[0], 0.95, 1e-6, "w");
  tf.dispose(grads);
  disposeAdam(adam);
  dispose(params);
});

Deno.test("adamStep() sanitizes NaN and infinite gradients like torch.nan_to_num", () => {
  const params = makeParams({ w: [1, 1, 1] });
  const adam = createAdam(params);
  const grads = { w: tf.tensor1d([NaN, Infinity, -Infinity]) };
  adamStep(adam, grads, { lr: 0.1 });
  const got = Array.from(params.w.dataSync());
  assert.equal(got[0], 1); // NaN -> 0: no move
  assertClose(got[1], 0.9, 1e-6, "+inf");
  assertClose(got[2], 1.1, 1e-6, "-inf");
  const v = Array.from(adam.v.w.dataSync());
  assertClose(v[1], 0.001 * 1e10, 1e-6, "v of +inf is (1 - beta2) * 1e5^2");
  disposeAdam(adam);

  const raw = createAdam(params, { nanToNum: false });
  adamStep(raw, grads, { lr: 0.1 });
  assert.ok(Number.isNaN(params.w.dataSync()[0]), "without sanitizing NaN propagates");
  tf.dispose(grads);
  disposeAdam(raw);
  dispose(params);
});

Deno.test("adamStep() in place leaves a tensor sharing a parameter's buffer untouched", () => {
  const params = makeParams({ w: [1, 2, 3] });
  const snapshot = tf.clone(params.w); // shares the buffer until one of them is replaced
  const adam = createAdam(params);
  const grads = { w: tf.tensor1d([1, -1, 1]) };
  adamStep(adam, grads, { lr: 0.1 });
  assert.deepEqual([...snapshot.dataSync()], [1, 2, 3]);
  [0.9, 2.1, 2.9].forEach((x, i) => assertClose(params.w.dataSync()[i], x, 1e-6, `w[${i}]`));
  tf.dispose([snapshot, grads.w]);
  disposeAdam(adam);
  dispose(params);
});

Deno.test("restoreAdam() round-trips the state: next steps are identical", () => {
  const start = { a: [0.1, 0.2, 0.3], b: [-1] };
  const pA = makeParams(start), pB = makeParams(start);
  const grad = (i: number) => ({
    a: tf.tensor1d([Math.sin(i), Math.cos(i), 0.1 * i]),
    b: tf.tensor1d([1 / (i + 1)]),
  });
  const adamA = createAdam(pA);
  for (let i = 0; i < 3; i++) {
    const g = grad(i);
    adamStep(adamA, g, { lr: 0.01 });
    tf.dispose(g);
  }
  // Serialize as a checkpoint would: plain arrays and JSON.
  const saved = adamStateTensors(adamA);
  assert.deepEqual(Object.keys(saved).sort(), ["adam.m.a", "adam.m.b", "adam.v.a", "adam.v.b"]);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [k, t] of Object.entries(saved)) tensors[k] = tf.tensor(t.dataSync(), t.shape);
  const scalars = JSON.parse(JSON.stringify(adamScalars(adamA)));
  assert.deepEqual(scalars, { t: 3 });
  for (const k of Object.keys(pA)) pB[k].assign(pA[k]);
  const adamB = restoreAdam(pB, { tensors, scalars });
  tf.dispose(tensors); // the restored state must not depend on the caller's tensors
  for (let i = 3; i < 6; i++) {
    const g = grad(i);
    adamStep(adamA, g, { lr: 0.01 });
    adamStep(adamB, g, { lr: 0.01 });
    tf.dispose(g);
    assert.deepEqual(read(pB), read(pA), `step ${i}`);
  }
  assert.equal(adamB.t, 6);
  assert.throws(
    () => restoreAdam(pB, { tensors: {}, scalars: { t: 0 } }),
    /adam\.m\.a/,
  );
  disposeAdam(adamA);
  disposeAdam(adamB);
  dispose(pA);
  dispose(pB);
});

Deno.test("adamStep() rejects unknown names and shape mismatches", () => {
  const params = makeParams({ w: [1, 2] });
  const adam = createAdam(params);
  const bad = { x: tf.tensor1d([1, 2]) };
  assert.throws(() => adamStep(adam, bad, { lr: 0.1 }), RangeError);
  const wrong = { w: tf.tensor1d([1, 2, 3]) };
  assert.throws(() => adamStep(adam, wrong, { lr: 0.1 }), RangeError);
  assert.throws(() => createAdam(params, { beta1: 1 }), RangeError);
  assert.throws(() => createAdam(params, { eps: 0 }), RangeError);
  tf.dispose([bad.x, wrong.w]);
  disposeAdam(adam);
  dispose(params);
});

Deno.test("Adam leaks no tensors: steps keep the count, dispose frees the moments", () => {
  const before = tf.memory().numTensors;
  const params = makeParams({ a: [1, 2, 3], b: [4] });
  const afterParams = tf.memory().numTensors;
  const adam = createAdam(params);
  assert.equal(tf.memory().numTensors, afterParams + 4);
  const grads = { a: tf.tensor1d([NaN, 1, 2]), b: tf.tensor1d([3]) };
  const mid = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) adamStep(adam, grads, { lr: 0.1, imagesSeen: i, rampupImages: 2 });
  assert.equal(tf.memory().numTensors, mid);
  const restored = restoreAdam(params, {
    tensors: adamStateTensors(adam),
    scalars: adamScalars(adam),
  });
  assert.equal(tf.memory().numTensors, mid + 4);
  disposeAdam(restored);
  tf.dispose(grads);
  disposeAdam(adam);
  dispose(params);
  assert.equal(tf.memory().numTensors, before);
});

// The native loop (core/native) that adamStep runs on wasm with the fused kernels loaded.
const ffi = (await Deno.permissions.query({ name: "ffi" })).state === "granted";
const native = ffi ? loadNativeKernels() : { ok: false as const, why: "no --allow-ffi" };
if (!native.ok) console.warn(`adam_test: native Adam cases skipped (${native.why})`);

// One step written out in float64 with float32 roundings after each moment and the parameter.
function adamReference(
  [p, m, v, g]: Float32Array[],
  s: { beta1: number; beta2: number; eps: number; stepSize: number; rootCorrection: number },
  nanToNum: boolean,
): void {
  for (let i = 0; i < g.length; i++) {
    let gi = g[i];
    if (nanToNum && Number.isNaN(gi)) gi = 0;
    if (nanToNum && Math.abs(gi) === Infinity) gi = Math.sign(gi) * 1e5;
    m[i] = (1 - s.beta1) * gi + s.beta1 * m[i];
    v[i] = (1 - s.beta2) * (gi * gi) + s.beta2 * v[i];
    p[i] = p[i] - s.stepSize * (m[i] / (Math.sqrt(v[i]) / s.rootCorrection + s.eps));
  }
}

Deno.test({
  name: "native Adam kernel equals the float64 step bit for bit, on one thread and on all",
  ignore: !native.ok,
  fn() {
    if (!native.ok) return;
    const s = { beta1: 0.9, beta2: 0.999, eps: 1e-8, stepSize: 2e-4 / 0.1, rootCorrection: 0.03 };
    // 100 values stay below the kernel's threading threshold; 50,001 go over it.
    for (const [n, nanToNum] of [[100, false], [50_001, true]] as const) {
      let seed = n;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5;
      const fill = (scale: number) => Float32Array.from({ length: n }, () => rand() * scale);
      const v0 = fill(1e-3).map(Math.abs);
      const start = [fill(2), fill(0.1), v0, fill(3)];
      if (nanToNum) [start[3][7], start[3][8], start[3][9]] = [NaN, Infinity, -Infinity];
      const expected = start.map((a) => a.slice());
      adamReference(expected, s, nanToNum);
      const actual = start.map((a) => a.slice());
      native.kernels.adam(actual[0], actual[1], actual[2], actual[3], { ...s, nanToNum });
      ["p", "m", "v"].forEach((name, k) => {
        const bad = actual[k].findIndex((x, i) => !Object.is(x, expected[k][i]));
        assert.equal(bad, -1, `n ${n}: ${name}[${bad}] ${actual[k][bad]} != ${expected[k][bad]}`);
      });
      if (nanToNum) assert.ok(actual.slice(0, 3).every((a) => a.every(Number.isFinite)));
    }
  },
});

Deno.test({
  name: "adamStep() on wasm (native kernel) and on cpu (JavaScript loop) give the same floats",
  ignore: !native.ok,
  async fn() {
    if (!native.ok) return;
    let calls = 0;
    const inner = native.kernels.adam;
    native.kernels.adam = (...a) => (calls++, inner(...a));
    const run = async (backend: "wasm" | "cpu") => {
      await selectBackend({ backend, log: () => {} });
      const params = tf.tidy(() => ({
        w: tf.variable(tf.tensor1d(Float32Array.from({ length: 40_000 }, (_, i) => i / 2e4 - 1))),
        b: tf.variable(tf.ones([3])),
      }));
      const adam = createAdam(params);
      for (let t = 1; t <= 3; t++) {
        const grads = {
          // From JavaScript, so that both backends step on the same floats.
          w: tf.tensor1d(Float32Array.from({ length: 40_000 }, (_, i) => Math.sin(i * 7e-4 * t))),
          b: tf.tensor1d([0.5, -t, 1e-6]),
        };
        adamStep(adam, grads, { lr: 1e-3 });
        tf.dispose(grads);
      }
      const out = [params.w.dataSync().slice(), adam.v.w.dataSync().slice(), params.b.dataSync()];
      disposeAdam(adam);
      dispose(params);
      return out;
    };
    try {
      const onWasm = await run("wasm");
      assert.equal(calls, 6, "the native kernel ran for both parameters in each of 3 steps");
      const onCpu = await run("cpu");
      assert.equal(calls, 6, "the cpu backend ran its own loop");
      onWasm.forEach((a, k) => assert.deepEqual(a, onCpu[k], `tensor ${k}`));
    } finally {
      native.kernels.adam = inner;
      await selectBackend({ backend: "cpu", log: () => {} });
    }
  },
});
