import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { type NoiseSource, perImageNoise, rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import { sampleEuler } from "../samplers/euler.ts";
import { s2nStep, s2nStepCoefficients, sampleS2n } from "../samplers/s2n_backward.ts";
import { nonMarkovStep, sampleNonMarkov, sampleNonMarkovSde } from "../samplers/s2n_nonmarkov.ts";
import { sampleS2nSde } from "../samplers/s2n_sde.ts";
import type { SampleResult, StepRecord } from "../samplers/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
import {
  cosineLogSnrSchedule,
  edmLogSnrSchedule,
  fmOtLogSnrSchedule,
  veLogSnrSchedule,
  vpLogSnrSchedule,
} from "../schedules/s2n_schedules.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// ---------- fixtures ----------

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const ALL = (): LogSnrSchedule[] => [
  vpLogSnrSchedule(),
  veLogSnrSchedule(),
  cosineLogSnrSchedule(),
  fmOtLogSnrSchedule(),
  edmLogSnrSchedule(),
];

/** (t, s) pairs inside each schedule, and one to zero noise where the schedule has it. */
function pairs(sch: LogSnrSchedule): [number, number][] {
  const at = (u: number) => sch.tMin + u * (sch.tMax - sch.tMin);
  const out: [number, number][] = [[at(0.9), at(0.6)], [at(0.3), at(0.29)], [at(0.05), sch.tMin]];
  if (sch.name !== "ve") out.push([at(0.2), 0]);
  return out;
}

const MU = [1, -2], STD = [0.5, 2];
const gaussian = idealGaussianDenoiser({ mean: MU, std: STD });

/** Five random 2-D points. */
const POINTS = (() => {
  const rng = new Rng(5);
  return Array.from({ length: 5 }, () => [4 * rng.uniform() - 2, 4 * rng.uniform() - 2]);
})();

function nearestDistances(x: ArrayLike<number>, points: number[][]): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length / 2; i++) {
    out.push(Math.min(...points.map((p) => Math.hypot(x[2 * i] - p[0], x[2 * i + 1] - p[1]))));
  }
  return out;
}

/** Runs a sampler and checks it leaves exactly one new tensor. */
async function run(sample: () => Promise<SampleResult>): Promise<{ x: Float32Array; nfe: number }> {
  const before = tf.memory().numTensors;
  const result = await sample();
  assert.equal(tf.memory().numTensors, before + 1, "a sampler call must leave only its result");
  const x = result.x.dataSync() as Float32Array;
  result.x.dispose();
  return { x, nfe: result.nfe };
}

/** A noise source that always returns the same tensor values (for exact noise-scale checks). */
function fixedNoise(values: number[]): NoiseSource {
  return { randn: (shape) => tf.tensor(values.slice(0, shape.reduce((a, b) => a * b)), shape) };
}

/** Initial z at t_0: alpha x + sigma n for a draw from N(0, I) scaled by the schedule. */
function initial(sch: LogSnrSchedule, t0: number, n: number, seed: number): tf.Tensor {
  return tf.tidy(() => tf.mul(rngNoise(new Rng(seed)).randn([n, 2]), sch.sigma(t0)));
}

// ---------- exact special cases (coefficients, float64) ----------

Deno.test("gamma = 0, rho = 0 is DDIM: z_s = alpha_s x_hat + sigma_s eps_hat (coefficients)", () => {
  for (const sch of ALL()) {
    for (const [t, s] of pairs(sch)) {
      const c = s2nStepCoefficients(sch, { t, s, rho: 0, gamma: 0, delta: 0.7 });
      const aT = sch.alpha(t), sT = sch.sigma(t), aS = sch.alpha(s), sS = sch.sigma(s);
      // DDIM in eps form: alpha_s (z - sigma_t eps) / alpha_t + sigma_s eps.
      close(c.zScale, aS / aT, 1e-12, `${sch.name} zScale ${t}->${s}`);
      close(c.epsCoef, sS - aS * sT / aT, 1e-10, `${sch.name} eps coef ${t}->${s}`);
      // The same in x_hat form: sigma_s/sigma_t z + (alpha_s - alpha_t sigma_s/sigma_t) x_hat.
      close(c.zCoef, sS / sT, 1e-10, `${sch.name} z coef ${t}->${s}`);
      close(c.x0Coef, aS - aT * sS / sT, 1e-10, `${sch.name} x0 coef ${t}->${s}`);
      assert.equal(c.noiseStd, 0);
    }
  }
});

