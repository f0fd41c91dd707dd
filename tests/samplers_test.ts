import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise, rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import type { Denoiser } from "../core/types.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import { sampleEdmStochastic } from "../samplers/edm_stochastic.ts";
import { sampleEuler } from "../samplers/euler.ts";
import { sampleHeun } from "../samplers/heun.ts";
import type { SampleResult, StepRecord } from "../samplers/types.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import type { SigmaSchedule } from "../schedules/types.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// ---------- fixtures ----------

/** Five random 4x4x1 "images" in [-1, 1]. */
const POINTS = (() => {
  const rng = new Rng(5);
  return Array.from({ length: 5 }, () => Array.from({ length: 16 }, () => 2 * rng.uniform() - 1));
})();

/** Index of the nearest point and the distance to it, per sample. */
function nearest(samples: Float32Array | Float64Array, dim: number, points: number[][]) {
  const out: { index: number; dist: number }[] = [];
  for (let n = 0; n < samples.length / dim; n++) {
    let best = { index: -1, dist: Infinity };
    points.forEach((p, i) => {
      const d = Math.hypot(...p.map((v, k) => samples[n * dim + k] - v));
      if (d < best.dist) best = { index: i, dist: d };
    });
    out.push(best);
  }
  return out;
}

const MU = [1, -2], STD = [0.5, 2];

/**
 * Exact probability-flow ODE solution for Gaussian data N(mu, diag(std^2)) in unscaled space:
 * x(sigma) = mu + (x(sigma0) - mu) sqrt(std^2 + sigma^2) / sqrt(std^2 + sigma0^2).
 */
function gaussianOde(x0: ArrayLike<number>, sigma0: number, sigma: number): Float64Array {
  return Float64Array.from(x0, (v, k) => {
    const j = k % MU.length, s2 = STD[j] ** 2;
    return MU[j] + (v - MU[j]) * Math.sqrt(s2 + sigma ** 2) / Math.sqrt(s2 + sigma0 ** 2);
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A denoiser wrapper that counts calls and checks the sigma contract. */
function counting(denoiser: Denoiser): { denoiser: Denoiser; calls: () => number } {
  let calls = 0;
  return {
    denoiser: (x, sigma, cond) => {
      calls++;
      assert.deepEqual(sigma.shape, [x.shape[0]], "sigma must be a [N] tensor");
      const v = sigma.dataSync();
      assert.ok(v.every((s) => s === v[0] && s > 0), `one positive sigma per batch, got ${v}`);
      return denoiser(x, sigma, cond);
    },
    calls: () => calls,
  };
}

/** VP row of EDM Table 1: sigma(t) = sqrt(e^(beta_d t^2 / 2 + beta_min t) - 1), s(t) = 1 / sqrt(e^...). */
function vpSchedule(betaD = 19.9, betaMin = 0.1): SigmaSchedule {
  const q = (t: number) => 0.5 * betaD * t * t + betaMin * t;
  const dq = (t: number) => betaD * t + betaMin;
  return {
    name: "vp-test",
    sigma: (t) => Math.sqrt(Math.expm1(q(t))),
    sigmaDeriv: (t) => dq(t) * Math.exp(q(t)) / (2 * Math.sqrt(Math.expm1(q(t)))),
    sigmaInv: (s) => (Math.sqrt(betaMin ** 2 + 2 * betaD * Math.log1p(s * s)) - betaMin) / betaD,
    s: (t) => Math.exp(-q(t) / 2),
    sDeriv: (t) => -0.5 * dq(t) * Math.exp(-q(t) / 2),
  };
}

/** VE-like process: sigma(t) = sqrt(t), s(t) = 1. */
const VE_SCHEDULE: SigmaSchedule = {
  name: "ve-test",
  sigma: (t) => Math.sqrt(t),
  sigmaDeriv: (t) => 0.5 / Math.sqrt(t),
  sigmaInv: (s) => s * s,
  s: () => 1,
  sDeriv: () => 0,
};

/** EDM Table 1 VP time steps: t_i = 1 + i/(N-1) (epsS - 1), then t_N = 0. */
function vpTimeSteps(numSteps: number, epsS = 1e-3): Float64Array {
  const t = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) t[i] = 1 + (i / (numSteps - 1)) * (epsS - 1);
  return t;
}

/** EDM Table 1 VE time steps: t_i = sigmaMax^2 (sigmaMin^2 / sigmaMax^2)^(i/(N-1)), then 0. */
function veTimeSteps(numSteps: number, sigmaMin = 0.002, sigmaMax = 80): Float64Array {
  const t = new Float64Array(numSteps + 1);
  for (let i = 0; i < numSteps; i++) {
    t[i] = sigmaMax ** 2 * (sigmaMin ** 2 / sigmaMax ** 2) ** (i / (numSteps - 1));
  }
  return t;
}

/** Runs a sampler, returns the result as numbers, and checks it created exactly one tensor. */
async function run(
  sample: () => Promise<SampleResult>,
): Promise<{ x: Float32Array; nfe: number; shape: number[] }> {
  const before = tf.memory().numTensors;
  const result = await sample();
  assert.equal(tf.memory().numTensors, before + 1, "a sampler call must leave only its result");
  const x = result.x.dataSync() as Float32Array;
  const shape = result.x.shape;
  result.x.dispose();
  return { x, nfe: result.nfe, shape };
}

/** Max error of Heun / Euler against the exact Gaussian ODE solution, EDM sigmas ending in 0. */
async function gaussianError(
  sampler: typeof sampleHeun,
  numSteps: number,
): Promise<{ err: number; nfe: number }> {
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const sigmas = karrasSigmas({ numSteps });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(1)).randn([16, 2]), sigmas[0]));
  const { x, nfe } = await run(() => sampler(denoiser, x0, { sigmas }));
  const err = maxAbsDiff(x, gaussianOde(x0.dataSync(), sigmas[0], 0));
  x0.dispose();
  return { err, nfe };
}

