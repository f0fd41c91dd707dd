import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { rngNoise } from "../core/noise.ts";
import type { ApplyOptions, Conditioning, Denoiser } from "../core/types.ts";
import { edmPrecond } from "../models/precond_edm.ts";
import { edmCoefficients } from "../models/precond_edm.ts";
import { drawEdmSigmas, edmLoss } from "../training/loss_edm.ts";
import { drawVpSigmas, vpLoss } from "../training/loss_vp.ts";
import { drawVeSigmas, veLoss } from "../training/loss_ve.ts";
import { weightedLoss } from "../training/denoising_loss.ts";
import { vpSchedule } from "../schedules/vp.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// tfjs-core registers no gradient functions itself; the project registers them elsewhere.
const hasGradients = (() => {
  try {
    tf.dispose(tf.grad((v: tf.Tensor) => tf.sum(v))(tf.ones([1])));
    return true;
  } catch {
    return false;
  }
})();

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected}`);
}

const SHAPE = [5, 3, 2, 2];
const PER = 12;

function batch(seed: number): { y: tf.Tensor; yData: Float32Array } {
  const yData = new Rng(seed).fillNormal(new Float32Array(SHAPE[0] * PER));
  return { y: tf.tensor(yData, SHAPE), yData };
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

function stdOf(a: ArrayLike<number>): number {
  const m = meanOf(a);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - m) ** 2;
  return Math.sqrt(s / (a.length - 1));
}

const edmWeight = (s: number, sd = 0.5) => (s * s + sd * sd) / (s * sd) ** 2;
const invSq = (s: number) => 1 / (s * s);
const cases = [
  { name: "edmLoss()", loss: edmLoss(), draw: drawEdmSigmas, weight: (s: number) => edmWeight(s) },
  { name: "vpLoss()", loss: vpLoss(), draw: drawVpSigmas, weight: invSq },
  { name: "veLoss()", loss: veLoss(), draw: drawVeSigmas, weight: invSq },
];

Deno.test("losses are 0 for the ideal denoiser of a single data point", async () => {
  const point = tf.tensor(new Rng(3).fillNormal(new Float32Array(PER)), [1, ...SHAPE.slice(1)]);
  const y = tf.tile(point, [SHAPE[0], 1, 1, 1]);
  // With one data point, E[y | x] = y for every x and sigma.
  const ideal: Denoiser = (x) => tf.tile(point, [x.shape[0], 1, 1, 1]);
  for (const c of cases) {
    const rng = new Rng(1);
    const sigma = tf.tensor1d(c.draw(SHAPE[0], rng));
    const noise = rngNoise(rng).randn(SHAPE);
    const value = c.loss(ideal, y, { sigma, noise });
    assert.deepEqual(value.shape, []);
    assert.equal((await value.data())[0], 0, c.name);
    tf.dispose([sigma, noise, value]);
  }
  tf.dispose([point, y]);
});

Deno.test("with D = 0 each loss is mean_i lambda(sigma_i) |y_i|^2", async () => {
  const { y, yData } = batch(7);
  const zero: Denoiser = (x) => tf.zerosLike(x);
  for (const c of cases) {
    const rng = new Rng(2);
    const sigmas = c.draw(SHAPE[0], rng);
    const sigma = tf.tensor1d(sigmas), noise = rngNoise(rng).randn(SHAPE);
    const value = c.loss(zero, y, { sigma, noise });
    let want = 0;
    for (let i = 0; i < SHAPE[0]; i++) {
      let sq = 0;
      for (let k = 0; k < PER; k++) sq += yData[i * PER + k] ** 2;
      want += c.weight(sigmas[i]) * sq / SHAPE[0];
    }
    close((await value.data())[0], want, 1e-5, c.name);
    tf.dispose([sigma, noise, value]);
  }
  tf.dispose(y);
});

Deno.test("with D = x each loss is mean_i lambda(sigma_i) sigma_i^2 |n_i|^2", async () => {
  const { y } = batch(8);
  const identity: Denoiser = (x) => tf.clone(x);
  for (const c of cases) {
    const rng = new Rng(4);
    const sigmas = c.draw(SHAPE[0], rng);
    const nData = new Rng(9).fillNormal(new Float32Array(SHAPE[0] * PER));
    const sigma = tf.tensor1d(sigmas), noise = tf.tensor(nData, SHAPE);
    const value = c.loss(identity, y, { sigma, noise });
    let want = 0;
    for (let i = 0; i < SHAPE[0]; i++) {
      let sq = 0;
      for (let k = 0; k < PER; k++) sq += nData[i * PER + k] ** 2;
      want += c.weight(sigmas[i]) * sigmas[i] ** 2 * sq / SHAPE[0];
    }
    // D - y = sigma n comes from a float32 difference (y + sigma n) - y.
    close((await value.data())[0], want, 1e-4, c.name);
    tf.dispose([sigma, noise, value]);
  }
  tf.dispose(y);
});

Deno.test("edmLoss() weight is 1 / c_out^2 for any sigmaData", async () => {
  const loss = edmLoss({ sigmaData: 1.7 });
  const y = tf.ones([3, 2]), noise = tf.zeros([3, 2]);
  const sigmas = [0.1, 1, 10];
  const sigma = tf.tensor1d(sigmas);
  const value = loss((x) => tf.zerosLike(x), y, { sigma, noise });
  const want = meanOf(
    sigmas.map((s) => 2 / edmCoefficients(Math.fround(s), { sigmaData: 1.7 }).cOut ** 2),
  );
  close((await value.data())[0], want, 1e-5, "weight");
  tf.dispose([y, noise, sigma, value]);
});

Deno.test("drawEdmSigmas() gives ln sigma ~ N(pMean, pStd^2)", () => {
  const n = 20000;
  for (const [pMean, pStd] of [[-1.2, 1.2], [0.5, 0.3]]) {
    const logs = Array.from(drawEdmSigmas(n, new Rng(11), { pMean, pStd }), Math.log);
    // 4 standard errors: mean se = pStd / sqrt(n), std se ~ pStd / sqrt(2n).
    close(meanOf(logs), pMean, 4 * pStd / Math.sqrt(n), "mean of ln sigma");
    close(stdOf(logs), pStd, 4 * pStd / Math.sqrt(2 * n), "std of ln sigma");
  }
  assert.deepEqual(drawEdmSigmas(4, new Rng(5)), drawEdmSigmas(4, new Rng(5)));
  assert.notDeepEqual(drawEdmSigmas(4, new Rng(5)), drawEdmSigmas(4, new Rng(6)));
});

Deno.test("drawVeSigmas() is log-uniform on [sigmaMin, sigmaMax]", () => {
  const n = 20000;
  const logs = Array.from(drawVeSigmas(n, new Rng(12)), Math.log);
  const lo = Math.log(0.02), hi = Math.log(100);
  assert.ok(logs.every((v) => v >= lo - 1e-6 && v <= hi + 1e-6));
  close(meanOf(logs), (lo + hi) / 2, 4 * (hi - lo) / Math.sqrt(12 * n), "mean of ln sigma");
  close(stdOf(logs), (hi - lo) / Math.sqrt(12), 0.02, "std of ln sigma");
});

Deno.test("drawVpSigmas() gives sigma = sigma_vp(t) with t ~ U(epsT, 1)", () => {
  const n = 20000;
  const vp = vpSchedule({ epsT: 0.2 });
  const ts = Array.from(drawVpSigmas(n, new Rng(13), { epsT: 0.2 }), (s) => vp.sigmaInv(s));
  assert.ok(ts.every((t) => t >= 0.2 - 1e-5 && t <= 1 + 1e-5));
  close(meanOf(ts), 0.6, 4 * 0.8 / Math.sqrt(12 * n), "mean of t");
  close(stdOf(ts), 0.8 / Math.sqrt(12), 0.01, "std of t");
});

Deno.test("losses leak no tensors and leave the caller's tensors alone", () => {
  const { y } = batch(1);
  const sigma = tf.tensor1d(drawEdmSigmas(SHAPE[0], new Rng(0)));
  const noise = rngNoise(new Rng(1)).randn(SHAPE);
  const denoiser = edmPrecond((x) => tf.mul(x, 0.3));
  for (const c of cases) {
    const before = tf.memory().numTensors;
    const value = c.loss(denoiser, y, { sigma, noise });
    assert.equal(tf.memory().numTensors, before + 1, c.name);
    value.dispose();
  }
  assert.ok(!y.isDisposed && !sigma.isDisposed && !noise.isDisposed);
  tf.dispose([y, sigma, noise]);
});

Deno.test("losses pass conditioning and apply options to the denoiser", () => {
  const cond: Conditioning = {};
  const opts: ApplyOptions = { training: true };
  let seen: unknown[] = [];
  const spy: Denoiser = (x, _s, c, o) => {
    seen = [c, o];
    return tf.zerosLike(x);
  };
  const y = tf.ones([2, 3]), sigma = tf.tensor1d([1, 2]), noise = tf.zeros([2, 3]);
  tf.dispose(edmLoss()(spy, y, { sigma, noise }, cond, opts));
  assert.equal(seen[0], cond);
  assert.equal(seen[1], opts);
  tf.dispose([y, sigma, noise]);
});

Deno.test({
  name: "edmLoss() gradient through edmPrecond matches its closed form",
  ignore: !hasGradients,
}, async () => {
  const w = tf.variable(tf.scalar(0.3));
  const denoiser = edmPrecond((z) => tf.mul(z, w));
  const { y, yData } = batch(21);
  const rng = new Rng(22);
  const sigmas = drawEdmSigmas(SHAPE[0], rng);
  const nData = rng.fillNormal(new Float32Array(SHAPE[0] * PER));
  const sigma = tf.tensor1d(sigmas), noise = tf.tensor(nData, SHAPE);
  const loss = edmLoss();
  const { value, grads } = tf.variableGrads(() => loss(denoiser, y, { sigma, noise }), [w]);
  // D = (c_skip + c_out c_in w) x, so dL/dw = mean_i lambda_i sum 2 (D - y) c_out c_in x.
  let wantLoss = 0, wantGrad = 0;
  for (let i = 0; i < SHAPE[0]; i++) {
    const c = edmCoefficients(sigmas[i]);
    const lambda = 1 / c.cOut ** 2;
    for (let k = 0; k < PER; k++) {
      const yv = yData[i * PER + k], x = yv + sigmas[i] * nData[i * PER + k];
      const r = (c.cSkip + c.cOut * c.cIn * 0.3) * x - yv;
      wantLoss += lambda * r * r / SHAPE[0];
      wantGrad += lambda * 2 * r * c.cOut * c.cIn * x / SHAPE[0];
    }
  }
  close((await value.data())[0], wantLoss, 1e-4, "loss");
  close((await grads[w.name].data())[0], wantGrad, 1e-4, "gradient");
  tf.dispose([value, grads[w.name], w, y, sigma, noise]);
});

Deno.test("losses and draws reject mismatched shapes and bad options", () => {
  const loss = edmLoss();
  const y = tf.ones([2, 3]);
  const bad = [
    { sigma: tf.tensor1d([1]), noise: tf.zeros([2, 3]) },
    { sigma: tf.tensor1d([1, 2]), noise: tf.zeros([2, 4]) },
  ];
  for (const draws of bad) {
    assert.throws(() => loss((x) => tf.zerosLike(x), y, draws), RangeError);
    tf.dispose([draws.sigma, draws.noise]);
  }
  tf.dispose(y);
  assert.throws(() => edmLoss({ sigmaData: 0 }), RangeError);
  assert.throws(() => drawEdmSigmas(0, new Rng(0)), RangeError);
  assert.throws(() => drawEdmSigmas(2, new Rng(0), { pStd: -1 }), RangeError);
  assert.throws(() => drawVeSigmas(2, new Rng(0), { sigmaMin: 3, sigmaMax: 2 }), RangeError);
  assert.throws(() => drawVpSigmas(2, new Rng(0), { epsT: 2 }), RangeError);
  assert.throws(() => drawVpSigmas(1.5, new Rng(0)), RangeError);
  assert.throws(() => weightedLoss({ weight: 3 as never }), TypeError);
});
