import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { type EpsPredictor, muFromEps, posteriorMean, qSample } from "../models/ddpm_param.ts";
import { ddpmProcess, reverseVariances } from "../schedules/ddpm.ts";
import {
  createTimestepHistory,
  drawTimesteps,
  isWarmedUp,
  recordTimestepLosses,
  timestepProbabilities,
} from "../training/ddpm_importance.ts";
import { ddpmSimpleLoss, ddpmVlbLoss, ddpmVlbTerms } from "../training/ddpm_loss.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const process = ddpmProcess();
const rng = new Rng(11);
// 8-bit data in [-1, 1]: 2k/255 - 1.
const X0 = tf.keep(
  tf.tidy(() =>
    tf.sub(
      tf.div(
        tf.mul(tf.floor(tf.mul(tf.randomUniform([6, 2, 2, 1], 0, 1, "float32", 3), 256)), 2),
        255,
      ),
      1,
    )
  ),
);
const NOISE = tf.keep(rngNoise(rng).randn([6, 2, 2, 1]));
const STEPS = [1, 2, 3, 50, 700, 1000];
const DIMS = 4;

/** A fixed, imperfect predictor: eps(x_t, t) = 0.7 x_t + t / 2000. */
const EPS: EpsPredictor = (xt, t) =>
  tf.tidy(() => tf.add(tf.mul(xt, 0.7), tf.reshape(tf.div(t, 2000), [-1, 1, 1, 1])));

function values(x: tf.Tensor): Float32Array {
  return x.dataSync() as Float32Array;
}

Deno.test("ddpmSimpleLoss() is eq. 14: the batch mean of the per-pixel mean of (eps - eps_theta)^2", () => {
  const loss = ddpmSimpleLoss({ process });
  const weights = [1, 2, 0.5, 1, 3, 0.25];
  tf.tidy(() => {
    const got = loss(EPS, X0, { t: STEPS, noise: NOISE, weights }).dataSync()[0];
    const x0 = values(X0), noise = values(NOISE);
    let expected = 0;
    STEPS.forEach((t, i) => {
      const ab = process.alphaBar[t];
      let se = 0;
      for (let j = 0; j < DIMS; j++) {
        const xt = Math.sqrt(ab) * x0[i * DIMS + j] + Math.sqrt(1 - ab) * noise[i * DIMS + j];
        se += (noise[i * DIMS + j] - (0.7 * xt + t / 2000)) ** 2;
      }
      expected += (weights[i] * se) / DIMS / STEPS.length;
    });
    assert.ok(Math.abs(got - expected) < 1e-5 * expected, `${got} vs ${expected}`);
  });
});

Deno.test("ddpmVlbTerms() for t >= 2 is the Gaussian KL of eq. 5 between q(x_{t-1}|x_t,x_0) and p_theta", () => {
  for (const variance of ["beta", "betaTilde"] as const) {
    const sigma2 = reverseVariances(process, variance);
    tf.tidy(() => {
      const { terms } = ddpmVlbTerms(EPS, X0, { process, variance, t: STEPS, noise: NOISE });
      const got = values(terms);
      STEPS.forEach((t, i) => {
        if (t === 1) return;
        const x0 = tf.slice(X0, i, 1), noise = tf.slice(NOISE, i, 1);
        const xt = qSample(process, { x0, noise, t });
        const muTilde = values(posteriorMean(process, { xt, x0, t }));
        const mu = values(
          muFromEps(process, { xt, eps: EPS(xt, tf.tensor1d([t])), t }),
        );
        // KL(N(a, v1) || N(b, v2)) = 1/2 (log(v2 / v1) + v1 / v2 + (a - b)^2 / v2 - 1), per dimension.
        const v1 = process.posteriorVariance[t], v2 = sigma2[t];
        let kl = 0;
        for (let j = 0; j < DIMS; j++) {
          kl += 0.5 * (Math.log(v2 / v1) + v1 / v2 + (muTilde[j] - mu[j]) ** 2 / v2 - 1);
        }
        const bits = kl / (DIMS * Math.LN2);
        // muTilde - mu is a small difference of float32 numbers: about 1e-5 relative error.
        assert.ok(
          Math.abs(got[i] - bits) < 1e-4 * Math.abs(bits),
          `${variance} t=${t}: ${got[i]} vs ${bits}`,
        );
      });
    });
  }
});

