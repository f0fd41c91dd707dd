/**
 * Writing samples and scoring them: 8-bit quantization shared by the in-memory and PNG routes,
 * streaming writes, resume, interruption, output checks, and the progress bar's counts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { createProgress } from "../core/progress.ts";
import { decodePng, encodePng } from "../data/png.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { quantize8Bit } from "../eval/quantize.ts";
import { compareFeatures, extractFeatures, sampleSizeWarnings } from "../eval/evaluate.ts";
import type { FeatureNetwork } from "../eval/types.ts";
import type { Denoiser } from "../core/types.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { generateSamples } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { prepareSampleOutputs, sampleToFiles } from "../tasks/_write_samples.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const SHAPE = [8, 8, 1];
const SIGMAS = karrasSigmas({ numSteps: 3 });
// Samples of N(0, 2^2): most pixels fall outside [-1, 1], as raw sampler output may.
const WIDE = idealGaussianDenoiser({ std: 2 });

/** Features = the 64 pixels, logits = 4 quadrant sums: enough to see any pixel difference. */
const PIXELS: FeatureNetwork = {
  name: "pixels",
  featureDim: 64,
  numClasses: 4,
  apply: (x) =>
    tf.tidy(() => {
      const f = tf.reshape(x, [x.shape[0], 64]) as tf.Tensor2D;
      return { features: f, logits: tf.reshape(tf.sum(tf.reshape(x, [-1, 4, 16]), 2), [-1, 4]) };
    }),
};

const quiet = { handleCtrlC: false, task: "test" };

async function silently<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log, err = console.error;
  console.log = () => {}, console.error = () => {};
  try {
    return await fn();
  } finally {
    console.log = log, console.error = err;
  }
}

Deno.test("quantize8Bit() gives exactly the values a PNG round trip gives, out-of-range too", () => {
  const x = new Float32Array([-5, -1, -0.999, -0.5, 0, 0.0039, 0.5, 0.99, 1, 7, NaN, 0.3]);
  const png = decodePng(encodePng({ data: x, shape: [3, 4, 1] })).data;
  assert.deepEqual(quantize8Bit(x), png);
  assert.deepEqual(quantize8Bit(png), png, "quantizing twice changes nothing");
});

Deno.test("scoring samples in memory and scoring their PNGs give the same figures", async () => {
  const dir = await Deno.makeTempDir();
  const seeds = Array.from({ length: 12 }, (_, i) => i);
  const gen = { seeds, shape: SHAPE, sigmas: SIGMAS, batchSize: 5 };
  await silently(() =>
    sampleToFiles(WIDE, gen, { out: join(dir, "g.png"), imagesDir: join(dir, "im"), ...quiet })
  );
  const memory = await generateSamples(WIDE, gen);
  assert.ok(memory.images.some((v) => Math.abs(v) > 1.5), "the raw samples leave [-1, 1]");
  const folder = await loadDataset(`png:${join(dir, "im")}`);
  const fromPng = await extractFeatures(PIXELS, folder.images, [folder.count, ...folder.shape]);
  const fromMemory = await extractFeatures(PIXELS, memory.images, memory.shape);
  assert.deepEqual(fromMemory.features, fromPng.features);
  const reference = await extractFeatures(
    PIXELS,
    (await generateSamples(WIDE, {
      ...gen,
      seeds: seeds.map((s) => s + 100),
    })).images,
    memory.shape,
  );
  const options = { network: PIXELS, kidSubsets: 3, kidSubsetSize: 6 };
  const a = await compareFeatures(reference, fromMemory, { ...options, rng: new Rng(1) });
  const b = await compareFeatures(reference, fromPng, { ...options, rng: new Rng(1) });
  assert.deepEqual(a, b);
  assert.ok(Number.isFinite(a.fd) && Number.isFinite(a.is!.mean));
  // Unquantized, the raw values give another (here larger) distance: the bug this guards.
  const raw = await extractFeatures(PIXELS, memory.images, memory.shape, { quantize: false });
  const c = await compareFeatures(reference, raw, { ...options, rng: new Rng(1) });
  assert.notEqual(c.fd, a.fd);
  assert.ok(a.warnings.length > 0, "12 samples of 64 features are flagged as too few");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sampleSizeWarnings() flags singular covariances and small counts, not large sets", () => {
  assert.match(
    sampleSizeWarnings({ sampleCount: 16, referenceCount: 5000, featureDim: 128 })[0],
    /covariance is singular.*--n/,
  );
  assert.match(
    sampleSizeWarnings({ sampleCount: 5000, referenceCount: 500, featureDim: 128 })[0],
    /500 reference images.*--ref-n/,
  );
  assert.deepEqual(
    sampleSizeWarnings({ sampleCount: 5000, referenceCount: 5000, featureDim: 128 }),
    [],
  );
});

