import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import {
  forwardSdeCoefficients,
  forwardTransition,
  simulateForwardSde,
} from "../schedules/forward_sde.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import {
  edmLogSnrSchedule,
  fmOtLogSnrSchedule,
  veLogSnrSchedule,
  vpLogSnrSchedule,
} from "../schedules/s2n_schedules.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

Deno.test("forwardSdeCoefficients() gives the known f and g^2 of VP, VE, FM-OT and EDM", () => {
  const vp = vpLogSnrSchedule(), ve = veLogSnrSchedule(), fm = fmOtLogSnrSchedule();
  const edm = edmLogSnrSchedule();
  // VP: f = -beta(t)/2, g^2 = beta(t) (Song et al. 2020b), also at t = 0 where sigma = 0.
  for (const t of [0, 1e-4, 0.3, 1]) {
    const beta = 0.1 + 19.9 * t;
    const { f, g2 } = forwardSdeCoefficients(vp, t);
    close(f, -beta / 2, 1e-12, `VP f(${t})`);
    close(g2, beta, t === 0 ? 1e-5 : 1e-9, `VP g^2(${t})`);
  }
  for (const t of [0, 0.5, 1]) {
    const { f, g2 } = forwardSdeCoefficients(ve, t);
    assert.equal(f, 0);
    close(g2, 2 * ve.sigma(t) ** 2 * Math.log(5000), 1e-12, `VE g^2(${t}) = d sigma^2 / dt`);
  }
  for (const t of [0.01, 0.5, 0.9]) {
    const { f, g2 } = forwardSdeCoefficients(fm, t);
    close(f, -1 / (1 - t), 1e-12, `FM-OT f(${t})`);
    close(g2, 2 * t / (1 - t), 1e-12, `FM-OT g^2(${t})`);
    close(forwardSdeCoefficients(edm, t).g2, 2 * t, 1e-12, `EDM g^2(${t})`);
  }
});

Deno.test("forwardTransition() is the marginal from t = 0 and composes (Chapman-Kolmogorov)", () => {
  const cases: [LogSnrSchedule, number, number, number][] = [
    [vpLogSnrSchedule(), 0.05, 0.4, 0.9],
    [veLogSnrSchedule(), 0.1, 0.5, 1],
    [fmOtLogSnrSchedule(), 0.1, 0.3, 0.7],
  ];
  for (const [sch, s, u, t] of cases) {
    const ts = forwardTransition(sch, { s, t }), us = forwardTransition(sch, { s, t: u });
    const tu = forwardTransition(sch, { s: u, t });
    close(ts.scale, tu.scale * us.scale, 1e-12, `${sch.name} scale`);
    close(ts.variance, tu.scale ** 2 * us.variance + tu.variance, 1e-12, `${sch.name} variance`);
    // Theorem 1 as printed: alpha_t^2 (exp(-lambda_t) - exp(-lambda_s)).
    const printed = sch.alpha(t) ** 2 * (Math.exp(-sch.logSnr(t)) - Math.exp(-sch.logSnr(s)));
    close(ts.variance, printed, 1e-10, `${sch.name} variance formula`);
  }
  const vp = vpLogSnrSchedule();
  const m = forwardTransition(vp, { s: 0, t: 0.6 });
  close(m.scale, vp.alpha(0.6), 1e-15, "marginal scale");
  close(m.variance, vp.sigma(0.6) ** 2, 1e-15, "marginal variance");
  assert.throws(() => forwardTransition(vp, { s: 0.5, t: 0.2 }), RangeError);
});

/** Per-column mean and variance of an [n, d] tensor. */
function moments(z: tf.Tensor): { mean: number[]; variance: number[] } {
  const [n, d] = z.shape;
  const v = z.dataSync();
  const mean = Array.from({ length: d }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += v[i * d + j];
    return s / n;
  });
  const variance = mean.map((m, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (v[i * d + j] - m) ** 2;
    return s / (n - 1);
  });
  return { mean, variance };
}

Deno.test("simulating the forward SDE (Euler-Maruyama) on Gaussian data reproduces the marginals", () => {
  const mu = [1, -2], std = [0.5, 2], n = 4000;
  const cases: [LogSnrSchedule, number, number][] = [
    [vpLogSnrSchedule(), 0, 1],
    [veLogSnrSchedule(), 0, 1],
    [fmOtLogSnrSchedule(), 0, 0.9],
  ];
  for (const [sch, t0, t1] of cases) {
    const steps = 400;
    const times = Array.from({ length: steps + 1 }, (_, i) => t0 + (i / steps) * (t1 - t0));
    const before = tf.memory().numTensors;
    const z0 = tf.tidy(() => {
      // z_{t0} = alpha x + sigma eps, x ~ N(mu, diag(std^2)): exact at the first time.
      const x = tf.add(tf.mul(rngNoise(new Rng(1)).randn([n, 2]), std), tf.tensor1d(mu));
      return tf.add(
        tf.mul(x, sch.alpha(t0)),
        tf.mul(rngNoise(new Rng(2)).randn([n, 2]), sch.sigma(t0)),
      );
    });
    const z1 = simulateForwardSde(z0, { schedule: sch, times, noise: rngNoise(new Rng(3)) });
    assert.ok(!z0.isDisposed, "the input is never disposed");
    const { mean, variance } = moments(z1);
    tf.dispose([z0, z1]);
    assert.equal(tf.memory().numTensors, before, "no tensors leak");
    const a = sch.alpha(t1), s = sch.sigma(t1);
    for (let j = 0; j < 2; j++) {
      const v = a * a * std[j] ** 2 + s * s;
      // 4 standard errors plus 1% for the Euler-Maruyama bias.
      const meanTol = 4 * Math.sqrt(v / n) + 0.01 * Math.abs(a * mu[j]);
      assert.ok(
        Math.abs(mean[j] - a * mu[j]) < meanTol,
        `${sch.name} mean ${mean[j]} vs ${a * mu[j]}`,
      );
      assert.ok(
        Math.abs(variance[j] / v - 1) < 4 * Math.sqrt(2 / n) + 0.01,
        `${sch.name} dim ${j}: variance ${variance[j]} vs ${v}`,
      );
    }
  }
});

Deno.test("simulateForwardSde() rejects times that do not increase", () => {
  const z = tf.zeros([2, 2]);
  const opts = { schedule: vpLogSnrSchedule(), noise: rngNoise(new Rng(0)) };
  assert.throws(() => simulateForwardSde(z, { ...opts, times: [0.5] }), RangeError);
  assert.throws(() => simulateForwardSde(z, { ...opts, times: [0.5, 0.2] }), /increase/);
  z.dispose();
});