// ---------- Heun (Algorithm 1) ----------

Deno.test("sampleHeun() lands on the data with the ideal point-set denoiser (18 steps, 35 NFE)", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 4, 4, 1]);
  const { denoiser, calls } = counting(idealPointSetDenoiser(points));
  const sigmas = karrasSigmas({ numSteps: 18 });
  const x0 = tf.tidy(() => tf.mul(perImageNoise([...Array(32).keys()]).randn([32, 4, 4, 1]), 80));
  const { x, nfe, shape } = await run(() => sampleHeun(denoiser, x0, { sigmas }));
  assert.deepEqual(shape, [32, 4, 4, 1]);
  assert.equal(nfe, 35);
  assert.equal(calls(), 35);
  const hits = nearest(x, 16, POINTS);
  const worst = Math.max(...hits.map((h) => h.dist));
  assert.ok(worst < 1e-4, `every sample must land on a data point; worst distance ${worst}`);
  const distinct = new Set(hits.map((h) => h.index)).size;
  assert.ok(distinct >= 3, `samples should reach several points, got ${distinct}`);
  assert.ok(!x0.isDisposed, "the caller's tensor is never disposed");
  tf.dispose([points, x0]);
});

Deno.test("sampleHeun() reproduces the mean and variance of Gaussian data", async () => {
  const n = 2000;
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const sigmas = karrasSigmas({ numSteps: 32 });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(7)).randn([n, 2]), sigmas[0]));
  const { x } = await run(() => sampleHeun(denoiser, x0, { sigmas }));
  x0.dispose();
  for (let j = 0; j < 2; j++) {
    let sum = 0, sumSq = 0;
    for (let i = 0; i < n; i++) sum += x[2 * i + j];
    const mean = sum / n;
    for (let i = 0; i < n; i++) sumSq += (x[2 * i + j] - mean) ** 2;
    const variance = sumSq / (n - 1);
    // 4 standard errors: se(mean) = s / sqrt(n), se(var) / var = sqrt(2 / (n - 1)).
    const meanTol = 4 * STD[j] / Math.sqrt(n), varTol = 4 * Math.sqrt(2 / (n - 1));
    assert.ok(Math.abs(mean - MU[j]) < meanTol, `dim ${j}: mean ${mean} vs ${MU[j]}`);
    assert.ok(
      Math.abs(variance / STD[j] ** 2 - 1) < varTol,
      `dim ${j}: variance ${variance} vs ${STD[j] ** 2}`,
    );
  }
});

