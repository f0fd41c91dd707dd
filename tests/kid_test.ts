import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { kernelInceptionDistance } from "../eval/kid.ts";

await selectBackend({ backend: "wasm", log: () => {} });

function gaussian(n: number, d: number, shift: number, rng: Rng): Float32Array {
  const x = rng.fillNormal(new Float32Array(n * d));
  for (let i = 0; i < x.length; i++) x[i] += shift;
  return x;
}

/** The unbiased MMD^2 with k(x, y) = (x . y / d + 1)^3 over whole sets, float64, by definition. */
function mmdUnbiased(x: Float32Array, y: Float32Array, d: number): number {
  const m = x.length / d;
  const k = (a: Float32Array, i: number, b: Float32Array, j: number): number => {
    let s = 0;
    for (let t = 0; t < d; t++) s += a[i * d + t] * b[j * d + t];
    return (s / d + 1) ** 3;
  };
  let xx = 0, yy = 0, xy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (i !== j) {
        xx += k(x, i, x, j);
        yy += k(y, i, y, j);
      }
      xy += k(x, i, y, j);
    }
  }
  return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m);
}

Deno.test("kernelInceptionDistance() with one subset of whole sets is the unbiased MMD^2 of its definition", async () => {
  const rng = new Rng(1), d = 6, m = 40;
  const x = gaussian(m, d, 0, rng), y = gaussian(m, d, 0.3, rng);
  const expected = mmdUnbiased(x, y, d);
  // subsetSize above the set sizes is clamped to them; a subset is then the whole set, permuted.
  const kid = await kernelInceptionDistance(x, y, { dim: d, rng, numSubsets: 1, subsetSize: 1000 });
  assert.equal(kid.subsetSize, m);
  assert.equal(kid.std, 0);
  assert.ok(
    Math.abs(kid.mean - expected) < 1e-5 * Math.abs(expected),
    `${kid.mean} vs ${expected}`,
  );
});

Deno.test("kernelInceptionDistance() is ~0 for one distribution and clearly positive for shifted ones", async () => {
  const rng = new Rng(2), d = 8;
  const a = gaussian(400, d, 0, rng), b = gaussian(300, d, 0, rng), c = gaussian(300, d, 0.5, rng);
  const opts = { dim: d, numSubsets: 20, subsetSize: 100 };
  const same = await kernelInceptionDistance(a, b, { ...opts, rng: new Rng(3) });
  const shifted = await kernelInceptionDistance(a, c, { ...opts, rng: new Rng(3) });
  assert.ok(Math.abs(same.mean) < 3 * same.std, `${same.mean} +- ${same.std}`);
  assert.ok(shifted.mean > 4 * shifted.std && shifted.mean > 20 * Math.abs(same.mean));
});

Deno.test("kernelInceptionDistance() is reproducible from the Rng, advances it, and leaks no tensors", async () => {
  const rng = new Rng(4), d = 3;
  const a = gaussian(50, d, 0, rng), b = gaussian(60, d, 0.2, rng);
  const before = tf.memory().numTensors;
  const r1 = new Rng(9), r2 = new Rng(9);
  const k1 = await kernelInceptionDistance(a, b, {
    dim: d,
    rng: r1,
    numSubsets: 5,
    subsetSize: 20,
  });
  const k2 = await kernelInceptionDistance(a, b, {
    dim: d,
    rng: r2,
    numSubsets: 5,
    subsetSize: 20,
  });
  assert.deepEqual(k1, k2);
  assert.notEqual(r1.nextUint32(), new Rng(9).nextUint32());
  assert.ok(k1.std > 0);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("kernelInceptionDistance() rejects bad sizes and options", async () => {
  const rng = new Rng(5);
  const a = new Float32Array(12);
  await assert.rejects(
    kernelInceptionDistance(a, new Float32Array(5), { dim: 4, rng }),
    /multiple/,
  );
  await assert.rejects(
    kernelInceptionDistance(a, new Float32Array(4), { dim: 4, rng }),
    /at least 2/,
  );
  await assert.rejects(kernelInceptionDistance(a, a, { dim: 4, rng, numSubsets: 0 }), RangeError);
  await assert.rejects(kernelInceptionDistance(a, a, { dim: 4, rng, subsetSize: 1 }), RangeError);
});
