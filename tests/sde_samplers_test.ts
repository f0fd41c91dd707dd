import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise } from "../core/noise.ts";
import { scoreFromDenoiser } from "../models/ddpm_param.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { SCORE_SDE_NAMES, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { planPc, samplePc, sdePriorSample } from "../samplers/pc_sampler.ts";
import { samplePfOde } from "../samplers/pf_ode.ts";
import { langevinCorrector, noneCorrector } from "../samplers/sde_correctors.ts";
import { PREDICTOR_NAMES, predictorByName } from "../samplers/sde_predictors.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const MU = 0.5, S = 0.3, N = 400, D = 2;
const gauss = idealGaussianDenoiser({ mean: MU, std: S });
const seeds = Array.from({ length: N }, (_, i) => i + 1);

function moments(x: tf.Tensor): { mean: number; variance: number } {
  const v = Array.from(x.dataSync());
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, variance: v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) };
}

// Mean and variance of samples of N(mu_t, v_t) within 4.5 standard errors plus a bias allowance.
function checkMoments(x: tf.Tensor, mu: number, v: number, bias: number, what: string): void {
  const { mean, variance } = moments(x);
  const m = x.size;
  const tolMean = 4.5 * Math.sqrt(v / m) + bias * Math.sqrt(v);
  const tolVar = v * (4.5 * Math.sqrt(2 / m) + bias);
  assert.ok(
    Math.abs(mean - mu) <= tolMean,
    `${what}: mean ${mean}, expected ${mu} (tol ${tolMean})`,
  );
  assert.ok(
    Math.abs(variance - v) <= tolVar,
    `${what}: var ${variance}, expected ${v} (tol ${tolVar})`,
  );
}

// A draw of the exact marginal of N(MU, S^2) data at time t.
function exactMarginal(schedule: LogSnrSchedule, t: number, salt: number): tf.Tensor {
  const a = schedule.alpha(t), sd = Math.sqrt(a * a * S * S + schedule.sigma(t) ** 2);
  return tf.tidy(() =>
    tf.add(tf.mul(perImageNoise(seeds.map((s) => s + salt)).randn([N, D]), sd), a * MU)
  );
}

Deno.test("scoreFromDenoiser() gives the exact Gaussian score -(z - alpha mu) / (alpha^2 s^2 + sigma^2)", () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const t = 0.37, a = schedule.alpha(t), v = a * a * S * S + schedule.sigma(t) ** 2;
    const z = tf.tensor2d([[0.1, -2], [3, 0.5]]);
    const s = scoreFromDenoiser(gauss, schedule)(z, t);
    const expected = Array.from(z.dataSync(), (zi) => -(zi - a * MU) / v);
    Array.from(s.dataSync()).forEach((si, i) =>
      assert.ok(Math.abs(si - expected[i]) <= 1e-4 * Math.abs(expected[i]) + 1e-6, `${name} ${i}`)
    );
    tf.dispose([z, s]);
  }
});

Deno.test("PC sampling of Gaussian data from T reproduces N(mu, s^2) for each predictor, with and without Langevin", async () => {
  const before = tf.memory().numTensors;
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    for (const p of PREDICTOR_NAMES.filter((p) => p !== "none")) {
      for (const corrector of [noneCorrector, langevinCorrector({ snr: 0.16 })]) {
        const noise = perImageNoise(seeds);
        const z = sdePriorSample(schedule, [N, D], noise);
        const { x, nfe } = await samplePc(gauss, z, {
          schedule,
          noise,
          predictor: predictorByName(p),
          corrector,
          steps: 200,
        });
        assert.equal(nfe, corrector === noneCorrector ? 200 : 400);
        checkMoments(x, MU, S * S, 0.06, `${name} ${p} + ${corrector.name}`);
        tf.dispose([z, x]);
      }
    }
  }
  assert.equal(tf.memory().numTensors, before, "PC sampling leaks no tensors");
});