/** Phi(z) in float64 from erf's Taylor series (converges fast for |z| < 3). */
function normalCdf(z: number): number {
  const x = z / Math.SQRT2;
  let sum = x, term = x;
  for (let n = 1; n < 60; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return 0.5 * (1 + (2 / Math.sqrt(Math.PI)) * sum);
}

Deno.test("ddpmVlbTerms() for t = 1 is -log of the discretized decoder with sigma_1 = sqrt(beta_1)", () => {
  tf.tidy(() => {
    // A perfect predictor puts the decoder mean on x_0. With std sqrt(beta_1) = 0.01 an inner
    // bin (half-width 1/255) holds Phi(z) - Phi(-z), an edge bin Phi(z), z = (1/255) / 0.01.
    const perfect: EpsPredictor = () => tf.clone(NOISE);
    const { terms } = ddpmVlbTerms(perfect, X0, { process, t: 1, noise: NOISE });
    const z = 1 / 255 / Math.sqrt(process.betas[1]);
    const inner = normalCdf(z) - normalCdf(-z), edge = normalCdf(z);
    const x0 = values(X0);
    const got = values(terms);
    for (let i = 0; i < 6; i++) {
      let nats = 0;
      for (let j = 0; j < DIMS; j++) {
        nats -= Math.log(Math.abs(x0[i * DIMS + j]) > 0.999 ? edge : inner);
      }
      const bits = nats / (DIMS * Math.LN2);
      assert.ok(Math.abs(got[i] - bits) < 1e-4, `image ${i}: ${got[i]} vs ${bits}`);
    }
  });
});

Deno.test("ddpmVlbLoss() is the weighted batch mean of the terms and has finite gradients", () => {
  const w = tf.variable(tf.scalar(0.5));
  const net: EpsPredictor = (xt) => tf.mul(xt, w);
  const weights = [1, 2, 3, 4, 5, 6];
  for (const decoder of ["discretized", "gaussian"] as const) {
    const loss = ddpmVlbLoss({ process, decoder });
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() =>
        loss(net, X0, { t: STEPS, noise: NOISE, weights })
      );
      const { terms } = ddpmVlbTerms(net, X0, { process, decoder, t: STEPS, noise: NOISE });
      const t = values(terms);
      const expected = t.reduce((s, v, i) => s + v * weights[i], 0) / 6;
      assert.ok(Math.abs(value.dataSync()[0] - expected) < 1e-5 * Math.abs(expected));
      assert.ok(Number.isFinite(grads[w.name].dataSync()[0]), `${decoder} gradient`);
    });
  }
  const simple = ddpmSimpleLoss({ process });
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => simple(net, X0, { t: STEPS, noise: NOISE }));
    assert.ok(Number.isFinite(grads[w.name].dataSync()[0]));
  });
  w.dispose();
});

