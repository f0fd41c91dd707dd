/**
 * RK45 against closed-form ODE solutions, Hutchinson's divergence against the exact trace, and the
 * probability-flow NLL against the closed-form NLL of Gaussian data under its exact denoiser.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import { solveRk45 } from "../eval/rk45.ts";
import { drawProbes, exactResidualDivergence, residualDivergence } from "../eval/divergence.ts";
import { dequantizeInPlace, pfOdeLikelihood } from "../eval/likelihood.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** -log N(x; mu, diag(s^2)), nats. */
function gaussianNll(x: ArrayLike<number>, mu: number[], s: number[]): number {
  let v = 0;
  for (let d = 0; d < mu.length; d++) {
    v += 0.5 * Math.log(2 * Math.PI * s[d] ** 2) + (x[d] - mu[d]) ** 2 / (2 * s[d] ** 2);
  }
  return v;
}

Deno.test("solveRk45() integrates dy/dt = -y to exp(-t) with error at the tolerance's scale", async () => {
  const decay = (_t: number, y: Float64Array) => y.map((v) => -v);
  const errors: number[] = [];
  const steps: number[] = [];
  for (const tol of [1e-4, 1e-6, 1e-8]) {
    const r = await solveRk45(decay, new Float64Array([1]), { t0: 0, t1: 5, rtol: tol, atol: tol });
    errors.push(Math.abs(r.y[0] - Math.exp(-5)));
    steps.push(r.steps);
    // Local error per unit step <= tol and a decaying ODE: the global error stays below ~tol.
    assert.ok(errors.at(-1)! < tol, `tol ${tol}: error ${errors.at(-1)}`);
    // FSAL: 1 initial evaluation + 1 for the starting step + 6 per attempted step.
    assert.equal(r.nfe, 2 + 6 * (r.steps + r.rejected));
  }
  assert.ok(errors[2] < errors[0] / 100, `errors ${errors}`);
  // Order 5: steps grow like tol^(-1/5), so x(1e4)^(1/5) = 6.3 from tol 1e-4 to 1e-8 (a lower
  // order would need x10 or more).
  const ratio = steps[2] / steps[0];
  assert.ok(ratio > 3 && ratio < 9, `steps ${steps} (ratio ${ratio}, expected ~6.3)`);
  // Backwards in time: from exp(-5) at t = 5 back to 1 at t = 0.
  const back = await solveRk45(decay, new Float64Array([Math.exp(-5)]), {
    t0: 5,
    t1: 0,
    rtol: 1e-8,
    atol: 1e-12,
  });
  assert.ok(Math.abs(back.y[0] - 1) < 1e-6, `backwards: ${back.y[0]}`);
});

Deno.test("solveRk45() solves a damped rotation y' = A y against exp(A t) y0", async () => {
  // A = [[-1/2, 2], [-2, -1/2]]: exp(A t) = e^{-t/2} [[cos 2t, sin 2t], [-sin 2t, cos 2t]].
  const f = (_t: number, y: Float64Array) =>
    new Float64Array([-0.5 * y[0] + 2 * y[1], -2 * y[0] - 0.5 * y[1]]);
  const t1 = 4;
  const exact = [Math.exp(-t1 / 2) * Math.cos(2 * t1), -Math.exp(-t1 / 2) * Math.sin(2 * t1)];
  for (const tol of [1e-5, 1e-8]) {
    const seen: number[] = [];
    const r = await solveRk45(f, new Float64Array([1, 0]), {
      t0: 0,
      t1,
      rtol: tol,
      atol: tol,
      onStep: ({ t }) => seen.push(t),
    });
    const err = Math.hypot(r.y[0] - exact[0], r.y[1] - exact[1]);
    assert.ok(err < 10 * tol, `tol ${tol}: error ${err}`);
    assert.equal(seen.at(-1), t1, "the last step lands exactly on t1");
    assert.ok(seen.every((t, i) => i === 0 || t > seen[i - 1]), "time increases");
  }
  await assert.rejects(
    () => solveRk45(f, new Float64Array([1, 0]), { t0: 0, t1, maxSteps: 3 }),
    /loosen rtol\/atol/,
  );
  await assert.rejects(() => solveRk45(f, new Float64Array(2), { t0: 0, t1, rtol: 0 }), RangeError);
});