Deno.test("PC sampling from an intermediate t_m with the exact marginal as start gives N(mu, s^2)", async () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const tStart = 0.4;
    const plan = planPc({ schedule, tStart, steps: 80 });
    assert.equal(plan.numScales, 200);
    const z = exactMarginal(schedule, tStart, 1000);
    const noise = perImageNoise(seeds);
    const records: number[] = [], counts: number[] = [];
    const { x } = await samplePc(gauss, z, {
      schedule,
      noise,
      tStart,
      steps: 80,
      corrector: langevinCorrector(),
      onStep: (r) => {
        records.push(r.t);
        counts.push(tf.memory().numTensors);
      },
    });
    assert.equal(records.length, 80);
    assert.ok(counts.every((c) => c === counts[0]), `tensors per step: ${[...new Set(counts)]}`);
    assert.equal(records[0], tStart);
    checkMoments(x, MU, S * S, 0.06, `${name} from t_m = ${tStart}`);
    tf.dispose([z, x]);
  }
});

Deno.test("the Langevin corrector alone at a fixed t leaves the exact marginal invariant", () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const t = 0.3, a = schedule.alpha(t);
    const z = exactMarginal(schedule, t, 2000);
    const corrector = langevinCorrector({ snr: 0.16, nStepsEach: 30 });
    const score = scoreFromDenoiser(gauss, schedule);
    const out = tf.tidy(() =>
      corrector.step(z, {
        schedule,
        score,
        t,
        dt: 1e-3,
        numScales: 1000,
        noise: perImageNoise(seeds),
      }).z
    );
    checkMoments(out, a * MU, a * a * S * S + schedule.sigma(t) ** 2, 0.04, `${name} Langevin`);
    tf.dispose([z, out]);
  }
});

Deno.test("with the ideal point-set denoiser the PC sampler lands on the points", async () => {
  const points = tf.tensor2d([[-1, 0], [1, 0], [0, 1]]);
  const denoiser = idealPointSetDenoiser(points);
  const pts = [[-1, 0], [1, 0], [0, 1]];
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const noise = perImageNoise(seeds.slice(0, 32));
    const z = sdePriorSample(schedule, [32, 2], noise);
    // 200 levels: the last step's G^2 = beta(0) / 200 must not exceed sigma(eps)^2, so VP and
    // sub-VP end at eps = 1 / 200 (score_sde's 1e-3 goes with N = 1000).
    const { x } = await samplePc(denoiser, z, {
      schedule,
      noise,
      corrector: langevinCorrector(),
      steps: 200,
      eps: name === "ve" ? 1e-5 : 5e-3,
    });
    const v = x.arraySync() as number[][];
    for (const row of v) {
      const dist = Math.min(...pts.map((p) => Math.hypot(row[0] - p[0], row[1] - p[1])));
      assert.ok(dist < 0.05, `${name}: sample [${row}] is ${dist} from the nearest point`);
    }
    tf.dispose([z, x]);
  }
  points.dispose();
});

Deno.test("the probability-flow ODE maps the prior to N(mu, s^2), from T and from an intermediate t", async () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    for (const tStart of [1, 0.4]) {
      const z = exactMarginal(schedule, tStart, 3000);
      const { x, nfe } = await samplePfOde(gauss, z, { schedule, tStart });
      assert.ok(nfe > 6);
      checkMoments(x, MU, S * S, 0.02, `${name} ODE from ${tStart}`);
      tf.dispose([z, x]);
    }
  }
});

Deno.test("the probability-flow ODE run forward encodes and decodes back to the data", async () => {
  const schedule = scoreSdeSchedule("subvp");
  const x = tf.tensor2d([[0.2, -0.4], [1.1, 0.6]]);
  const enc = await samplePfOde(gauss, x, { schedule, tStart: 1e-3, tEnd: 0.7 });
  const dec = await samplePfOde(gauss, enc.x, {
    schedule,
    tStart: 0.7,
    tEnd: 1e-3,
    denoise: false,
  });
  const a = x.dataSync(), b = dec.x.dataSync();
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-3, `${a[i]} vs ${b[i]}`);
  assert.throws(() => planPc({ schedule, tStart: 2 }), /tStart = 2/);
  await assert.rejects(
    () => samplePfOde(gauss, x, { schedule, tStart: 1e-3, tEnd: 0.7, denoise: true }),
    /denoise applies/,
  );
  tf.dispose([x, enc.x, dec.x]);
});