Deno.test("gamma = 1, delta = 1, rho = 1 is the posterior q(z_s | z_t, x = x_hat) of eq. 8", () => {
  for (const sch of ALL()) {
    for (const [t, s] of pairs(sch)) {
      const c = s2nStepCoefficients(sch, { t, s, rho: 1, gamma: 1, delta: 1 });
      const aT = sch.alpha(t), sT = sch.sigma(t), aS = sch.alpha(s), sS = sch.sigma(s);
      // Gaussian conditioning (Bishop 2.116): z_s = aS x + sS e1, z_t = a z_s + v e2 with
      // a = aT/aS, v = sT^2 - a^2 sS^2. Posterior precision 1/sS^2 + a^2/v.
      const a = aT / aS, v = sT * sT - a * a * sS * sS;
      const variance = sS === 0 ? 0 : 1 / (1 / (sS * sS) + (a * a) / v);
      const zMean = sS === 0 ? 0 : variance * a / v;
      const xMean = sS === 0 ? aS : variance * aS / (sS * sS);
      close(c.zCoef, zMean, 1e-9, `${sch.name} posterior z coef ${t}->${s}`);
      close(c.x0Coef, xMean, 1e-9, `${sch.name} posterior x coef ${t}->${s}`);
      close(c.noiseStd ** 2, variance, 1e-9, `${sch.name} posterior variance ${t}->${s}`);
      // eq. 8's mu_Q in eps form: alpha_s/alpha_t z - alpha_s (e^-lt - e^-ls) e^(lt/2) eps.
      const eT = (sT / aT) ** 2, eS = (sS / aS) ** 2;
      close(c.epsCoef, -aS * (eT - eS) * (aT / sT), 1e-9, `${sch.name} eq. 8 eps ${t}->${s}`);
    }
  }
});

Deno.test("delta = 0 gives eq. 6's exact noise variance rho^2 alpha_s^2 (e^-lambda_t - e^-lambda_s)", () => {
  for (const sch of ALL()) {
    for (const [t, s] of pairs(sch)) {
      const c = s2nStepCoefficients(sch, { t, s, rho: 0.7, gamma: 0.3, delta: 0 });
      const e = (u: number) => (sch.sigma(u) / sch.alpha(u)) ** 2;
      const expected = 0.49 * sch.alpha(s) ** 2 * (e(t) - e(s));
      close(c.noiseStd ** 2, expected, 1e-9, `${sch.name} ${t}->${s}`);
    }
  }
});

Deno.test("the gamma-step integrates exp(-(1+gamma) lambda/2) exactly (eq. 12 sign), gamma = -1 by continuity", () => {
  const vp = vpLogSnrSchedule();
  const t = 0.7, s = 0.4;
  const lT = vp.logSnr(t), lS = vp.logSnr(s);
  for (const [gamma, rho] of [[0.026, 0], [1.25, 1], [-0.5, 0.3], [2, 0]]) {
    const c = s2nStepCoefficients(vp, { t, s, rho, gamma });
    // Eq. 12 / Corollary 1 with the minus sign, written out.
    const g = 1 + gamma;
    const expected = -((1 + rho * rho) / g) * vp.alpha(s) *
      (Math.exp((-g / 2) * lT) - Math.exp((-g / 2) * lS)) * Math.exp((gamma * lT) / 2);
    close(c.epsCoef, expected, 1e-10, `eps coef at gamma=${gamma}, rho=${rho}`);
    // Moving toward the data: the drift opposes eps (negative coefficient).
    assert.ok(c.epsCoef < 0);
  }
  const at = (gamma: number) => s2nStepCoefficients(vp, { t, s, gamma }).epsCoef;
  close(at(-1), at(-1 + 1e-9), 1e-7, "gamma = -1 limit from above");
  close(at(-1), at(-1 - 1e-9), 1e-7, "gamma = -1 limit from below");
  close(at(-1), -vp.alpha(s) * (lS - lT) / 2 * Math.exp(-lT / 2), 1e-12, "gamma = -1 closed form");
  assert.throws(() => s2nStepCoefficients(vp, { t, s: 0, gamma: -1 }), /diverges/);
});

// ---------- exact special cases (tensors) ----------

