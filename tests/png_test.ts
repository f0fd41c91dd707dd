import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import {
  decodePng,
  encodeImageGrid,
  encodePng,
  readPng,
  writeImageGrid,
  writePng,
} from "../data/png.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// Half a quantization step of 2/255 in [-1, 1], plus float32 rounding.
const TOLERANCE = 1 / 255 + 1e-6;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function uniformImages(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from(
    { length: shape.reduce((a, b) => a * b, 1) },
    () => 2 * rng.uniform() - 1,
  );
}

Deno.test("writeImageGrid/readPng round-trip an RGB grid within 1/255, padding included", async () => {
  await withDir(async (dir) => {
    const [n, h, w, c] = [3, 4, 5, 3];
    const data = uniformImages([n, h, w, c], 1);
    const images = tf.tensor4d(data, [n, h, w, c]);
    const before = tf.memory().numTensors;
    const path = `${dir}/grid.png`;
    await writeImageGrid(path, images, { columns: 2, padding: 1, padValue: -1 });
    assert.equal(tf.memory().numTensors, before);
    assert.ok(!images.isDisposed, "the caller's tensor stays alive");
    images.dispose();

    const grid = await readPng(path);
    const gw = 2 * (w + 1) + 1, gh = 2 * (h + 1) + 1;
    assert.deepEqual(grid.shape, [gh, gw, 3]);
    let maxError = 0;
    for (let i = 0; i < n; i++) {
      const top = 1 + Math.floor(i / 2) * (h + 1), left = 1 + (i % 2) * (w + 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let k = 0; k < c; k++) {
            const want = data[((i * h + y) * w + x) * c + k];
            const got = grid.data[((top + y) * gw + left + x) * c + k];
            maxError = Math.max(maxError, Math.abs(got - want));
          }
        }
      }
    }
    assert.ok(maxError <= TOLERANCE, `max error ${maxError}`);
    assert.ok(maxError > 0, "random values must actually be quantized");
    // Border, gaps and the empty fourth cell hold the pad value exactly.
    for (const [y, x] of [[0, 0], [h + 1, 3], [gh - 1, gw - 1], [h + 2, w + 3]]) {
      assert.deepEqual(Array.from(grid.data.subarray((y * gw + x) * 3, (y * gw + x) * 3 + 3)), [
        -1,
        -1,
        -1,
      ]);
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["grid.png"]);
  });
});

Deno.test("one-channel images are written as grayscale and read back with one channel", async () => {
  await withDir(async (dir) => {
    const data = uniformImages([2, 3, 3, 1], 2);
    const path = `${dir}/gray.png`;
    await writeImageGrid(path, { data, shape: [2, 3, 3, 1] }, { padding: 0 });
    const bytes = await Deno.readFile(path);
    assert.equal(bytes[25], 0, "IHDR colour type 0 (grayscale)");
    const grid = await readPng(path);
    assert.deepEqual(grid.shape, [3, 6, 1]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 6; x++) {
        const i = x < 3 ? 0 : 1;
        const want = data[(i * 3 + y) * 3 + (x % 3)];
        assert.ok(Math.abs(grid.data[y * 6 + x] - want) <= TOLERANCE);
      }
    }
    const rgb = await readPng(path, { channels: 3 });
    assert.deepEqual(rgb.shape, [3, 6, 3]);
    assert.equal(rgb.data[3], rgb.data[5]);
  });
});

Deno.test("encodePng maps -1, 0 and 1 to bytes 0, 128 and 255 and clips out-of-range values", () => {
  const img = decodePng(
    encodePng({ data: new Float32Array([-1, 0, 1, -3, 2, NaN]), shape: [1, 6, 1] }),
  );
  // 0 -> 127.5 rounds to 128 -> 128 / 127.5 - 1.
  assert.deepEqual(Array.from(img.data), [-1, Math.fround(128 / 127.5 - 1), 1, -1, 1, -1]);
});

Deno.test("decodePng converts colour to luma when one channel is asked for", () => {
  const red = decodePng(
    encodePng({ data: new Float32Array([1, -1, -1]), shape: [1, 1, 3] }),
    { channels: 1 },
  );
  assert.ok(Math.abs(red.data[0] - (0.299 * 255 / 127.5 - 1)) < 1e-6);
});

Deno.test("writePng writes one image, also from a [1, H, W, C] batch", async () => {
  await withDir(async (dir) => {
    const data = uniformImages([2, 2, 3], 3);
    await writePng(`${dir}/a.png`, { data, shape: [1, 2, 2, 3] });
    const back = await readPng(`${dir}/a.png`);
    assert.deepEqual(back.shape, [2, 2, 3]);
    back.data.forEach((v, i) => assert.ok(Math.abs(v - data[i]) <= TOLERANCE));
    await assert.rejects(
      writePng(`${dir}/b.png`, { data: new Float32Array(24), shape: [2, 2, 2, 3] }),
      /use writeImageGrid/,
    );
  });
});

Deno.test("readPng names the file when it is not a PNG, truncated, or missing", async () => {
  await withDir(async (dir) => {
    const junk = `${dir}/junk.png`;
    await Deno.writeTextFile(junk, "definitely not an image");
    await assert.rejects(readPng(junk), new RegExp(`PNG file ${junk} is not a PNG`));

    const cut = `${dir}/cut.png`;
    const full = encodePng({ data: uniformImages([8, 8, 3], 4), shape: [8, 8, 3] });
    await Deno.writeFile(cut, full.subarray(0, full.length - 30));
    await assert.rejects(readPng(cut), new RegExp(`PNG file ${cut} is truncated or corrupt`));

    const flipped = full.slice();
    flipped[45] ^= 0xff; // inside the IDAT data: CRC check fails
    await Deno.writeFile(cut, flipped);
    await assert.rejects(readPng(cut), new RegExp(`PNG file ${cut} is corrupt; pngjs: `));

    await assert.rejects(readPng(`${dir}/none.png`), /no PNG file at/);
  });
});

Deno.test("encodeImageGrid rejects bad shapes and options with the value and the fix", () => {
  const ok = { data: new Float32Array(16), shape: [1, 4, 4, 1] };
  assert.throws(
    () => encodeImageGrid({ data: new Float32Array(32), shape: [1, 4, 4, 2] }),
    /C = 1 or 3, got \[1,4,4,2\]/,
  );
  assert.throws(
    () => encodeImageGrid({ data: new Float32Array(3), shape: [1, 4, 4, 1] }),
    /3 values but shape \[1,4,4,1\] needs 16/,
  );
  assert.throws(() => encodeImageGrid(ok, { columns: 0 }), /columns must be a positive integer/);
  assert.throws(() => encodeImageGrid(ok, { padding: -1 }), /padding must be/);
  assert.throws(() => encodeImageGrid(ok, { padValue: 3 }), /padValue must lie in \[-1, 1\]/);
});