Deno.test("the DDPM losses reject draws that do not fit and leak no tensors", () => {
  const loss = ddpmVlbLoss({ process });
  assert.throws(() => loss(EPS, X0, { t: [1, 2], noise: NOISE }), RangeError);
  assert.throws(() => loss(EPS, X0, { t: [0, 1, 1, 1, 1, 1], noise: NOISE }), RangeError);
  assert.throws(() => loss(EPS, X0, { t: STEPS, noise: tf.zeros([6, 4]) }), RangeError);
  assert.throws(() => ddpmVlbLoss({ process, variance: "learned" as "beta" }), RangeError);
  const before = tf.memory().numTensors;
  loss(EPS, X0, { t: STEPS, noise: NOISE }).dispose();
  ddpmSimpleLoss({ process })(EPS, X0, { t: STEPS, noise: NOISE }).dispose();
  const out = ddpmVlbTerms(EPS, X0, { process, t: 3, noise: NOISE });
  out.terms.dispose();
  out.x0Hat.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("importance sampling of t is uniform until every step has 10 losses, then ~ sqrt(E[L_t^2])", () => {
  const T = 4;
  let history = createTimestepHistory(T);
  assert.deepEqual(Array.from(timestepProbabilities(history)), [0.25, 0.25, 0.25, 0.25]);
  // Step t gets 12 values; only the last 10 count (the ring drops the first two). They are t,
  // except for step 1: 0, 2, 0, 2, ..., so sqrt(E[L^2]) = sqrt(2) there while E[L] = 1.
  const rms = [Math.SQRT2, 2, 3, 4];
  for (let t = 1; t <= T; t++) {
    const before = history;
    history = recordTimestepLosses(history, { t: [t, t], losses: [1000, 1000] });
    assert.notEqual(history, before);
    assert.equal(before.counts[t - 1], 0, "recording does not mutate the old history");
    history = recordTimestepLosses(history, {
      t: new Array(10).fill(t),
      losses: Array.from({ length: 10 }, (_, j) => (t === 1 ? 2 * (j % 2) : t)),
    });
    if (t < T) assert.ok(!isWarmedUp(history));
  }
  assert.ok(isWarmedUp(history));
  const p = timestepProbabilities(history, { uniformShare: 0.1 });
  const total = rms.reduce((a, b) => a + b, 0);
  for (let t = 1; t <= T; t++) {
    const expected = (rms[t - 1] / total) * 0.9 + 0.1 / T;
    assert.ok(Math.abs(p[t - 1] - expected) < 1e-12, `p_${t}: ${p[t - 1]} vs ${expected}`);
  }
  // Draws follow p and carry weights 1 / (T p).
  const { t, weights } = drawTimesteps(new Rng(5), { count: 20000, probabilities: p });
  const counts = new Array(T).fill(0);
  t.forEach((k, i) => {
    counts[k - 1]++;
    assert.ok(Math.abs(weights[i] - 1 / (T * p[k - 1])) < 1e-6);
  });
  for (let k = 0; k < T; k++) {
    const sd = Math.sqrt(20000 * p[k] * (1 - p[k]));
    assert.ok(Math.abs(counts[k] - 20000 * p[k]) < 5 * sd, `step ${k + 1}: ${counts[k]}`);
  }
  // The weighted estimator is unbiased for the mean term: E[w L_t] = (1/T) sum_t L_t.
  const L = [5, 1, 0.5, 0.1];
  const estimate = Array.from(t).reduce((s, k, i) => s + weights[i] * L[k - 1], 0) / t.length;
  assert.ok(Math.abs(estimate - 1.65) < 0.05, `estimate ${estimate}`);
});

Deno.test("drawTimesteps() is uniform on 1..T by default and validates its input", () => {
  const { t, weights } = drawTimesteps(new Rng(1), { count: 5000, T: 10 });
  const counts = new Array(10).fill(0);
  t.forEach((k) => counts[k - 1]++);
  counts.forEach((c) => assert.ok(Math.abs(c - 500) < 5 * Math.sqrt(450), `${c}`));
  assert.ok(weights.every((w) => w === 1));
  assert.throws(() => drawTimesteps(new Rng(1), { count: 0, T: 10 }), RangeError);
  assert.throws(() => drawTimesteps(new Rng(1), { count: 2 }), RangeError);
  assert.throws(
    () => drawTimesteps(new Rng(1), { count: 2, probabilities: [0.5, 0.6] }),
    RangeError,
  );
  assert.throws(
    () => recordTimestepLosses(createTimestepHistory(3), { t: [4], losses: [1] }),
    RangeError,
  );
});