Deno.test("sampleHeun() error falls at 2nd order, sampleEuler() at 1st, against the exact Gaussian ODE", async () => {
  const heun = [];
  const euler = [];
  for (const steps of [16, 32, 64]) {
    heun.push((await gaussianError(sampleHeun, steps)).err);
    euler.push((await gaussianError(sampleEuler, steps)).err);
  }
  for (let k = 0; k < 2; k++) {
    const hr = heun[k] / heun[k + 1], er = euler[k] / euler[k + 1];
    assert.ok(hr > 3.2 && hr < 5.5, `Heun error ratio when halving the step ${hr} (want ~4)`);
    assert.ok(er > 1.6 && er < 2.6, `Euler error ratio when halving the step ${er} (want ~2)`);
  }
});

Deno.test("sampleEuler() needs more NFE than sampleHeun() for the same error", async () => {
  // Same NFE: Euler's error is larger, increasingly so as the steps shrink.
  for (const [heunSteps, factor] of [[18, 1.5], [64, 3]]) {
    const h = await gaussianError(sampleHeun, heunSteps);
    const e = await gaussianError(sampleEuler, h.nfe);
    assert.equal(e.nfe, h.nfe);
    assert.ok(e.err > factor * h.err, `at ${h.nfe} NFE: Euler ${e.err} vs Heun ${h.err}`);
  }
  // Euler with 1.6x the NFE of 18-step Heun (35) is still worse.
  const h18 = await gaussianError(sampleHeun, 18);
  const e56 = await gaussianError(sampleEuler, 56);
  assert.ok(e56.err > h18.err, `Euler at 56 NFE ${e56.err} vs Heun at 35 NFE ${h18.err}`);
});

Deno.test("sampleHeun() with a VP schedule (s(t) != 1) matches the closed-form Gaussian solution", async () => {
  const schedule = vpSchedule();
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const errors = [];
  for (const steps of [32, 64, 128]) {
    const timeSteps = vpTimeSteps(steps);
    const t0 = timeSteps[0], tN = timeSteps[steps];
    const x0 = tf.tidy(() =>
      tf.mul(rngNoise(new Rng(2)).randn([16, 2]), schedule.s(t0) * schedule.sigma(t0))
    );
    const { x, nfe } = await run(() => sampleHeun(denoiser, x0, { timeSteps, schedule }));
    assert.equal(nfe, 2 * steps - 1);
    // The unscaled x / s(t) follows the sigma-space ODE; rescale at both ends.
    const unscaled0 = Float64Array.from(x0.dataSync(), (v) => v / schedule.s(t0));
    const exact = gaussianOde(unscaled0, schedule.sigma(t0), schedule.sigma(tN))
      .map((v) => v * schedule.s(tN));
    errors.push(maxAbsDiff(x, exact));
    x0.dispose();
  }
  assert.ok(errors[1] < 5e-3, `VP Heun 64 steps error ${errors[1]}`);
  assert.ok(errors[0] / errors[1] > 3 && errors[1] / errors[2] > 3, `errors ${errors}`);
});

Deno.test("sampleHeun() and sampleEuler() follow a VE-like schedule sigma(t) = sqrt(t)", async () => {
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const errs: Record<string, number[]> = { heun: [], euler: [] };
  for (const steps of [128, 256]) {
    const timeSteps = veTimeSteps(steps);
    const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(4)).randn([16, 2]), 80));
    const exact = gaussianOde(x0.dataSync(), 80, 0);
    const opts = { timeSteps, schedule: VE_SCHEDULE };
    errs.heun.push(maxAbsDiff((await run(() => sampleHeun(denoiser, x0, opts))).x, exact));
    errs.euler.push(maxAbsDiff((await run(() => sampleEuler(denoiser, x0, opts))).x, exact));
    x0.dispose();
  }
  assert.ok(errs.heun[1] < 0.02, `VE Heun error at 256 steps ${errs.heun[1]}`);
  assert.ok(errs.heun[0] / errs.heun[1] > 3, `Heun ratio ${errs.heun}`);
  assert.ok(errs.euler[0] / errs.euler[1] > 1.6 && errs.euler[1] > 5 * errs.heun[1]);
});

