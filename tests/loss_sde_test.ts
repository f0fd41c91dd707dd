import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { scoreFromDenoiser } from "../models/ddpm_param.ts";
import { forwardSdeCoefficients } from "../schedules/forward_sde.ts";
import { SCORE_SDE_NAMES, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { drawSdeTimes, sdeLoss } from "../training/loss_sde.ts";

await selectBackend({ backend: "cpu", log: () => {} });

Deno.test("sdeLoss() equals score_sde's sigma^2- and g^2-weighted score-matching losses", () => {
  const rng = new Rng(3), y = tf.tensor2d([[0.3, -0.2, 0.9], [-1, 0.5, 0.1]]);
  const denoiser = (x: tf.Tensor) => tf.mul(x, 0.8);
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    for (const weighting of ["sigma2", "likelihood"] as const) {
      const d = drawSdeTimes(2, rng, { schedule, weighting, tMax: 0.6 });
      const noise = rngNoise(rng).randn([2, 3]);
      const value = sdeLoss()(denoiser, y, {
        sigma: tf.tensor1d(d.sigma),
        weight: tf.tensor1d(d.weight),
        noise,
      }).dataSync()[0];
      // Reference: z = alpha y + sigma n, s = score(z), loss = 0.5 sum lambda ||s + n / sigma||^2.
      const score = scoreFromDenoiser(denoiser, schedule);
      let expected = 0;
      for (let i = 0; i < 2; i++) {
        const t = d.t[i], a = schedule.alpha(t), sd = schedule.sigma(t);
        assert.ok(t >= 1e-5 && t <= 0.6);
        const yi = tf.slice(y, [i, 0], [1, 3]), ni = tf.slice(noise, [i, 0], [1, 3]);
        const z = tf.add(tf.mul(yi, a), tf.mul(ni, sd));
        const s = score(z, t).dataSync(), n = ni.dataSync();
        const lambda = weighting === "sigma2" ? sd * sd : forwardSdeCoefficients(schedule, t).g2;
        for (let j = 0; j < 3; j++) expected += 0.5 * lambda * (s[j] + n[j] / sd) ** 2 / 2;
      }
      assert.ok(
        Math.abs(value - expected) <= 2e-4 * Math.abs(expected),
        `${name} ${weighting}: ${value} vs ${expected}`,
      );
    }
  }
});

Deno.test("importance-sampled times give the uniform likelihood-weighted mean with lower variance", () => {
  // Integrand L(t) = sigma_edm(t)^2 / (1 + sigma_edm(t)^2): the loss of a denoiser D = 0 on
  // N(0, 1)-like data, up to the 1 / sigma_edm^2 factor the loss applies.
  for (const name of ["vp", "subvp", "ve"] as const) {
    const schedule = scoreSdeSchedule(name);
    const estimates = (importance: boolean) => {
      const d = drawSdeTimes(20000, new Rng(importance ? 1 : 2), {
        schedule,
        weighting: "likelihood",
        importance,
      });
      return Array.from(d.sigma, (s, i) => d.weight[i] * s * s / (1 + s * s) / (s * s));
    };
    const stats = (v: number[]) => {
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      return { m, sd: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) };
    };
    const u = stats(estimates(false)), is = stats(estimates(true));
    // Closed form: int -lambda'(t) / (1 + sigma_edm^2) dt / (T - eps) = int_{lambda(T)}^{lambda(eps)}
    // sigmoid(lambda) dlambda / (T - eps) = [softplus]_{lambda(T)}^{lambda(eps)} / (T - eps).
    const sp = (x: number) => x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    const exact = (sp(schedule.logSnr(1e-5)) - sp(schedule.logSnr(1))) / (1 - 1e-5);
    const se = u.sd / Math.sqrt(20000);
    assert.ok(Math.abs(u.m - exact) < 4.5 * se, `${name} uniform ${u.m} vs ${exact}`);
    assert.ok(Math.abs(is.m - exact) < 4.5 * se, `${name} importance ${is.m} vs ${exact}`);
    // VE's g^2 / sigma^2 = 2 log(sigma_max / sigma_min) is constant: there both samplers coincide.
    if (name !== "ve") {
      assert.ok(is.sd < 0.5 * u.sd, `${name}: importance sd ${is.sd} not below uniform ${u.sd}`);
    }
  }
  assert.throws(
    () => drawSdeTimes(2, new Rng(0), { schedule: scoreSdeSchedule("vp"), importance: true }),
    /importance sampling/,
  );
});
