import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { precisionRecall } from "../eval/precision_recall.ts";

await selectBackend({ backend: "wasm", log: () => {} });

Deno.test("precisionRecall() of a set against itself is 1 and 1", async () => {
  const x = new Rng(1).fillNormal(new Float32Array(200 * 16));
  assert.deepEqual(await precisionRecall(x, x, { dim: 16 }), { precision: 1, recall: 1 });
});

Deno.test("precisionRecall() of far-apart sets is 0 and 0", async () => {
  const rng = new Rng(2);
  const a = rng.fillNormal(new Float32Array(100 * 8));
  const b = rng.fillNormal(new Float32Array(120 * 8)).map((v) => v + 50);
  assert.deepEqual(await precisionRecall(a, b, { dim: 8 }), { precision: 0, recall: 0 });
});

Deno.test("precisionRecall() matches k-NN balls worked out by hand in 1-d", async () => {
  // Real 0..9 with k = 1: every radius is 1. Fake radii (nearest other fake): -0.5 and 0.5 -> 1,
  // 9.0 and 9.9 -> 0.9, 20 and 30 -> 10.
  const real = Float32Array.from({ length: 10 }, (_, i) => i);
  const fake = new Float32Array([0.5, 20, 9.9, -0.5, 30, 9.0]);
  // Precision: 0.5, 9.9, -0.5, 9.0 lie within 1 of a real point; 20 and 30 do not -> 4 / 6.
  // Recall: 0 and 1 (balls around +-0.5) and 9 (ball around 9.0) are covered; 2..8 are not
  // (the balls around 20 and 30 reach down to 10) -> 3 / 10.
  const { precision, recall } = await precisionRecall(real, fake, { dim: 1, k: 1 });
  assert.equal(precision, 4 / 6);
  assert.equal(recall, 3 / 10);
  // k = 2: real radii are 1 inside and 2 at the ends (0 and 9); fake radii (2nd neighbour):
  // -0.5 -> 9.5 (to 9.0), 0.5 -> 8.5, 9.0 -> 8.5, 9.9 -> 9.4, 20 -> 10.1, 30 -> 20.1.
  // The ball around -0.5 covers every real point; 20 (11 from 9) and 30 stay outside.
  assert.deepEqual(await precisionRecall(real, fake, { dim: 1, k: 2 }), {
    precision: 4 / 6,
    recall: 1,
  });
});

Deno.test("precisionRecall() does not depend on the block size and leaks no tensors", async () => {
  const rng = new Rng(3);
  const a = rng.fillNormal(new Float32Array(150 * 4));
  const b = rng.fillNormal(new Float32Array(90 * 4)).map((v) => v * 1.5 + 0.5);
  const before = tf.memory().numTensors;
  const whole = await precisionRecall(a, b, { dim: 4 });
  const blocked = await precisionRecall(a, b, { dim: 4, blockSize: 7 });
  assert.deepEqual(blocked, whole);
  assert.ok(whole.precision > 0.2 && whole.precision < 1 && whole.recall > 0.2 && whole.recall < 1);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("precisionRecall() rejects sets of at most k samples and bad options", async () => {
  const a = new Float32Array(3), b = new Float32Array(10);
  await assert.rejects(precisionRecall(a, b, { dim: 1 }), /real set has 3 samples/);
  await assert.rejects(precisionRecall(b, b, { dim: 1, k: 0 }), RangeError);
  await assert.rejects(precisionRecall(b, b, { dim: 3 }), /multiple of dim 3/);
});
