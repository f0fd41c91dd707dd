import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** The posterior mean over equally weighted points, in float64 straight from the definition. */
function pointSetPosteriorMean(x: number[], sigma: number, points: number[][]): number[] {
  const logits = points.map((y) =>
    -y.reduce((a, yk, k) => a + (x[k] - yk) ** 2, 0) / (2 * sigma ** 2)
  );
  const m = Math.max(...logits);
  const w = logits.map((l) => Math.exp(l - m));
  const z = w.reduce((a, b) => a + b, 0);
  return x.map((_, k) => points.reduce((a, y, i) => a + w[i] * y[k], 0) / z);
}

function randomPoints(rng: Rng, m: number, d: number): number[][] {
  return Array.from({ length: m }, () => Array.from({ length: d }, () => 2 * rng.uniform() - 1));
}

Deno.test("idealPointSetDenoiser() equals the softmax-weighted mean of the points", () => {
  const rng = new Rng(3);
  const points = randomPoints(rng, 5, 16);
  const pts = tf.tensor(points.flat(), [5, 4, 4, 1]);
  const denoise = idealPointSetDenoiser(pts);
  const sigmas = [0.05, 0.3, 0.7, 2, 20, 0.5];
  const xs = sigmas.map((s) => points[rng.int(5)].map((v) => v + s * rng.normal()));
  const x = tf.tensor(xs.flat(), [6, 4, 4, 1]);
  const sigma = tf.tensor1d(sigmas);
  const before = tf.memory().numTensors;
  const out = denoise(x, sigma);
  assert.equal(tf.memory().numTensors, before + 1);
  assert.deepEqual(out.shape, [6, 4, 4, 1]);
  const got = out.arraySync() as number[][][][];
  let worst = 0;
  xs.forEach((xi, n) => {
    const want = pointSetPosteriorMean(xi, sigmas[n], points);
    want.forEach((w, k) => {
      worst = Math.max(worst, Math.abs(got[n][Math.floor(k / 4)][k % 4][0] - w));
    });
  });
  assert.ok(worst < 1e-5, `max deviation from the closed form ${worst}`);
  // Inputs stay alive and untouched.
  assert.ok(!x.isDisposed && !sigma.isDisposed && !pts.isDisposed);
  tf.dispose([out, x, sigma, pts]);
});

Deno.test("idealPointSetDenoiser() snaps to the nearest point at small sigma, the mean at large sigma", () => {
  const points = [[-1, 0], [1, 0], [0, 3]];
  const pts = tf.tensor2d(points);
  const denoise = idealPointSetDenoiser(pts);
  const x = tf.tensor2d([[0.9, 0.2], [-0.7, -0.1], [0.4, 0.1]]);
  const sigma = tf.tensor1d([0.01, 0.01, 1e4]);
  const out = denoise(x, sigma);
  const got = out.arraySync() as number[][];
  assert.ok(Math.hypot(got[0][0] - 1, got[0][1]) < 1e-6);
  assert.ok(Math.hypot(got[1][0] + 1, got[1][1]) < 1e-6);
  assert.ok(Math.hypot(got[2][0] - 0, got[2][1] - 1) < 1e-4, `mean: ${got[2]}`);
  tf.dispose([pts, x, sigma, out]);
});

Deno.test("idealPointSetDenoiser() rejects mismatched shapes", () => {
  const pts = tf.tensor2d([[0, 0], [1, 1]]);
  const denoise = idealPointSetDenoiser(pts);
  const x = tf.zeros([2, 3]), sigma = tf.ones([2]) as tf.Tensor1D, flat = tf.zeros([3]);
  assert.throws(() => denoise(x, sigma), RangeError);
  assert.throws(() => idealPointSetDenoiser(flat), RangeError);
  tf.dispose([pts, x, sigma, flat]);
});

Deno.test("idealGaussianDenoiser() gives the posterior mean (s^2 x + sigma^2 mu) / (s^2 + sigma^2)", () => {
  const mean = [1, -2, 0.5, 0], std = [0.5, 2, 1, 3];
  const denoise = idealGaussianDenoiser({ mean, std });
  const rng = new Rng(9);
  const sigmas = [0, 0.1, 1, 10];
  const xs = sigmas.map(() => mean.map(() => 5 * rng.normal()));
  const x = tf.tensor(xs.flat(), [4, 2, 2, 1]);
  const sigma = tf.tensor1d(sigmas);
  const before = tf.memory().numTensors;
  const out = denoise(x, sigma);
  assert.equal(tf.memory().numTensors, before + 1);
  assert.deepEqual(out.shape, [4, 2, 2, 1]);
  const got = out.dataSync();
  xs.forEach((xi, n) =>
    xi.forEach((v, k) => {
      const s2 = std[k] ** 2, v2 = sigmas[n] ** 2;
      const want = (s2 * v + v2 * mean[k]) / (s2 + v2);
      assert.ok(Math.abs(got[n * 4 + k] - want) < 1e-5 * (1 + Math.abs(want)), `${n},${k}`);
    })
  );
  tf.dispose([x, sigma, out]);
});

Deno.test("idealGaussianDenoiser() broadcasts scalar mean and std and validates them", () => {
  const denoise = idealGaussianDenoiser({ mean: 2, std: 0.5 });
  const x = tf.tensor2d([[0, 4, 2]]);
  const sigma = tf.tensor1d([0.5]);
  const out = denoise(x, sigma);
  // s^2 = sigma^2: halfway between x and mu.
  assert.deepEqual(Array.from(out.dataSync()), [1, 3, 2]);
  assert.throws(() => idealGaussianDenoiser({ std: 0 }), RangeError);
  assert.throws(() => idealGaussianDenoiser({ std: [1, -1] }), RangeError);
  assert.throws(() => idealGaussianDenoiser({ mean: [0, 0] })(x, sigma), RangeError);
  tf.dispose([x, sigma, out]);
});
