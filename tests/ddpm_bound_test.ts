import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import type { NoiseSource } from "../core/noise.ts";
import { perImageNoise } from "../core/noise.ts";
import { epsFromDenoiser } from "../models/ddpm_param.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { ddpmProcess, respaceDdpm } from "../schedules/ddpm.ts";
import { ddpmBound, summarizeDdpmBound } from "../eval/ddpm_bound.ts";
import {
  discretizedGaussianLogLikelihood,
  gaussianLogLikelihood,
  logUpperTail,
} from "../eval/discretized_gaussian.ts";
import { rateDistortionCurve, rateDistortionPlots } from "../eval/rate_distortion.ts";

await selectBackend({ backend: "wasm", log: () => {} });

/** Phi(z) and log Q(z) in float64: erf's Taylor series near 0, erfc's continued fraction beyond. */
function erfc(x: number): number {
  if (x < 0) return 2 - erfc(-x);
  if (x < 3) {
    let sum = x, term = x;
    for (let n = 1; n < 80; n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 80; n >= 1; n--) f = n / 2 / (x + f);
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / (x + f);
}
const upperTail = (z: number) => 0.5 * erfc(z / Math.SQRT2);

const BINS = Array.from({ length: 256 }, (_, k) => (2 * k) / 255 - 1);

Deno.test("the discretized decoder's 256 bin probabilities sum to 1 within 1e-6", () => {
  const cases = [
    [0, 0.01],
    [0.3, 0.05],
    [-0.99, 0.003],
    [1.2, 0.02],
    [0, 1],
    [0.5, 2],
    [
      -3,
      0.5,
    ],
    [0, 1e-4],
    [0.7, 100],
  ];
  for (const [mean, std] of cases) {
    const logP = tf.tidy(() =>
      discretizedGaussianLogLikelihood(tf.tensor1d(BINS), { mean: tf.fill([256], mean), std })
        .dataSync()
    );
    const total = Array.from(logP).reduce((s, v) => s + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-6, `mean ${mean}, std ${std}: sum ${total}`);
    assert.ok(Array.from(logP).every(Number.isFinite), `mean ${mean}, std ${std}: finite logs`);
  }
});

Deno.test("the discretized decoder matches eq. 13 in float64, edge bins open, tails accurate", () => {
  // [x, mean, std]: centre, tails 10 and 50 standard deviations out, both edge bins.
  const cases = [
    [0.2, 0.19, 0.003],
    [0.5, 0, 0.05],
    [-0.5, 0, 0.05],
    [0, 0.3, 0.01],
    [
      -1,
      0,
      0.1,
    ],
    [1, 0.95, 0.1],
    [-1, -1, 0.01],
  ];
  for (const [x, mean, std] of cases) {
    const k = Math.round((x + 1) * 127.5);
    const lo = (2 * k - 1) / 255 - 1, hi = (2 * k + 1) / 255 - 1;
    const zLo = (lo - mean) / std, zHi = (hi - mean) / std;
    const p = k === 0
      ? upperTail(-zHi)
      : k === 255
      ? upperTail(zLo)
      : (lo + hi) / 2 > mean
      ? upperTail(zLo) - upperTail(zHi)
      : upperTail(-zHi) - upperTail(-zLo);
    const got = tf.tidy(() =>
      discretizedGaussianLogLikelihood(tf.tensor1d([(2 * k) / 255 - 1]), {
        mean: tf.tensor1d([mean]),
        std,
      }).dataSync()[0]
    );
    const expected = Math.log(p);
    assert.ok(
      Math.abs(got - expected) < 1e-5 * Math.abs(expected) + 1e-6,
      `x ${x}, mean ${mean}, std ${std}: ${got} vs ${expected}`,
    );
  }
  // log Q far out in both tails; the reference uses log erfc(x) = -x^2 - log(sqrt(pi) (x + f)).
  const logUpper64 = (v: number) => {
    if (v < 0) return Math.log1p(-upperTail(-v));
    if (v < 5) return Math.log(upperTail(v));
    const x = v / Math.SQRT2;
    let f = 0;
    for (let n = 80; n >= 1; n--) f = n / 2 / (x + f);
    return Math.log(0.5) - x * x - Math.log(Math.sqrt(Math.PI) * (x + f));
  };
  const z = [-30, -5, 0, 2, 10, 40];
  const got = tf.tidy(() => logUpperTail(tf.tensor1d(z)).dataSync());
  z.forEach((v, i) => {
    const expected = logUpper64(v);
    assert.ok(
      Math.abs(got[i] - expected) < 1e-6 * Math.abs(expected) + 1e-7,
      `log Q(${v}): ${got[i]} vs ${expected}`,
    );
  });
});

Deno.test("the decoder's gradient in the mean matches finite differences", () => {
  const x = tf.tensor1d([-1, -0.2 + 0.2 % (2 / 255), 0.6 - 0.6 % (2 / 255), 1]);
  const mean0 = [-0.99, -0.19, 0.63, 0.9];
  const f = (m: tf.Tensor) =>
    tf.sum(discretizedGaussianLogLikelihood(x, { mean: m, std: 0.02 })) as tf.Scalar;
  const grad = tf.tidy(() => tf.grad(f)(tf.tensor1d(mean0)).dataSync());
  mean0.forEach((m, i) => {
    const h = 1e-3;
    const up = mean0.slice(), down = mean0.slice();
    up[i] = m + h;
    down[i] = m - h;
    const fd = tf.tidy(() =>
      (f(tf.tensor1d(up)).dataSync()[0] - f(tf.tensor1d(down)).dataSync()[0]) / (2 * h)
    );
    assert.ok(
      Math.abs(grad[i] - fd) < 1e-2 * Math.abs(fd) + 1e-2,
      `d/dmean[${i}]: ${grad[i]} vs ${fd}`,
    );
  });
  x.dispose();
  const dens = tf.tidy(() =>
    gaussianLogLikelihood(tf.tensor1d([1]), { mean: tf.tensor1d([0]), std: 2 }).dataSync()[0]
  );
  assert.ok(Math.abs(dens - (-0.5 * Math.log(2 * Math.PI * 4) - 1 / 8)) < 1e-6);
});

Deno.test("L_T at T = 1000 is about 1e-5 bits/dim for data in [-1, 1], as DDPM Section 4 states", async () => {
  const process = ddpmProcess({ T: 1000 });
  // L_T depends only on alphaBar_T: a 1-step respacing keeps it and skips 999 network calls.
  const x = tf.tensor2d([BINS]);
  const zero = (xt: tf.Tensor) => tf.zerosLike(xt);
  const { prior } = await ddpmBound(zero, x, {
    process: respaceDdpm(process, [1000]),
    noise: perImageNoise([0]),
  });
  const abT = process.alphaBar[1000];
  const meanSq = BINS.reduce((s, v) => s + v * v, 0) / 256; // ~1/3
  const expected = 0.5 * (abT * meanSq - abT - Math.log(1 - abT)) / Math.LN2;
  assert.ok(Math.abs(prior[0] - expected) < 1e-12, `${prior[0]} vs ${expected}`);
  assert.ok(prior[0] > 5e-6 && prior[0] < 2e-5, `L_T = ${prior[0]} bits/dim`);
  x.dispose();
});

// ---------- the bound on Gaussian data ----------
//
// Data N(MU, S^2) in one dimension, the exact eps predictor E[eps | x_t], sigma_t^2 = beta_t, the
// cosine schedule (its endpoints do not depend on T, so T = 10, 100, 1000 are the same process
// discretized more finely) and a Gaussian decoder at t = 1 (the continuous analogue of eq. 13).
// With the exact predictor every term of the bound is a quadratic polynomial in (x_0, eps), so its
// expectation is reproduced exactly by four points x_0 = MU +- S, eps = +-1 (all four sign pairs,
// the same eps at every step): the two-point rule has the first two moments of N(0, 1). We run
// ddpmBound on those four "images" and test, with float32 rounding as the only error:
//   1. their mean equals the expected bound computed here in closed form (float64);
//   2. it is >= the exact NLL E[-log N(x; MU, S^2)] = log(2 pi e S^2) / 2, and
//   3. it decreases toward the NLL as T goes 10 -> 100 -> 1000.

const MU = 0.3, S = 0.5;
const SIGNS: [number, number][] = [[1, 1], [1, -1], [-1, 1], [-1, -1]];
const exactNll = (0.5 * Math.log(2 * Math.PI * Math.E * S * S)) / Math.LN2;

/** A noise source that returns eps = +-1 for image i, the same at every draw. */
const signNoise: NoiseSource = {
  randn: (shape) => tf.tensor(SIGNS.map(([, e]) => e), shape),
};

/** The expected bound (bits/dim) in closed form: each term's mean under x_0 ~ N(MU, S^2). */
function expectedBound(T: number, variance: "beta" | "betaTilde"): number {
  const f = (t: number) => Math.cos(((t / T + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const ab = [1], beta = [0];
  for (let t = 1; t <= T; t++) {
    beta.push(Math.min(1 - f(t) / f(t - 1), 0.999));
    ab.push(ab[t - 1] * (1 - beta[t]));
  }
  const s2 = S * S, tilde = (t: number) => ((1 - ab[t - 1]) / (1 - ab[t])) * beta[t];
  const prior = 0.5 * (ab[T] * (MU * MU + s2) + (1 - ab[T]) - 1 - Math.log(1 - ab[T]));
  let diffusion = 0;
  for (let t = 2; t <= T; t++) {
    const v = variance === "beta" ? beta[t] : tilde(t);
    // E||eps - E[eps | x_t]||^2 = Var(eps | x_t) = ab s^2 / (ab s^2 + 1 - ab).
    const residual = (ab[t] * s2) / (ab[t] * s2 + 1 - ab[t]);
    const weight = beta[t] ** 2 / (2 * v * (1 - beta[t]) * (1 - ab[t]));
    diffusion += 0.5 * (Math.log(v / tilde(t)) + tilde(t) / v - 1) + weight * residual;
  }
  const v1 = variance === "beta" ? beta[1] : tilde(2);
  // mu_theta(x_1, 1) = E[x_0 | x_1]; E(x_0 - E[x_0 | x_1])^2 = s^2 (1 - ab_1) / (ab_1 s^2 + 1 - ab_1).
  const decoder = 0.5 * Math.log(2 * Math.PI * v1) +
    (s2 * (1 - ab[1])) / (ab[1] * s2 + 1 - ab[1]) / (2 * v1);
  return (prior + diffusion + decoder) / Math.LN2;
}

async function gaussianBound(T: number, variance: "beta" | "betaTilde") {
  const process = ddpmProcess({ schedule: "cosine", T });
  const eps = epsFromDenoiser(idealGaussianDenoiser({ mean: MU, std: S }), process);
  const x0 = tf.tensor2d(SIGNS.map(([a]) => [MU + S * a]));
  const result = await ddpmBound(eps, x0, {
    process,
    noise: signNoise,
    variance,
    decoder: "gaussian",
    clipX0: false,
  });
  x0.dispose();
  return { process, summary: summarizeDdpmBound([result]) };
}

Deno.test("the DDPM bound on Gaussian data is exact in expectation, >= the NLL, and tightens as T grows", async () => {
  const bounds: number[] = [];
  for (const T of [10, 100, 1000]) {
    const { summary } = await gaussianBound(T, "beta");
    const expected = expectedBound(T, "beta");
    assert.ok(
      Math.abs(summary.bitsPerDim - expected) < 1e-4,
      `T=${T}: ddpmBound ${summary.bitsPerDim} vs closed form ${expected}`,
    );
    assert.ok(summary.bitsPerDim > exactNll, `T=${T}: ${summary.bitsPerDim} <= NLL ${exactNll}`);
    bounds.push(summary.bitsPerDim);
  }
  // Gaps to the NLL (bits/dim): ~0.082, ~0.0088, ~0.00088.
  assert.ok(bounds[0] > bounds[1] && bounds[1] > bounds[2], `not decreasing: ${bounds}`);
  assert.ok(bounds[2] - exactNll < 2e-3, `T=1000 gap ${bounds[2] - exactNll}`);
  // The small variance betaTilde is a valid bound too, though looser for this data.
  const { summary } = await gaussianBound(100, "betaTilde");
  assert.ok(Math.abs(summary.bitsPerDim - expectedBound(100, "betaTilde")) < 1e-4);
  assert.ok(summary.bitsPerDim > bounds[1]);
});

Deno.test("the rate-distortion curve accumulates bits from T down to t and measures x0-hat's RMSE", async () => {
  const T = 10;
  const { process, summary } = await gaussianBound(T, "beta");
  const curve = rateDistortionCurve(summary);
  assert.deepEqual(curve.map((p) => p.t), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
  assert.equal(curve[0].rate, summary.prior);
  let rate = summary.prior;
  for (let i = 1; i < T; i++) {
    rate += summary.stepTerms[T - i + 1];
    assert.ok(Math.abs(curve[i].rate - rate) < 1e-12);
  }
  const last = curve[T];
  assert.ok(Math.abs(last.rate - summary.bitsPerDim) < 1e-9);
  assert.equal(last.distortion, 0);
  // Distortion: 127.5 sqrt(Var(x_0 | x_t)) with Var(x_0 | x_t) = s^2 (1 - ab) / (ab s^2 + 1 - ab).
  for (const p of curve.slice(0, T)) {
    const ab = process.alphaBar[p.t];
    const expected = 127.5 * Math.sqrt((S * S * (1 - ab)) / (ab * S * S + 1 - ab));
    assert.ok(Math.abs(p.distortion - expected) < 1e-3 * expected, `t=${p.t}`);
  }
  const plots = rateDistortionPlots(curve);
  for (const svg of Object.values(plots)) assert.ok(svg.startsWith("<svg") || svg.includes("<svg"));
});

Deno.test("ddpmBound() pools batches, honours its abort signal and leaks no tensors", async () => {
  const process = ddpmProcess({ schedule: "cosine", T: 5 });
  const eps = epsFromDenoiser(idealGaussianDenoiser({ mean: MU, std: S }), process);
  const before = tf.memory().numTensors;
  const x = tf.tensor2d([[0.1, 0.2], [0.3, -0.4], [1, -1]]);
  const whole = await ddpmBound(eps, x, { process, noise: perImageNoise([1, 2, 3]) });
  const [a, b] = tf.split(x, [1, 2]);
  const parts = [
    await ddpmBound(eps, a, { process, noise: perImageNoise([1]) }),
    await ddpmBound(eps, b, { process, noise: perImageNoise([2, 3]) }),
  ];
  a.dispose();
  b.dispose();
  assert.equal(tf.memory().numTensors, before + 1);
  const pooled = summarizeDdpmBound(parts), single = summarizeDdpmBound([whole]);
  // Per-image seeds: the same images give the same bound in any batching.
  assert.ok(Math.abs(pooled.bitsPerDim - single.bitsPerDim) < 1e-6);
  for (let t = 1; t <= 5; t++) {
    assert.ok(Math.abs(pooled.stepTerms[t] - single.stepTerms[t]) < 1e-6);
  }
  assert.equal(pooled.count, 3);
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(
    ddpmBound(eps, x, { process, noise: perImageNoise([1, 2, 3]), signal: controller.signal }),
    /stop/,
  );
  x.dispose();
  assert.equal(tf.memory().numTensors, before);
});