Deno.test("s2nStep() at gamma = rho = 0 equals a DDIM update written independently", () => {
  for (const sch of [vpLogSnrSchedule(), fmOtLogSnrSchedule(), veLogSnrSchedule()]) {
    const [t, s] = pairs(sch)[0];
    const z = initial(sch, t, 8, 1);
    const before = tf.memory().numTensors;
    const out = tf.tidy(() => s2nStep(gaussian, z, { schedule: sch, t, s }));
    assert.equal(tf.memory().numTensors, before + 2, "the step returns two new tensors");
    // DDIM (Song et al. 2020a, eq. 12 with sigma_t = 0), in float64.
    const aT = sch.alpha(t), sT = sch.sigma(t), aS = sch.alpha(s), sS = sch.sigma(s);
    const zv = z.dataSync(), xHat = out.denoised.dataSync();
    const ddim = Float64Array.from(zv, (zi, i) => {
      const eps = (zi - aT * xHat[i]) / sT;
      return aS * xHat[i] + sS * eps;
    });
    assert.ok(maxAbsDiff(out.z.dataSync(), ddim) < 1e-5, `${sch.name} DDIM step`);
    // And x_hat is D(z / alpha; sigma / alpha) of the exact Gaussian denoiser.
    const expected = tf.tidy(() =>
      gaussian(tf.div(z, aT), tf.fill([8], sT / aT) as tf.Tensor1D).dataSync()
    );
    assert.ok(maxAbsDiff(xHat, expected) < 1e-6);
    tf.dispose([z, out.z, out.denoised]);
  }
});

Deno.test("s2nStep() at gamma = delta = rho = 1 draws from the posterior: exact mean and noise scale", () => {
  const sch = vpLogSnrSchedule();
  const t = 0.6, s = 0.35;
  const z = initial(sch, t, 8, 2);
  const n = Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
  const out = tf.tidy(() =>
    s2nStep(gaussian, z, { schedule: sch, t, s, rho: 1, gamma: 1, delta: 1, noise: fixedNoise(n) })
  );
  const aT = sch.alpha(t), sT = sch.sigma(t), aS = sch.alpha(s), sS = sch.sigma(s);
  // q(z_s | z_t, x): mean = (a sS^2 z_t + aS v x) / sT^2, var = v sS^2 / sT^2 (a = aT/aS).
  const a = aT / aS, v = sT * sT - a * a * sS * sS;
  const zv = z.dataSync(), xHat = out.denoised.dataSync();
  const expected = Float64Array.from(
    zv,
    (zi, i) =>
      (a * sS * sS * zi + aS * v * xHat[i]) / (sT * sT) + Math.sqrt(v * sS * sS / (sT * sT)) * n[i],
  );
  assert.ok(maxAbsDiff(out.z.dataSync(), expected) < 1e-5, "posterior draw");
  tf.dispose([z, out.z, out.denoised]);
});

Deno.test("sampleS2n() at gamma = rho = 0 on EDM's schedule is EDM's Euler sampler", async () => {
  const edm = edmLogSnrSchedule();
  const times = s2nTimeGrid(edm, { numSteps: 12, endTime: 0 });
  const z = initial(edm, times[0], 16, 3);
  const a = await run(() => sampleS2n(gaussian, z, { schedule: edm, times }));
  const b = await run(() => sampleEuler(gaussian, z, { sigmas: times }));
  assert.equal(a.nfe, 12);
  assert.ok(maxAbsDiff(a.x, b.x) < 1e-4, `S2N DDIM vs EDM Euler: ${maxAbsDiff(a.x, b.x)}`);
  z.dispose();
});

// ---------- convergence and sampling ----------

/** Exact probability-flow solution for N(MU, diag(STD^2)) in x = z / alpha (sigma~ = sigma/alpha). */
function gaussianOde(x0: ArrayLike<number>, sigma0: number, sigma1: number): Float64Array {
  return Float64Array.from(x0, (v, k) => {
    const j = k % 2, s2 = STD[j] ** 2;
    return MU[j] + (v - MU[j]) * Math.sqrt(s2 + sigma1 ** 2) / Math.sqrt(s2 + sigma0 ** 2);
  });
}

async function odeError(
  sch: LogSnrSchedule,
  numSteps: number,
  gamma: number,
  sampler: "step" | "sde",
): Promise<number> {
  const times = s2nTimeGrid(sch, { numSteps, spacing: "logSnr", tMin: 0.02, tMax: 0.9 });
  const t0 = times[0], t1 = times[numSteps];
  const z = initial(sch, t0, 16, 4);
  const { x } = await run(() =>
    sampler === "step"
      ? sampleS2n(gaussian, z, { schedule: sch, times, gamma })
      : sampleS2nSde(gaussian, z, { schedule: sch, times, rho: 0 })
  );
  const x0 = Float64Array.from(z.dataSync(), (v) => v / sch.alpha(t0));
  z.dispose();
  const exact = gaussianOde(x0, sch.sigma(t0) / sch.alpha(t0), sch.sigma(t1) / sch.alpha(t1));
  return maxAbsDiff(Float64Array.from(x, (v) => v / sch.alpha(t1)), exact);
}

