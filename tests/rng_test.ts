import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { perImageNoise, rngNoise } from "../core/noise.ts";
import { selectBackend } from "../core/engine.ts";

await selectBackend({ backend: "cpu", log: () => {} });

Deno.test("Rng gives equal streams for equal seeds and different ones otherwise", () => {
  const a = new Rng(123), b = new Rng(123), c = new Rng(124);
  const xa = Array.from({ length: 8 }, () => a.nextUint32());
  const xb = Array.from({ length: 8 }, () => b.nextUint32());
  const xc = Array.from({ length: 8 }, () => c.nextUint32());
  assert.deepEqual(xa, xb);
  assert.notDeepEqual(xa, xc);
});

Deno.test("Rng.state() and Rng.fromState() continue the stream exactly, spare normal included", () => {
  const a = new Rng(9);
  a.normal(); // leaves a spare normal cached
  const saved = JSON.parse(JSON.stringify(a.state()));
  const next = [a.normal(), a.uniform(), a.normal()];
  const b = Rng.fromState(saved);
  assert.deepEqual([b.normal(), b.uniform(), b.normal()], next);
  const c = new Rng(0);
  c.restore(saved);
  assert.deepEqual([c.normal(), c.uniform(), c.normal()], next);
});

Deno.test("Rng normals have mean 0 and variance 1, uniforms mean 1/2 (within 5 sigma)", () => {
  const r = new Rng(1);
  const n = 200_000;
  let s = 0, s2 = 0, u = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
    u += r.uniform();
  }
  assert.ok(Math.abs(s / n) < 5 / Math.sqrt(n));
  assert.ok(Math.abs(s2 / n - 1) < 5 * Math.sqrt(2 / n));
  assert.ok(Math.abs(u / n - 0.5) < 5 * Math.sqrt(1 / 12 / n));
});

Deno.test("Rng.permutation() is a permutation and int() stays in range", () => {
  const r = new Rng(5);
  const p = Array.from(r.permutation(100)).sort((a, b) => a - b);
  assert.deepEqual(p, Array.from({ length: 100 }, (_, i) => i));
  for (let i = 0; i < 1000; i++) {
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
  }
});

Deno.test("perImageNoise() makes an image depend only on its own seed, not the batch", () => {
  const big = perImageNoise([3, 4, 5]).randn([3, 2, 2, 1]);
  const small = perImageNoise([4]).randn([1, 2, 2, 1]);
  const bigData = big.dataSync();
  assert.deepEqual(Array.from(bigData.slice(4, 8)), Array.from(small.dataSync()));
  assert.notDeepEqual(Array.from(bigData.slice(0, 4)), Array.from(bigData.slice(4, 8)));
  tf.dispose([big, small]);
  assert.throws(() => perImageNoise([1, 2]).randn([3, 4]), /2 seeds but the batch has 3/);
});

Deno.test("rngNoise() draws from the given generator", () => {
  const x = rngNoise(new Rng(7)).randn([2, 3]);
  const r = new Rng(7);
  const expected = Array.from({ length: 6 }, () => Math.fround(r.normal()));
  assert.deepEqual(Array.from(x.dataSync()), expected);
  x.dispose();
});