Deno.test("sampleHeun() with the schedule sigma(t) = t, s(t) = 1 equals its sigmas form", async () => {
  const identity: SigmaSchedule = {
    name: "edm-test",
    sigma: (t) => t,
    sigmaDeriv: () => 1,
    sigmaInv: (s) => s,
    s: () => 1,
    sDeriv: () => 0,
  };
  const points = tf.tensor(POINTS.flat(), [5, 16]);
  const denoiser = idealPointSetDenoiser(points);
  const sigmas = karrasSigmas({ numSteps: 10 });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(8)).randn([4, 16]), 80));
  const a = await run(() => sampleHeun(denoiser, x0, { sigmas }));
  const b = await run(() => sampleHeun(denoiser, x0, { timeSteps: sigmas, schedule: identity }));
  assert.equal(maxAbsDiff(a.x, b.x), 0);
  tf.dispose([points, x0]);
});

// ---------- NFE, records, validation ----------

Deno.test("samplers count NFE: Heun 2N-1 (2N with secondOrderAtLast), Euler N, stochastic 2N-1", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 16]);
  const base = idealPointSetDenoiser(points);
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(1)).randn([3, 16]), 10));
  for (const steps of [1, 2, 7]) {
    const sigmas = karrasSigmas({ numSteps: steps, sigmaMax: 10 });
    const heun = counting(base);
    assert.equal((await run(() => sampleHeun(heun.denoiser, x0, { sigmas }))).nfe, 2 * steps - 1);
    assert.equal(heun.calls(), 2 * steps - 1);
    const euler = counting(base);
    assert.equal((await run(() => sampleEuler(euler.denoiser, x0, { sigmas }))).nfe, steps);
    assert.equal(euler.calls(), steps);
    const noise = perImageNoise([1, 2, 3]);
    const sto = counting(base);
    const r = await run(() => sampleEdmStochastic(sto.denoiser, x0, { sigmas, sChurn: 5, noise }));
    assert.equal(r.nfe, 2 * steps - 1);
    assert.equal(sto.calls(), 2 * steps - 1);
    // Stopping above zero allows the correction on the last step too.
    const above = sigmas.slice(0, steps + 1).map((s, i) => i === steps ? 0.001 : s);
    const last = counting(base);
    const r2 = await run(() =>
      sampleHeun(last.denoiser, x0, { sigmas: above, secondOrderAtLast: true })
    );
    assert.equal(r2.nfe, 2 * steps);
    assert.equal(last.calls(), 2 * steps);
  }
  tf.dispose([points, x0]);
});

Deno.test("onStep records follow the steps and their tensors are freed", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 16]);
  const denoiser = idealPointSetDenoiser(points);
  const sigmas = karrasSigmas({ numSteps: 6 });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(3)).randn([2, 16]), 80));
  const records: Omit<StepRecord, "x" | "denoised">[] = [];
  const kept: tf.Tensor[] = [];
  const before = tf.memory().numTensors;
  const { x, nfe } = await sampleHeun(denoiser, x0, {
    sigmas,
    onStep: ({ x, denoised, ...rest }) => {
      assert.deepEqual(x.shape, [2, 16]);
      assert.deepEqual(denoised.shape, [2, 16]);
      kept.push(x, denoised);
      records.push(rest);
    },
  });
  assert.equal(tf.memory().numTensors, before + 1);
  // Record tensors are the sampler's: all freed, except the last x, which is the result.
  assert.ok(kept.slice(0, -2).every((t) => t.isDisposed) && kept[kept.length - 1].isDisposed);
  assert.equal(records.length, 6);
  records.forEach((r, i) => {
    assert.equal(r.i, i);
    assert.equal(r.t, sigmas[i]);
    assert.equal(r.tNext, sigmas[i + 1]);
    assert.equal(r.sigma, sigmas[i]);
    assert.equal(r.sigmaNext, sigmas[i + 1]);
    assert.equal(r.sigmaHat, sigmas[i]);
    assert.equal(r.nfe, i < 5 ? 2 * (i + 1) : 11);
  });
  assert.equal(nfe, 11);
  tf.dispose([x, points, x0]);
});