Deno.test("sampleToFiles() --resume skips seeds on disk and redraws a missing one identically", async () => {
  const dir = await Deno.makeTempDir();
  const write = { out: join(dir, "g.png"), imagesDir: join(dir, "im"), ...quiet };
  const gen = { seeds: [3, 4, 5, 6, 7], shape: SHAPE, sigmas: SIGMAS, batchSize: 2 };
  const first = await silently(() => sampleToFiles(WIDE, gen, write));
  assert.equal(first.generated, 5);
  const missing = join(dir, "im", "seed000005.png");
  const before = await Deno.readFile(missing);
  const grid = await Deno.readFile(write.out);
  await Deno.remove(missing);
  const again = await silently(() => sampleToFiles(WIDE, gen, { ...write, resume: true }));
  assert.deepEqual([again.generated, again.skipped], [1, 4]);
  assert.deepEqual(await Deno.readFile(missing), before);
  assert.deepEqual(await Deno.readFile(write.out), grid, "the grid reads the skipped PNGs back");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sampleToFiles() stopped mid-run keeps the finished batches and says how to continue", async () => {
  const dir = await Deno.makeTempDir();
  const controller = new AbortController();
  let calls = 0;
  const stopping: Denoiser = (x, sigma, cond) => {
    // Heun with 3 levels makes 5 calls a batch: stop during the second batch.
    if (++calls === 7) controller.abort();
    return WIDE(x, sigma, cond);
  };
  const lines: string[] = [];
  const log = console.log;
  console.log = (m: string) => lines.push(m);
  let result;
  try {
    result = await sampleToFiles(stopping, {
      seeds: [0, 1, 2, 3, 4, 5],
      shape: SHAPE,
      sigmas: SIGMAS,
      batchSize: 2,
      signal: controller.signal,
    }, { out: join(dir, "g.png"), imagesDir: join(dir, "im"), ...quiet });
  } finally {
    console.log = log;
  }
  assert.equal(result.interrupted, true);
  assert.equal(result.generated, 2);
  const files = [...Deno.readDirSync(join(dir, "im"))].map((e) => e.name).sort();
  assert.deepEqual(files, ["seed000000.png", "seed000001.png"]);
  const grid = decodePng(await Deno.readFile(join(dir, "g.png")));
  assert.ok(grid.shape[1] < 6 * 10, "the grid holds the finished images only");
  assert.match(lines.join("\n"), /interrupted after 2 of 6 images.*--resume/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("prepareSampleOutputs() refuses bad outputs with one line naming the fix", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "a.png");
  await Deno.writeTextFile(file, "x");
  const cases: [Parameters<typeof prepareSampleOutputs>[0], RegExp][] = [
    [{ out: "" }, /--out is empty/],
    [{ out: dir + "/" }, /is a folder/],
    [{ out: join(dir, "x.jpg") }, /must end in \.png/],
    [{ out: join(dir, "d.png") }, /is a folder/],
    [{ out: join(file, "b.png") }, /a\.png.*(file|folder)/],
    [{ out: "/proc/diffuse-no/x.png" }, /cannot (use|write)/],
    [{ out: file, inputs: [file] }, /also an input/],
    [{ out: join(dir, "ok.png"), imagesDir: file }, /--images-dir/],
  ];
  await Deno.mkdir(join(dir, "d.png"));
  for (const [options, pattern] of cases) {
    await assert.rejects(prepareSampleOutputs(options), (e: Error) => {
      assert.ok(e instanceof UserError, `${options.out}: ${e.message}`);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
  await prepareSampleOutputs({ out: join(dir, "new", "ok.png"), imagesDir: join(dir, "im") });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the progress bar counts the first batch, and shows the count reached when stopped", () => {
  let t = 0;
  const lines: string[] = [];
  const bar = createProgress({
    total: 10,
    unit: "img",
    tty: false,
    plainEverySeconds: 0,
    now: () => t,
    write: (s) => lines.push(s),
  });
  t = 2000;
  bar.update(4);
  assert.match(lines[0], /4\/10 \| 2\.00 img\/s .*eta 3s/);
  t = 3000;
  bar.finish({}, 6);
  assert.match(lines[1], /6\/10 \| 2\.00 img\/s/);
  const resumed = createProgress({
    total: 10,
    initial: 8,
    tty: false,
    plainEverySeconds: 0,
    now: () => t,
    write: (s) => lines.push(s),
  });
  t = 4000;
  resumed.finish();
  assert.match(lines[2], /10\/10 \| 2\.00 it\/s .*eta 0s/);
});

Deno.test("sampleToFiles() with partialGrid rewrites the grid after each batch", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "g.png");
  let calls = 0;
  const widths: number[] = [];
  const watching: Denoiser = (x, sigma, cond) => {
    // Heun with 3 levels makes 5 calls a batch: look at the grid as each later batch starts.
    if (calls++ % 5 === 0 && calls > 1) widths.push(decodePng(Deno.readFileSync(out)).shape[0]);
    return WIDE(x, sigma, cond);
  };
  await silently(() =>
    sampleToFiles(
      watching,
      { seeds: [0, 1, 2, 3, 4], shape: SHAPE, sigmas: SIGMAS, batchSize: 2 },
      {
        out,
        partialGrid: true,
        ...quiet,
      },
    )
  );
  assert.equal(widths.length, 2);
  assert.ok(widths[0] < widths[1], `the grid grows: ${widths}`);
  await Deno.remove(dir, { recursive: true });
});
