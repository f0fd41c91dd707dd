import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import type { ApplyOptions, Conditioning, Network } from "../core/types.ts";
import { edmCoefficients, edmPrecond } from "../models/precond_edm.ts";
import { vpCoefficients, vpPrecond } from "../models/precond_vp.ts";
import { veCoefficients, vePrecond } from "../models/precond_ve.ts";
import { iddpmCoefficients, iddpmPrecond } from "../models/precond_iddpm.ts";
import type { PrecondCoefficients, Preconditioned } from "../models/precond.ts";
import { vpSchedule } from "../schedules/vp.ts";
import { iddpmSchedule } from "../schedules/iddpm.ts";

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
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected}`,
  );
}

// F(z; c) = 2 z + c, so D = c_skip x + c_out (2 c_in x + c_noise) reveals all four coefficients.
const probe: Network = (z, cNoise) =>
  tf.add(tf.mul(z, 2), tf.reshape(cNoise, [z.shape[0], ...z.shape.slice(1).map(() => 1)]));

async function checkAgainstScalars(
  d: Preconditioned,
  sigmas: number[],
  shape: number[],
  coeffs: (s: number) => PrecondCoefficients,
): Promise<void> {
  const per = shape.slice(1).reduce((a, b) => a * b, 1);
  const xData = Float32Array.from({ length: shape[0] * per }, (_, k) => Math.sin(k + 1));
  const x = tf.tensor(xData, shape);
  const sigma = tf.tensor1d(sigmas);
  const before = tf.memory().numTensors;
  const out = d(x, sigma);
  assert.equal(tf.memory().numTensors, before + 1, `${d.kind} leaks tensors`);
  assert.deepEqual(out.shape, shape);
  const got = await out.data();
  for (let i = 0; i < shape[0]; i++) {
    const c = coeffs(Math.fround(sigmas[i]));
    for (let k = 0; k < per; k++) {
      const xv = xData[i * per + k];
      const want = c.cSkip * xv + c.cOut * (2 * c.cIn * xv + c.cNoise);
      close(got[i * per + k], want, 2e-5, `${d.kind} D[${i},${k}] at sigma ${sigmas[i]}`);
    }
  }
  tf.dispose([x, sigma, out]);
}

Deno.test("edmCoefficients() match Table 1 at sample sigmas", () => {
  for (const sd of [0.5, 1.3]) {
    for (const s of [0.002, 0.5, 1, 80]) {
      const c = edmCoefficients(s, { sigmaData: sd });
      close(c.cSkip, sd ** 2 / (s ** 2 + sd ** 2), 1e-14, "cSkip");
      close(c.cOut, s * sd / Math.sqrt(sd ** 2 + s ** 2), 1e-14, "cOut");
      close(c.cIn, 1 / Math.sqrt(s ** 2 + sd ** 2), 1e-14, "cIn");
      close(c.cNoise, 0.25 * Math.log(s), 1e-14, "cNoise");
    }
  }
  // Default sigma_data = 0.5: at sigma = 0.5, c_skip = 1/2, c_out = 0.5/sqrt(2).
  close(edmCoefficients(0.5).cSkip, 0.5, 1e-15, "cSkip default");
  close(edmCoefficients(0.5).cOut, 0.5 / Math.SQRT2, 1e-15, "cOut default");
});

Deno.test("vpCoefficients() match Table 1: c_noise = (M-1) sigma^-1(sigma)", () => {
  const vp = vpSchedule();
  for (const t of [1e-5, 1e-3, 0.25, 1]) {
    const s = vp.sigma(t);
    const c = vpCoefficients(s);
    assert.equal(c.cSkip, 1);
    close(c.cOut, -s, 1e-15, "cOut");
    close(c.cIn, 1 / Math.sqrt(s * s + 1), 1e-15, "cIn");
    close(c.cNoise, 999 * t, 1e-9, `cNoise at t=${t}`);
  }
  close(vpCoefficients(vp.sigma(0.5), { M: 11 }).cNoise, 5, 1e-9, "M = 11");
});

Deno.test("veCoefficients() and iddpmCoefficients() match Table 1", () => {
  for (const s of [0.02, 2, 100]) {
    const c = veCoefficients(s);
    assert.deepEqual([c.cSkip, c.cIn], [1, 1]);
    close(c.cOut, s, 0, "cOut");
    close(c.cNoise, Math.log(s / 2), 1e-15, "cNoise");
  }
  const { u } = iddpmSchedule();
  for (const j of [0, 8, 500, 999]) {
    const c = iddpmCoefficients(u[j] * (1 + 1e-7));
    assert.equal(c.cNoise, 999 - j);
    close(c.cOut, -u[j], 1e-6, "cOut");
    close(c.cIn, 1 / Math.sqrt(u[j] ** 2 + 1), 1e-6, "cIn");
    assert.equal(c.cSkip, 1);
  }
});

Deno.test("edmPrecond() is c_skip x + c_out F(c_in x; c_noise), NHWC and [N,D]", async () => {
  const d = edmPrecond(probe, { sigmaData: 0.7 });
  const coeffs = (s: number) => edmCoefficients(s, { sigmaData: 0.7 });
  await checkAgainstScalars(d, [0.01, 0.7, 20], [3, 2, 2, 2], coeffs);
  await checkAgainstScalars(d, [0.01, 0.7, 20], [3, 4], coeffs);
});

Deno.test("vpPrecond(), vePrecond(), iddpmPrecond() compute their Table 1 denoisers", async () => {
  const vp = vpSchedule();
  await checkAgainstScalars(
    vpPrecond(probe),
    [vp.sigma(0.01), 1, vp.sigma(0.9)],
    [3, 2, 2, 1],
    (s) => vpCoefficients(s),
  );
  await checkAgainstScalars(vePrecond(probe), [0.02, 1, 90], [3, 5], veCoefficients);
  const { u } = iddpmSchedule();
  const id = iddpmPrecond(probe);
  await checkAgainstScalars(id, [u[999], u[400], u[8]], [3, 2, 1, 3], (s) => iddpmCoefficients(s));
  await checkAgainstScalars(id, [0.5 * (u[3] + u[4]) * 1.001, 0.001, 1e6], [3, 2], id.coefficients);
});

Deno.test("preconditioners expose sigmaMin, sigmaMax, roundSigma and coefficients", () => {
  const edm = edmPrecond(probe);
  assert.deepEqual([edm.kind, edm.sigmaMin, edm.sigmaMax, edm.roundSigma(0.3)], [
    "edm",
    0,
    Infinity,
    0.3,
  ]);
  const vp = vpPrecond(probe);
  const sch = vpSchedule();
  assert.equal(vp.kind, "vp");
  close(vp.sigmaMin, sch.sigma(1e-5), 1e-15, "VP sigmaMin");
  close(vp.sigmaMax, sch.sigma(1), 1e-15, "VP sigmaMax");
  assert.equal(vp.roundSigma(1.234), 1.234);
  const ve = vePrecond(probe);
  assert.deepEqual([ve.kind, ve.sigmaMin, ve.sigmaMax, ve.roundSigma(7)], ["ve", 0.02, 100, 7]);
  const { u } = iddpmSchedule();
  const id = iddpmPrecond(probe);
  assert.deepEqual([id.kind, id.sigmaMin, id.sigmaMax], ["iddpm", u[999], u[0]]);
  assert.equal(id.roundSigma(u[42] * 1.0001), u[42]);
  assert.equal(id.roundSigma(0), 0);
  assert.equal(id.network, probe);
  assert.deepEqual(edm.coefficients(2), edmCoefficients(2));
  assert.deepEqual(vp.coefficients(2), vpCoefficients(2));
});

Deno.test("preconditioners pass conditioning and apply options to the network unchanged", () => {
  const cond: Conditioning = { classLabels: tf.tensor2d([[1, 0], [0, 1]]) };
  const opts: ApplyOptions = { training: true };
  for (const make of [edmPrecond, vpPrecond, vePrecond, iddpmPrecond]) {
    let seen: [Conditioning | undefined, ApplyOptions | undefined] | null = null;
    const net: Network = (z, _c, c, o) => {
      seen = [c, o];
      return tf.zerosLike(z);
    };
    const x = tf.ones([2, 3]), sigma = tf.tensor1d([0.5, 1]);
    tf.dispose(make(net)(x, sigma, cond, opts));
    assert.ok(seen !== null);
    assert.equal(seen![0], cond);
    assert.equal(seen![1], opts);
    assert.ok(!x.isDisposed && !sigma.isDisposed && !cond.classLabels!.isDisposed);
    tf.dispose([x, sigma]);
  }
  tf.dispose(cond.classLabels!);
});

Deno.test({
  name: "preconditioned denoisers are differentiable: dD/dx = c_skip + 2 c_out c_in",
  ignore: !hasGradients,
}, async () => {
  const d = edmPrecond(probe);
  const sigmas = [0.1, 2];
  const x = tf.ones([2, 3]), sigma = tf.tensor1d(sigmas);
  const g = tf.grad((v: tf.Tensor) => tf.sum(d(v, sigma)))(x);
  const got = await g.data();
  for (let i = 0; i < 2; i++) {
    const c = edmCoefficients(Math.fround(sigmas[i]));
    for (let k = 0; k < 3; k++) close(got[i * 3 + k], c.cSkip + 2 * c.cOut * c.cIn, 1e-5, "grad");
  }
  tf.dispose([x, sigma, g]);
});

Deno.test("preconditioners reject a sigma that does not have one level per image", () => {
  const x = tf.ones([2, 3]);
  const bad = [tf.tensor1d([1]), tf.tensor1d([1, 2, 3])];
  for (const s of bad) {
    for (const make of [edmPrecond, vpPrecond, vePrecond, iddpmPrecond]) {
      assert.throws(() => make(probe)(x, s), RangeError);
    }
  }
  tf.dispose([x, ...bad]);
  assert.throws(() => edmPrecond(probe, { sigmaData: 0 }), RangeError);
  assert.throws(() => edmCoefficients(1, { sigmaData: -1 }), RangeError);
  assert.throws(() => vePrecond(probe, { sigmaMin: 0 }), RangeError);
  assert.throws(() => vpPrecond(probe, { M: 1 }), RangeError);
  assert.throws(() => iddpmPrecond(probe, { M: 1 }), RangeError);
});