Deno.test("exactResidualDivergence() equals the closed-form trace of the point-set denoiser's Jacobian", () => {
  // D(x) = sum_i w_i y_i with w = softmax(-|x - y_i|^2 / 2 sigma^2): dD/dx = Cov_w(y) / sigma^2.
  const points = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, 0.5]];
  const xs = [[0.2, 0.1, 0.3], [-0.5, 0.4, 0.1]];
  const sigma = 0.7;
  const yT = tf.tensor2d(points);
  const x = tf.tensor2d(xs);
  const sigmaT = tf.fill([2], sigma) as tf.Tensor1D;
  const { denoised, divergence } = exactResidualDivergence(idealPointSetDenoiser(yT), x, {
    sigma: sigmaT,
    chunk: 2, // exercises the chunked sum (3 unit vectors in chunks of 2 + 1)
  });
  const got = divergence.dataSync();
  xs.forEach((xi, n) => {
    const logits = points.map((p) =>
      -p.reduce((s, v, d) => s + (xi[d] - v) ** 2, 0) / (2 * sigma ** 2)
    );
    const m = Math.max(...logits);
    const w = logits.map((l) => Math.exp(l - m));
    const z = w.reduce((a, b) => a + b, 0);
    const mean = [0, 1, 2].map((d) => points.reduce((s, p, i) => s + (w[i] / z) * p[d], 0));
    const trace = points.reduce(
      (s, p, i) => s + (w[i] / z) * p.reduce((q, v, d) => q + (v - mean[d]) ** 2, 0),
      0,
    ) / sigma ** 2;
    assert.ok(Math.abs(got[n] - (3 - trace)) < 1e-4, `image ${n}: ${got[n]} vs ${3 - trace}`);
  });
  assert.deepEqual(denoised.shape, [2, 3]);
  tf.dispose([yT, x, sigmaT, denoised, divergence]);
});

Deno.test("residualDivergence() with many probes matches the exact divergence within statistical error", () => {
  const yT = tf.tensor2d([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [-1, -1, 0.5, 0]]);
  const x = tf.tensor2d([[0.2, 0.1, 0.3, -0.2], [-0.5, 0.4, 0.1, 0.3]]);
  const sigma = tf.fill([2], 0.6) as tf.Tensor1D;
  const denoiser = idealPointSetDenoiser(yT);
  const before = tf.memory().numTensors;
  const exact = exactResidualDivergence(denoiser, x, { sigma });
  const want = exact.divergence.dataSync();
  // Any identity weight c of the control variate keeps the estimate unbiased.
  const cases = [["gaussian", 1], ["gaussian", 0.3], ["rademacher", 1]] as const;
  for (const [kind, identityWeight] of cases) {
    const k = 4000;
    const probes = drawProbes([k, 2, 4], { kind, rng: new Rng(identityWeight * 10 + k) });
    const { denoised, divergence } = residualDivergence(denoiser, x, {
      sigma,
      probes,
      identityWeight,
    });
    const est = divergence.arraySync();
    for (let n = 0; n < 2; n++) {
      const v = est.map((row) => row[n]);
      const m = v.reduce((a, b) => a + b, 0) / k;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (k - 1));
      assert.ok(sd > 1e-3, `${kind}: the Jacobian is not diagonal, so the estimate must vary`);
      assert.ok(
        Math.abs(m - want[n]) < 4 * sd / Math.sqrt(k),
        `${kind} image ${n}: mean ${m} vs exact ${want[n]} (sd ${sd})`,
      );
    }
    // The denoised output is D(x) itself, not a probe-weighted copy.
    assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(denoised, exact.denoised))).dataSync()[0]) < 1e-6);
    tf.dispose([probes, denoised, divergence]);
  }
  tf.dispose([exact.denoised, exact.divergence]);
  assert.equal(tf.memory().numTensors, before, "no leaked tensors");
  tf.dispose([yT, x, sigma]);
});

Deno.test("pfOdeLikelihood() gives the closed-form NLL of Gaussian data under its exact denoiser (D = 2..8)", async () => {
  const rng = new Rng(7);
  for (const dim of [2, 5, 8]) {
    const mu = Array.from({ length: dim }, (_, d) => 0.3 * Math.sin(d + 1));
    const s = Array.from({ length: dim }, (_, d) => 0.4 + 0.1 * d);
    const n = 3;
    const xs = Array.from({ length: n }, () => mu.map((m, d) => m + s[d] * rng.normal()));
    const x = tf.tensor2d(xs);
    const denoiser = idealGaussianDenoiser({ mean: mu, std: s });
    const before = tf.memory().numTensors;
    const sigmaMin = 0.002, sigmaMax = 1e4;
    // Rademacher probes are exact for this diagonal Jacobian: one probe, no estimator noise.
    const r = await pfOdeLikelihood(denoiser, x, {
      rng: new Rng(0),
      dequantize: false,
      numProbes: 1,
      sigmaMin,
      sigmaMax,
    });
    assert.equal(tf.memory().numTensors, before, "no leaked tensors");
    xs.forEach((xi, i) => {
      // What the procedure computes in closed form: x(sigma) = mu + (x - mu) g, the divergence
      // integral is (1/2) sum log((s^2 + sigmaMax^2) / (s^2 + sigmaMin^2)), prior N(0, sigmaMax^2).
      let exactProcedure = 0;
      for (let d = 0; d < dim; d++) {
        const ratio = (s[d] ** 2 + sigmaMax ** 2) / (s[d] ** 2 + sigmaMin ** 2);
        const xT = mu[d] + (xi[d] - mu[d]) * Math.sqrt(ratio);
        exactProcedure += 0.5 * Math.log(2 * Math.PI * sigmaMax ** 2) +
          xT ** 2 / (2 * sigmaMax ** 2) - 0.5 * Math.log(ratio);
      }
      assert.ok(
        Math.abs(r.nll[i] - exactProcedure) < 2e-4 * dim,
        `D=${dim} point ${i}: ${r.nll[i]} vs ODE closed form ${exactProcedure}`,
      );
      // ... and the data NLL itself: sigmaMin and the prior mismatch cost < 1e-3 nats here.
      const truth = gaussianNll(xi, mu, s);
      assert.ok(
        Math.abs(r.nll[i] - truth) < 2e-3,
        `D=${dim} point ${i}: ${r.nll[i]} vs -log N(x; mu, s^2 I) = ${truth}`,
      );
      assert.ok(Math.abs(r.bitsPerDim[i] - r.nll[i] / (dim * Math.LN2)) < 1e-12);
    });
    assert.equal(r.offsetBits, 0);
    x.dispose();
  }
});