Deno.test("samplers reject missing, conflicting or invalid steps", async () => {
  const denoiser: Denoiser = (x) => tf.zerosLike(x);
  const x0 = tf.ones([1, 2]);
  const sigmas = karrasSigmas({ numSteps: 4 });
  await assert.rejects(() => sampleHeun(denoiser, x0, {}), TypeError);
  await assert.rejects(
    () => sampleHeun(denoiser, x0, { sigmas, timeSteps: sigmas, schedule: VE_SCHEDULE }),
    TypeError,
  );
  await assert.rejects(() => sampleEuler(denoiser, x0, { timeSteps: sigmas }), TypeError);
  await assert.rejects(
    () => sampleHeun(denoiser, x0, { sigmas: new Float64Array([10, 0, 1, 0]) }),
    RangeError,
  );
  await assert.rejects(
    () => sampleHeun(denoiser, x0, { sigmas: new Float64Array([1]) }),
    RangeError,
  );
  await assert.rejects(
    () => sampleHeun(denoiser, x0, { sigmas, secondOrderAtLast: true }),
    RangeError,
  );
  await assert.rejects(() => sampleEdmStochastic(denoiser, x0, { sigmas, sChurn: 1 }), TypeError);
  await assert.rejects(
    () => sampleEdmStochastic(denoiser, x0, { sigmas, sChurn: -1 }),
    RangeError,
  );
  await assert.rejects(
    () => sampleEdmStochastic(denoiser, x0, { sigmas, sTmin: 2, sTmax: 1 }),
    RangeError,
  );
  x0.dispose();
});

// ---------- stochastic sampler (Algorithm 2) ----------

Deno.test("sampleEdmStochastic() with sChurn = 0 equals deterministic sampleHeun()", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 4, 4, 1]);
  const denoiser = idealPointSetDenoiser(points);
  const sigmas = karrasSigmas({ numSteps: 12 });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(6)).randn([8, 4, 4, 1]), 80));
  const heun = await run(() => sampleHeun(denoiser, x0, { sigmas }));
  const sto = await run(() => sampleEdmStochastic(denoiser, x0, { sigmas }));
  assert.equal(sto.nfe, heun.nfe);
  assert.equal(maxAbsDiff(sto.x, heun.x), 0);
  // Churn confined to a window no sigma falls in is no churn either.
  const noise = perImageNoise([...Array(8).keys()]);
  const off = await run(() =>
    sampleEdmStochastic(denoiser, x0, { sigmas, sChurn: 40, sTmin: 1000, noise })
  );
  assert.equal(maxAbsDiff(off.x, heun.x), 0);
  tf.dispose([points, x0]);
});

Deno.test("sampleEdmStochastic() with sChurn > 0 lands on the data, on a different path", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 4, 4, 1]);
  const denoiser = idealPointSetDenoiser(points);
  const sigmas = karrasSigmas({ numSteps: 18 });
  const seeds = [...Array(32).keys()].map((i) => 100 + i);
  const x0 = tf.tidy(() => tf.mul(perImageNoise(seeds).randn([32, 4, 4, 1]), 80));
  const sChurn = 40, gamma = Math.min(sChurn / 18, Math.SQRT2 - 1);
  const sTmin = 0.05, sTmax = 50;
  const hats: number[] = [];
  const sto = await run(() =>
    sampleEdmStochastic(denoiser, x0, {
      sigmas,
      sChurn,
      sTmin,
      sTmax,
      noise: perImageNoise(seeds.map((s) => s + 1)),
      onStep: (r) => hats.push(r.sigmaHat),
    })
  );
  assert.equal(sto.nfe, 35);
  hats.forEach((h, i) => {
    const inWindow = sigmas[i] >= sTmin && sigmas[i] <= sTmax;
    assert.ok(Math.abs(h - sigmas[i] * (inWindow ? 1 + gamma : 1)) < 1e-12, `step ${i}: ${h}`);
  });
  const hits = nearest(sto.x, 16, POINTS);
  const worst = Math.max(...hits.map((h) => h.dist));
  assert.ok(worst < 1e-4, `every churned sample must land on a point; worst ${worst}`);
  const det = await run(() => sampleHeun(denoiser, x0, { sigmas }));
  const detHits = nearest(det.x, 16, POINTS);
  const moved = hits.filter((h, i) => h.index !== detHits[i].index).length;
  assert.ok(moved >= 1, "churn should send some samples to other points than the ODE does");
  tf.dispose([points, x0]);
});

