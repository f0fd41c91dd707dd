import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { augment, AUGMENT_DIM, augmentLabelDim, type AugmentOptions } from "../training/augment.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const ONLY = { xflip: 0, yflip: 0, rotateInt: 0, translateInt: 0, p: 1 };

/** Random images [n, s, s, c] with distinct values, as nested arrays for closed-form checks. */
function randomImages(n: number, s: number, c: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(rng.fillUniform(new Float32Array(n * s * s * c)), [n, s, s, c]);
}

function run(x: tf.Tensor4D, seed: number, options: AugmentOptions) {
  const { images, labels } = augment(x, new Rng(seed), options);
  const out = { y: images.arraySync(), l: labels.arraySync(), shape: labels.shape };
  tf.dispose([images, labels]);
  return out;
}

// np.rot90(img, k): k counter-clockwise quarter turns of a square HWC image.
function rot90(img: number[][][], k: number): number[][][] {
  let a = img;
  for (let i = 0; i < ((k % 4) + 4) % 4; i++) {
    const s = a.length;
    a = Array.from({ length: s }, (_, y) => Array.from({ length: s }, (_, x) => a[x][s - 1 - y]));
  }
  return a;
}

// Decodes AugmentPipe's two rotation bits back to quarter turns.
function turnsOf(bitA: number, bitB: number): number {
  return bitA ? (bitB ? 2 : 1) : (bitB ? 3 : 0);
}

Deno.test("augment() with p = 0 returns the images unchanged and zero labels", () => {
  const x = randomImages(5, 6, 3, 1);
  const { y, l, shape } = run(x, 3, { p: 0 });
  assert.deepEqual(y, x.arraySync());
  assert.deepEqual(shape, [5, AUGMENT_DIM]);
  assert.ok(l.flat().every((v) => v === 0));
  x.dispose();
});

Deno.test("augment() x-flip only: each image is exactly its mirror when its label says 1", () => {
  const x = randomImages(16, 4, 2, 2);
  const xs = x.arraySync();
  const { y, l, shape } = run(x, 5, { ...ONLY, xflip: 1 });
  assert.deepEqual(shape, [16, 1]);
  let flipped = 0;
  xs.forEach((img, i) => {
    const mirror = img.map((row) => [...row].reverse());
    assert.deepEqual(y[i], l[i][0] === 1 ? mirror : img, `image ${i}`);
    flipped += l[i][0];
  });
  assert.ok(flipped > 0 && flipped < 16, `both outcomes occur (${flipped} flipped)`);
  x.dispose();
});

Deno.test("augment() y-flip only mirrors top-bottom as labelled", () => {
  const x = randomImages(8, 3, 1, 4);
  const xs = x.arraySync();
  const { y, l } = run(x, 6, { ...ONLY, yflip: 1 });
  xs.forEach((img, i) => assert.deepEqual(y[i], l[i][0] === 1 ? [...img].reverse() : img));
  x.dispose();
});

Deno.test("augment() rotation equals np.rot90 by the labelled turns; 4 x 90 degrees is identity", () => {
  const n = 512;
  const x = randomImages(n, 3, 1, 7);
  const xs = x.arraySync();
  let cur = x;
  const total = new Array(n).fill(0);
  const allOnes = new Array(n).fill(true);
  for (let r = 0; r < 4; r++) {
    const { images, labels } = augment(cur, new Rng(100 + r), { ...ONLY, rotateInt: 1 });
    const l = labels.arraySync();
    labels.dispose();
    l.forEach((row, i) => {
      const k = turnsOf(row[0], row[1]);
      total[i] += k;
      if (k !== 1) allOnes[i] = false;
    });
    if (cur !== x) cur.dispose();
    cur = images;
  }
  const ys = cur.arraySync();
  let identities = 0;
  xs.forEach((img, i) => {
    assert.deepEqual(ys[i], rot90(img, total[i]), `image ${i}`);
    if (allOnes[i]) {
      assert.deepEqual(ys[i], img);
      identities++;
    }
  });
  assert.ok(identities > 0, "some image was turned by exactly 90 degrees four times");
  tf.dispose([x, cur]);
});