Deno.test("the ODE step (rho = 0) converges to the exact Gaussian solution at first order", async () => {
  for (const gamma of [0, 0.026, 0.5]) {
    const errs = [];
    for (const n of [16, 32, 64, 128]) {
      errs.push(await odeError(vpLogSnrSchedule(), n, gamma, "step"));
    }
    for (let k = 0; k + 1 < errs.length; k++) {
      const r = errs[k] / errs[k + 1];
      assert.ok(r > 1.7 && r < 2.4, `gamma=${gamma}: error ratio ${r} (want ~2), errors ${errs}`);
    }
    // Starting at sigma/alpha ~ 60 (t = 0.9), 128 steps end within 0.3% of that scale.
    const vp = vpLogSnrSchedule();
    const scale = vp.sigma(0.9) / vp.alpha(0.9);
    assert.ok(errs[3] < 3e-3 * scale, `gamma=${gamma}: 128-step error ${errs[3]}`);
  }
});

Deno.test("sampleS2nSde() at rho = 0 (Euler in t) converges at first order too", async () => {
  const errs = [];
  for (const n of [16, 32, 64]) errs.push(await odeError(vpLogSnrSchedule(), n, 0, "sde"));
  for (let k = 0; k + 1 < errs.length; k++) {
    const r = errs[k] / errs[k + 1];
    assert.ok(r > 1.6 && r < 2.5, `error ratio ${r} (want ~2), errors ${errs}`);
  }
});

Deno.test("rho = 1 samples with the ideal point-set denoiser land on the points", async () => {
  const points = tf.tensor2d(POINTS);
  const denoiser = idealPointSetDenoiser(points);
  const vp = vpLogSnrSchedule();
  const times = s2nTimeGrid(vp, { numSteps: 40, endTime: 0 });
  const n = 32, seeds = [...Array(n).keys()];
  for (const [gamma, delta, tol] of [[1, 1, 1e-4], [1.25, 0.95, 0.02]]) {
    const z = tf.tidy(() =>
      tf.mul(perImageNoise(seeds.map((s) => s + 100)).randn([n, 2]), vp.sigma(times[0]))
    );
    const { x } = await run(() =>
      sampleS2n(denoiser, z, {
        schedule: vp,
        times,
        rho: 1,
        gamma,
        delta,
        noise: perImageNoise(seeds),
      })
    );
    z.dispose();
    const d = nearestDistances(x, POINTS);
    assert.ok(
      Math.max(...d) < tol,
      `gamma=${gamma}, delta=${delta}: worst distance ${Math.max(...d)}`,
    );
  }
  // The Euler-Maruyama reverse SDE (Theorem 2, rho = 1) ends near the points at sigma/alpha = 0.01.
  const grid = s2nTimeGrid(vp, { numSteps: 200, spacing: "logSnr" });
  const z = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([n, 2]), vp.sigma(grid[0])));
  const noise = perImageNoise(seeds.map((s) => s + 7));
  const { x } = await run(() =>
    sampleS2nSde(denoiser, z, { schedule: vp, times: grid, rho: 1, noise })
  );
  const { x: xDen, nfe } = await run(() =>
    sampleS2nSde(denoiser, z, {
      schedule: vp,
      times: grid,
      rho: 1,
      noise: perImageNoise(seeds.map((s) => s + 7)),
      finalDenoise: true,
    })
  );
  z.dispose();
  assert.equal(nfe, 201);
  assert.ok(Math.max(...nearestDistances(x, POINTS)) < 0.1, "EM SDE ends near the points");
  assert.ok(Math.max(...nearestDistances(xDen, POINTS)) < 1e-3, "finalDenoise lands on them");
  assert.ok(
    new Set(nearestDistances(xDen, POINTS).map((_, i) => Math.round(xDen[2 * i] * 10))).size >= 3,
  );
  points.dispose();
});

/** Mean and variance per column of [n, 2] samples. */
function moments(x: ArrayLike<number>): { mean: number[]; variance: number[] } {
  const n = x.length / 2;
  const mean = [0, 1].map((j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[2 * i + j];
    return s / n;
  });
  const variance = [0, 1].map((j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[2 * i + j] - mean[j]) ** 2;
    return s / (n - 1);
  });
  return { mean, variance };
}