Deno.test("pfOdeLikelihood() agrees in sigma and log sigma, and Gaussian probes report their spread", async () => {
  const mu = [0.2, -0.1, 0.05], s = [0.5, 0.3, 0.8];
  const xs = [[0.4, 0.1, -0.6], [0.0, -0.3, 0.9]];
  const x = tf.tensor2d(xs);
  const denoiser = idealGaussianDenoiser({ mean: mu, std: s });
  const base = { dequantize: false, sigmaMax: 2000 } as const;
  const inSigma = await pfOdeLikelihood(denoiser, x, {
    ...base,
    rng: new Rng(0),
    variable: "sigma",
    probe: "exact",
  });
  const inLog = await pfOdeLikelihood(denoiser, x, { ...base, rng: new Rng(0), probe: "exact" });
  xs.forEach((xi, i) => {
    const truth = gaussianNll(xi, mu, s);
    assert.ok(Math.abs(inSigma.nll[i] - truth) < 3e-3, `sigma: ${inSigma.nll[i]} vs ${truth}`);
    assert.ok(Math.abs(inLog.nll[i] - truth) < 3e-3, `log sigma: ${inLog.nll[i]} vs ${truth}`);
    assert.equal(inLog.bitsPerDimStd[i], 0);
  });
  // Gaussian probes are not exact here (eps^T J eps varies), so the probes disagree; their mean
  // is unbiased: within 4 standard errors of the truth.
  const k = 24;
  const g = await pfOdeLikelihood(denoiser, x, {
    ...base,
    rng: new Rng(3),
    probe: "gaussian",
    numProbes: k,
  });
  xs.forEach((xi, i) => {
    const truthBits = gaussianNll(xi, mu, s) / (3 * Math.LN2);
    assert.ok(g.bitsPerDimStd[i] > 0.01, `spread ${g.bitsPerDimStd[i]}`);
    assert.ok(
      Math.abs(g.bitsPerDim[i] - truthBits) < 4 * g.bitsPerDimStd[i] / Math.sqrt(k),
      `gaussian probes: ${g.bitsPerDim[i]} vs ${truthBits} (std ${g.bitsPerDimStd[i]})`,
    );
  });
  x.dispose();
});

Deno.test("pfOdeLikelihood() dequantizes 8-bit data on 2/256 bins and adds 7 bits/dim", async () => {
  const bytes = [0, 17, 128, 200, 255, 3, 90, 254];
  const values = bytes.map((b) => (2 * b) / 255 - 1); // DDPM's scaling to [-1, 1]
  const dequantized = dequantizeInPlace(new Float64Array(values), new Rng(11));
  dequantized.forEach((v, i) => {
    assert.equal(Math.floor((v + 1) * 128), bytes[i], `value ${i} stays in its byte's bin`);
  });
  const mu = [0, 0, 0, 0], s = [0.6, 0.6, 0.6, 0.6];
  const x = tf.tensor2d(values, [2, 4]);
  const r = await pfOdeLikelihood(idealGaussianDenoiser({ mean: 0, std: 0.6 }), x, {
    rng: new Rng(11), // the same stream: dequantization noise is drawn first, in order
    sigmaMax: 2000,
  });
  assert.equal(r.offsetBits, 7);
  for (let i = 0; i < 2; i++) {
    const want = gaussianNll(dequantized.subarray(4 * i, 4 * i + 4), mu, s) / (4 * Math.LN2) + 7;
    assert.ok(Math.abs(r.bitsPerDim[i] - want) < 2e-3, `${r.bitsPerDim[i]} vs ${want}`);
  }
  assert.ok(Math.abs(r.meanBitsPerDim - (r.bitsPerDim[0] + r.bitsPerDim[1]) / 2) < 1e-12);
  const outside = tf.tensor2d([[3, 0]]);
  await assert.rejects(
    () => pfOdeLikelihood(idealGaussianDenoiser(), outside, { rng: new Rng(0) }),
    /outside \[-1, 1\]/,
  );
  outside.dispose();
  await assert.rejects(
    () => pfOdeLikelihood(idealGaussianDenoiser(), x, { rng: new Rng(0), sigmaMin: 0 }),
    RangeError,
  );
  x.dispose();
});