Deno.test("augment() translation moves a bright pixel by the labelled shift", () => {
  const n = 32, s = 16, max = 0.125;
  const data = new Float32Array(n * s * s);
  for (let i = 0; i < n; i++) data[i * s * s + 8 * s + 7] = 1; // row 8, column 7
  const x = tf.tensor4d(data, [n, s, s, 1]);
  const { y, l } = run(x, 9, { ...ONLY, translateInt: 1, translateIntMax: max });
  let moved = 0;
  y.forEach((img, i) => {
    const tx = Math.round(l[i][0] * s * max), ty = Math.round(l[i][1] * s * max);
    assert.ok(Math.abs(l[i][0] * s * max - tx) < 1e-6, "label is an integer shift");
    const lit: number[][] = [];
    img.forEach((row, r) => row.forEach((px, c) => px[0] === 1 && lit.push([r, c])));
    // AugmentPipe's convention: tx moves right, ty moves up.
    assert.deepEqual(lit, [[8 - ty, 7 + tx]], `image ${i}, shift (${tx}, ${ty})`);
    if (tx !== 0 || ty !== 0) moved++;
  });
  assert.ok(moved > n / 2, `most images moved (${moved})`);
  x.dispose();
});

Deno.test("augment() translation fills the border by mirror reflection", () => {
  const s = 5, max = 0.4; // shifts up to 2 pixels
  const x = randomImages(24, s, 1, 11);
  const xs = x.arraySync();
  const { y, l } = run(x, 12, { ...ONLY, translateInt: 1, translateIntMax: max });
  // Reflection without edge repeat, valid for shifts below the size: -1 -> 1, s -> s - 2.
  const mirror = (i: number) => (i < 0 ? -i : i > s - 1 ? 2 * (s - 1) - i : i);
  let edge = 0;
  xs.forEach((img, i) => {
    const tx = Math.round(l[i][0] * s * max), ty = Math.round(l[i][1] * s * max);
    if (tx !== 0 || ty !== 0) edge++;
    const want = img.map((row, r) => row.map((_, c) => img[mirror(r + ty)][mirror(c - tx)]));
    assert.deepEqual(y[i], want, `image ${i}, shift (${tx}, ${ty})`);
  });
  assert.ok(edge > 0);
  x.dispose();
});

Deno.test("augment() flips and rotations preserve each image's pixel multiset", () => {
  const x = randomImages(12, 4, 3, 13);
  const xs = x.arraySync();
  const { y, l } = run(x, 14, { xflip: 1, yflip: 1, rotateInt: 1, translateInt: 0, p: 1 });
  const sorted = (img: number[][][]) => img.flat(2).sort((a, b) => a - b);
  xs.forEach((img, i) => assert.deepEqual(sorted(y[i]), sorted(img)));
  assert.ok(
    l.some((row, i) =>
      row.some((v) => v !== 0) && !(JSON.stringify(y[i]) === JSON.stringify(xs[i]))
    ),
  );
  x.dispose();
});

Deno.test("augment() defaults follow EDM: every image flip-drawn, label width AUGMENT_DIM", () => {
  assert.equal(augmentLabelDim(), AUGMENT_DIM);
  assert.equal(augmentLabelDim({ yflip: 0, translateInt: 0 }), 3);
  const n = 2000;
  const x = tf.zeros([n, 2, 2, 1]) as tf.Tensor4D;
  const { l } = run(x, 15, {});
  const frac = (col: number) => l.filter((row) => row[col] !== 0).length / n;
  // x-flip multiplier 1e8 * 0.12 >= 1: always drawn, so half the images flip.
  assert.ok(Math.abs(frac(0) - 0.5) < 0.04, `x-flip fraction ${frac(0)}`);
  // y-flip: applied with p = 0.12, then a fair coin: 6 %.
  assert.ok(Math.abs(frac(1) - 0.06) < 0.02, `y-flip fraction ${frac(1)}`);
  x.dispose();
});

Deno.test("augment() is deterministic under a seed and leaks no tensors", () => {
  const x = randomImages(4, 4, 2, 16);
  const a = run(x, 17, { p: 1 }), b = run(x, 17, { p: 1 });
  assert.deepEqual(a, b);
  const before = tf.memory().numTensors;
  const { images, labels } = augment(x, new Rng(18), { p: 0.5 });
  assert.equal(tf.memory().numTensors, before + 2);
  tf.dispose([images, labels]);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(x.isDisposed, false);
  x.dispose();
});

Deno.test("augment() rejects invalid options and non-square rotation", () => {
  const x = tf.zeros([1, 2, 3, 1]) as tf.Tensor4D;
  assert.throws(() => augment(x, new Rng(0)), /square/);
  assert.throws(() => augment(x, new Rng(0), { rotateInt: 0, p: -1 }), RangeError);
  const { images, labels } = augment(x, new Rng(0), { rotateInt: 0 });
  tf.dispose([images, labels, x]);
});