Deno.test("rho = 1 samplers reproduce the mean and variance of Gaussian data", async () => {
  const vp = vpLogSnrSchedule();
  const n = 2000, seeds = [...Array(n).keys()];
  const grid = s2nTimeGrid(vp, { numSteps: 100, spacing: "logSnr", endTime: 0 });
  const z = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([n, 2]), vp.sigma(grid[0])));
  const runs = {
    posterior: await run(() =>
      sampleS2n(gaussian, z, {
        schedule: vp,
        times: grid,
        rho: 1,
        gamma: 1,
        noise: rngNoise(new Rng(9)),
      })
    ),
    eulerMaruyama: await run(() =>
      sampleS2nSde(gaussian, z, {
        schedule: vp,
        times: grid.subarray(0, 100),
        rho: 1,
        noise: rngNoise(new Rng(9)),
        finalDenoise: true,
      })
    ),
  };
  z.dispose();
  for (const [name, { x }] of Object.entries(runs)) {
    const { mean, variance } = moments(x);
    for (let j = 0; j < 2; j++) {
      // 4 standard errors plus 2% for the discretization.
      assert.ok(Math.abs(mean[j] - MU[j]) < 4 * STD[j] / Math.sqrt(n), `${name} mean ${mean[j]}`);
      assert.ok(
        Math.abs(variance[j] / STD[j] ** 2 - 1) < 4 * Math.sqrt(2 / n) + 0.02,
        `${name} dim ${j}: variance ${variance[j]} vs ${STD[j] ** 2}`,
      );
    }
  }
});

// ---------- non-Markovian model (eq. 9, Theorem 4) ----------

Deno.test("eq. 9 with eta = 0 is DDIM and with eta = 1 the posterior step (same noise)", async () => {
  const vp = vpLogSnrSchedule();
  const times = s2nTimeGrid(vp, { numSteps: 10, endTime: 0 });
  const seeds = [...Array(8).keys()];
  const z = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([8, 2]), vp.sigma(times[0])));
  const ddim = await run(() => sampleS2n(gaussian, z, { schedule: vp, times }));
  const eta0 = await run(() => sampleNonMarkov(gaussian, z, { schedule: vp, times }));
  assert.ok(maxAbsDiff(ddim.x, eta0.x) < 1e-5, "eta = 0 is DDIM");
  const ancestral = await run(() =>
    sampleS2n(gaussian, z, {
      schedule: vp,
      times,
      rho: 1,
      gamma: 1,
      delta: 1,
      noise: perImageNoise(seeds),
    })
  );
  const eta1 = await run(() =>
    sampleNonMarkov(gaussian, z, { schedule: vp, times, eta: 1, noise: perImageNoise(seeds) })
  );
  assert.ok(maxAbsDiff(ancestral.x, eta1.x) < 1e-4, `eta = 1 is the posterior step`);
  // eq. 9 written out: alpha_s x_hat + sqrt(sigma_s^2 - beta^2) eps_hat + beta n.
  const t = 0.5, s = 0.3, beta = 0.2;
  const n = Array.from({ length: 16 }, (_, i) => Math.cos(i));
  const out = tf.tidy(() =>
    nonMarkovStep(gaussian, z, { schedule: vp, t, s, beta: () => beta, noise: fixedNoise(n) })
  );
  const xHat = out.denoised.dataSync(), zv = z.dataSync();
  const expected = Float64Array.from(zv, (zi, i) => {
    const eps = (zi - vp.alpha(t) * xHat[i]) / vp.sigma(t);
    return vp.alpha(s) * xHat[i] + Math.sqrt(vp.sigma(s) ** 2 - beta * beta) * eps + beta * n[i];
  });
  assert.ok(maxAbsDiff(out.z.dataSync(), expected) < 1e-5, "eq. 9 step");
  tf.dispose([z, out.z, out.denoised]);
  assert.throws(
    () => nonMarkovStep(gaussian, tf.zeros([1, 2]), { schedule: vp, t, s, beta: () => 1 }),
    /must lie in/,
  );
});