Deno.test("sampleEdmStochastic() is reproducible per image, whatever the batch", async () => {
  const points = tf.tensor(POINTS.flat(), [5, 16]);
  const denoiser = idealPointSetDenoiser(points);
  const sigmas = karrasSigmas({ numSteps: 10 });
  const opts = { sigmas, sChurn: 30, sNoise: 1.007 };
  const sampleWith = async (seeds: number[]) => {
    const noise = perImageNoise(seeds);
    const x0 = tf.tidy(() => tf.mul(noise.randn([seeds.length, 16]), 80));
    const out = await run(() => sampleEdmStochastic(denoiser, x0, { ...opts, noise }));
    x0.dispose();
    return out.x;
  };
  const batch = await sampleWith([11, 12, 13]);
  const alone = await sampleWith([12]);
  assert.ok(maxAbsDiff(batch.subarray(16, 32), alone) < 1e-6, "image 12 depends on its seed only");
  const other = await sampleWith([14]);
  // Different seeds must give different trajectories (the test could not fail otherwise).
  assert.ok(maxAbsDiff(batch.subarray(16, 32), other) > 1e-3);
  points.dispose();
});

// ---------- memory, abort, event loop ----------

Deno.test("samplers leak no tensors and never dispose the caller's input", async () => {
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const sigmas = karrasSigmas({ numSteps: 5 });
  const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(1)).randn([4, 2]), 80));
  const noise = perImageNoise([1, 2, 3, 4]);
  const calls = [
    () => sampleHeun(denoiser, x0, { sigmas }),
    () => sampleEuler(denoiser, x0, { sigmas }),
    () => sampleHeun(denoiser, x0, { timeSteps: vpTimeSteps(5), schedule: vpSchedule() }),
    () => sampleEdmStochastic(denoiser, x0, { sigmas, sChurn: 10, noise }),
  ];
  for (const call of calls) {
    for (let k = 0; k < 2; k++) await run(call); // run() asserts numTensors + 1
    assert.ok(!x0.isDisposed);
  }
  x0.dispose();
});

Deno.test("samplers stop between steps on abort, rethrow onStep errors, and free everything", async () => {
  const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
  const sigmas = karrasSigmas({ numSteps: 8 });
  const x0 = tf.ones([2, 2]);
  const before = tf.memory().numTensors;
  const controller = new AbortController();
  const reason = new Error("stop");
  let steps = 0;
  await assert.rejects(
    () =>
      sampleEdmStochastic(denoiser, x0, {
        sigmas,
        sChurn: 10,
        noise: perImageNoise([1, 2]),
        signal: controller.signal,
        onStep: () => {
          if (++steps === 3) controller.abort(reason);
        },
      }),
    (e) => e === reason,
  );
  assert.equal(steps, 3, "no step runs after the abort");
  const boom = new Error("boom");
  await assert.rejects(
    () =>
      sampleHeun(denoiser, x0, {
        sigmas,
        onStep: (r) => {
          if (r.i === 2) throw boom;
        },
      }),
    (e) => e === boom,
  );
  const aborted = AbortSignal.abort(reason);
  await assert.rejects(
    () => sampleEuler(denoiser, x0, { sigmas, signal: aborted }),
    (e) => e === reason,
  );
  assert.equal(tf.memory().numTensors, before);
  assert.ok(!x0.isDisposed);
  x0.dispose();
});

Deno.test("samplers yield to the event loop between steps", async () => {
  const gaussian = idealGaussianDenoiser({ mean: MU, std: STD });
  // A slow denoiser (2 ms a call), so sampling lasts longer than the 10 ms time slice.
  const slow: Denoiser = (x, sigma) => {
    const end = performance.now() + 2;
    while (performance.now() < end) { /* busy */ }
    return gaussian(x, sigma);
  };
  const sigmas = karrasSigmas({ numSteps: 8 });
  const x0 = tf.ones([1, 2]);
  let early = false, late = false;
  const timers = [setTimeout(() => (early = true), 0)];
  const seen: [boolean, boolean][] = [];
  const { x } = await sampleHeun(slow, x0, {
    sigmas,
    onStep: ({ i }) => {
      if (i === 0) timers.push(setTimeout(() => (late = true), 0));
      seen.push([early, late]);
    },
  });
  timers.forEach(clearTimeout);
  assert.ok(seen[0][0], "a timer due before sampling runs before the first step");
  assert.ok(seen[seen.length - 1][1], `a timer set during sampling runs before it ends: ${seen}`);
  tf.dispose([x, x0]);
});
