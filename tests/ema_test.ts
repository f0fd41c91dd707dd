import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { createEma, emaBeta, emaUpdate } from "../training/ema.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function assertClose(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected}`);
}

Deno.test("emaBeta() is 0.5 ^ (batchSize / halfLife) without ramp-up", () => {
  const beta = emaBeta({ batchSize: 512, imagesSeen: 1e9, halfLifeImages: 500_000 });
  assertClose(beta, Math.pow(0.5, 512 / 500_000), 1e-15, "beta");
  const noRamp = emaBeta({ batchSize: 100, imagesSeen: 0, halfLifeImages: 200, rampupRatio: null });
  assertClose(noRamp, Math.SQRT1_2, 1e-15, "half a half-life per step");
});

Deno.test("emaBeta() ramps the half-life up as imagesSeen * rampupRatio", () => {
  // 20_000 images * 0.05 = 1000 images < 500_000: the ramped half-life wins.
  const beta = emaBeta({ batchSize: 250, imagesSeen: 20_000 });
  assertClose(beta, Math.pow(0.5, 250 / 1000), 1e-15, "ramped beta");
  // At the start the half-life is 0, so the EMA copies the network.
  assert.equal(emaBeta({ batchSize: 64, imagesSeen: 0 }), 0);
  // Far along, the configured half-life caps it.
  const late = emaBeta({ batchSize: 64, imagesSeen: 1e8, halfLifeImages: 1000 });
  assertClose(late, Math.pow(0.5, 64 / 1000), 1e-15, "capped beta");
  assert.throws(() => emaBeta({ batchSize: 0, imagesSeen: 0 }), RangeError);
  assert.throws(() => emaBeta({ batchSize: 1, imagesSeen: -5 }), RangeError);
});

Deno.test("createEma() copies values into independent non-trainable variables", () => {
  const params: Params = { w: tf.variable(tf.tensor1d([1, 2, 3])) };
  const ema = createEma(params);
  assert.equal(ema.w.trainable, false);
  params.w.assign(tf.tensor1d([7, 8, 9]));
  assert.deepEqual(Array.from(ema.w.dataSync()), [1, 2, 3]);
  disposeParams(ema);
  disposeParams(params);
});

Deno.test("emaUpdate() converges geometrically as beta^k to constant params", () => {
  const target = [1, -2, 0.5, 4];
  const params: Params = { w: tf.variable(tf.tensor1d(target)), b: tf.variable(tf.scalar(3)) };
  const ema = createEma(params);
  ema.w.assign(tf.zeros([4]));
  ema.b.assign(tf.scalar(-1));
  const options = { batchSize: 32, imagesSeen: 1e6, halfLifeImages: 128, rampupRatio: null };
  const beta = emaBeta(options);
  for (let k = 1; k <= 12; k++) {
    assert.equal(emaUpdate(ema, params, options), beta);
    const w = ema.w.dataSync();
    target.forEach((c, i) => assertClose(w[i], c - c * beta ** k, 1e-5, `k=${k} w[${i}]`));
    assertClose(ema.b.dataSync()[0], 3 - 4 * beta ** k, 1e-5, `k=${k} b`);
  }
  disposeParams(ema);
  disposeParams(params);
});

Deno.test("emaUpdate() at zero images copies the network exactly (EDM ramp-up)", () => {
  const params: Params = { w: tf.variable(tf.tensor1d([0.1, 0.2])) };
  const ema = createEma(params);
  params.w.assign(tf.tensor1d([5.5, -3.25]));
  assert.equal(emaUpdate(ema, params, { batchSize: 8, imagesSeen: 0 }), 0);
  assert.deepEqual(Array.from(ema.w.dataSync()), [5.5, -3.25]);
  disposeParams(ema);
  disposeParams(params);
});

Deno.test("emaUpdate() leaks no tensors and rejects mismatched params", () => {
  const params: Params = { w: tf.variable(tf.ones([2, 3])) };
  const ema = createEma(params);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) emaUpdate(ema, params, { batchSize: 4, imagesSeen: 100 * i });
  assert.equal(tf.memory().numTensors, before);
  const other: Params = { v: tf.variable(tf.ones([2, 3])) };
  assert.throws(() => emaUpdate(ema, other, { batchSize: 4, imagesSeen: 0 }), RangeError);
  disposeParams(other);
  disposeParams(ema);
  disposeParams(params);
});