Deno.test("Theorem 4's SDE with b' = rho^2 sigma^2 lambda' is Theorem 2's SDE; b' = 0 its ODE", async () => {
  const vp = vpLogSnrSchedule();
  const times = s2nTimeGrid(vp, { numSteps: 30, spacing: "logSnr" });
  const seeds = [0, 1, 2, 3];
  const z = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([4, 2]), vp.sigma(times[0])));
  for (const rho of [0, 0.5, 1]) {
    const noise = () => (rho === 0 ? undefined : perImageNoise(seeds));
    const a = await run(() =>
      sampleS2nSde(gaussian, z, { schedule: vp, times, rho, noise: noise() })
    );
    const bDeriv = (t: number) => rho * rho * vp.sigma(t) ** 2 * vp.logSnrDeriv(t);
    const b = await run(() =>
      sampleNonMarkovSde(gaussian, z, { schedule: vp, times, bDeriv, noise: noise() })
    );
    assert.ok(maxAbsDiff(a.x, b.x) < 1e-4, `rho = ${rho}: ${maxAbsDiff(a.x, b.x)}`);
  }
  z.dispose();
});

// ---------- contract ----------

Deno.test("sampleS2n() reports each step, is reproducible per image and honours abort", async () => {
  const vp = vpLogSnrSchedule();
  const times = s2nTimeGrid(vp, { numSteps: 6, endTime: 0 });
  const seeds = [3, 4, 5];
  const z = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([3, 2]), vp.sigma(times[0])));
  const records: Omit<StepRecord, "x" | "denoised">[] = [];
  const opts = { schedule: vp, times, rho: 1, gamma: 1.25, delta: 0.95 };
  const a = await run(() =>
    sampleS2n(gaussian, z, {
      ...opts,
      noise: perImageNoise(seeds),
      onStep: ({ x: _x, denoised: _d, ...rest }) => records.push(rest),
    })
  );
  assert.equal(a.nfe, 6);
  assert.deepEqual(records.map((r) => r.i), [0, 1, 2, 3, 4, 5]);
  close(records[0].sigma, vp.sigma(times[0]) / vp.alpha(times[0]), 1e-12, "EDM sigma");
  assert.equal(records[5].sigmaNext, 0);
  // Image 1 alone, with its own seed, gives the same sample.
  const z1 = tf.slice(z, 1, 1);
  const b = await run(() => sampleS2n(gaussian, z1, { ...opts, noise: perImageNoise([4]) }));
  assert.ok(maxAbsDiff(a.x.subarray(2, 4), b.x) < 1e-6, "per-image reproducibility");
  const ctrl = new AbortController();
  ctrl.abort(new Error("stop"));
  await assert.rejects(
    sampleS2n(gaussian, z, { ...opts, noise: perImageNoise(seeds), signal: ctrl.signal }),
    /stop/,
  );
  tf.dispose([z, z1]);
});

Deno.test("sampleS2n() with finalDenoise ends VE on the points", async () => {
  const points = tf.tensor2d(POINTS);
  const ve = veLogSnrSchedule();
  const times = s2nTimeGrid(ve, { numSteps: 30 });
  const z = tf.tidy(() => tf.mul(perImageNoise([1, 2, 3, 4]).randn([4, 2]), ve.sigma(times[0])));
  const { x, nfe } = await run(() =>
    sampleS2n(idealPointSetDenoiser(points), z, { schedule: ve, times, finalDenoise: true })
  );
  assert.equal(nfe, 31);
  assert.ok(Math.max(...nearestDistances(x, POINTS)) < 1e-4);
  await assert.rejects(
    sampleS2n(gaussian, z, {
      schedule: vpLogSnrSchedule(),
      times: [1, 0.5, 0],
      finalDenoise: true,
    }),
    /finalDenoise/,
  );
  tf.dispose([points, z]);
});

Deno.test("sampleS2n() rejects missing noise, bad parameters and bad grids before sampling", async () => {
  const vp = vpLogSnrSchedule();
  const z = tf.zeros([2, 2]);
  let calls = 0;
  const counting = (x: tf.Tensor, sigma: tf.Tensor1D) => (calls++, gaussian(x, sigma));
  const times = [1, 0.5, 0];
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times, rho: 1 }), TypeError);
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times, delta: -1 }), /delta/);
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times, gamma: NaN }), /gamma/);
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times, gamma: -2 }), /diverges/);
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times: [0.5, 1] }), /decreasing/);
  await assert.rejects(sampleS2n(counting, z, { schedule: vp, times: [1] }), /at least 2/);
  await assert.rejects(sampleS2nSde(counting, z, { schedule: vp, times }), TypeError);
  await assert.rejects(
    sampleNonMarkov(counting, z, { schedule: vp, times, eta: 1, beta: () => 0 }),
    /either eta or beta/,
  );
  assert.equal(calls, 0, "no denoiser call before the checks");
  z.dispose();
});
