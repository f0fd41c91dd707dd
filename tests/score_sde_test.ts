import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { forwardSdeCoefficients, simulateForwardSde } from "../schedules/forward_sde.ts";
import {
  SCORE_SDE_NAMES,
  scoreSdeSchedule,
  sdePriorStd,
  sdeSamplingEps,
  subVpLogSnrSchedule,
} from "../schedules/score_sde.ts";
import { discretizeSde } from "../schedules/sde_discrete.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

Deno.test("scoreSdeSchedule() has score_sde's marginals and defaults for VE, VP and sub-VP", () => {
  const ve = scoreSdeSchedule("ve"), vp = scoreSdeSchedule("vp"), sub = scoreSdeSchedule("subvp");
  const B = (t: number) => 0.1 * t + 0.5 * 19.9 * t * t;
  for (const t of [1e-5, 0.1, 0.5, 1]) {
    close(ve.alpha(t), 1, 0, `VE alpha(${t})`);
    close(ve.sigma(t), 0.01 * (50 / 0.01) ** t, 1e-12 * 50, `VE sigma(${t})`);
    close(vp.alpha(t), Math.exp(-0.5 * B(t)), 1e-14, `VP alpha(${t})`);
    close(vp.sigma(t), Math.sqrt(1 - Math.exp(-B(t))), 1e-12, `VP sigma(${t})`);
    close(sub.alpha(t), Math.exp(-0.5 * B(t)), 1e-14, `sub-VP alpha(${t})`);
    close(sub.sigma(t), 1 - Math.exp(-B(t)), 1e-12, `sub-VP sigma(${t})`);
    close(sub.tOfLogSnr(sub.logSnr(t)), t, 1e-9 * Math.max(t, 1e-3), `sub-VP inverse at ${t}`);
  }
  for (const s of [ve, vp, sub]) close(s.tMin, 1e-5, 0, `${s.name} eps`);
  close(sdePriorStd(ve), 50, 1e-9, "VE prior std");
  close(sdePriorStd(vp), 1, 1e-4, "VP prior std");
  assert.equal(sdeSamplingEps(ve), 1e-5);
  assert.equal(sdeSamplingEps(sub), 1e-3);
  assert.throws(() => scoreSdeSchedule("cosine" as never), /unknown SDE "cosine"/);
  assert.throws(() => subVpLogSnrSchedule({ betaMin: 1, betaMax: 0.5 }), /betaMin < betaMax/);
});

Deno.test("sub-VP g^2 is beta (1 - e^{-2B}) and matches a finite difference of its variance", () => {
  const sub = subVpLogSnrSchedule();
  const B = (t: number) => 0.1 * t + 0.5 * 19.9 * t * t;
  for (const t of [1e-3, 0.05, 0.3, 0.7, 0.99]) {
    const beta = 0.1 + 19.9 * t;
    const { f, g2 } = forwardSdeCoefficients(sub, t);
    close(f, -beta / 2, 1e-12 * beta, `f(${t})`);
    close(g2, beta * (1 - Math.exp(-2 * B(t))), 1e-9 * beta, `g^2(${t}) closed form`);
    // Theorem 1: g^2 = d sigma^2 / dt - 2 f sigma^2, with a central difference of sigma^2.
    const h = 1e-6;
    const dVar = (sub.sigma(t + h) ** 2 - sub.sigma(t - h) ** 2) / (2 * h);
    close(g2, dVar - 2 * f * sub.sigma(t) ** 2, 1e-6 * beta, `g^2(${t}) vs finite difference`);
  }
});

Deno.test("the forward SDE of VE, VP and sub-VP reproduces the marginals N(alpha x, sigma^2)", () => {
  const n = 2000, x0 = 0.7;
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const rng = new Rng(11);
    const noise = rngNoise(rng);
    const t0 = 1e-3, t1 = 0.6, steps = 400;
    // Start from the exact marginal at t0 (VE's sigma(0) is sigma_min, not 0).
    const z0 = tf.tidy(() =>
      tf.add(tf.mul(noise.randn([n, 1]), schedule.sigma(t0)), schedule.alpha(t0) * x0)
    );
    const times = Array.from({ length: steps + 1 }, (_, i) => t0 * (t1 / t0) ** (i / steps));
    const z = simulateForwardSde(z0, { schedule, times, noise });
    const v = Array.from(z.dataSync());
    const m = v.reduce((a, b) => a + b, 0) / n;
    const varr = v.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1);
    const sd = schedule.sigma(t1);
    close(m, schedule.alpha(t1) * x0, 4 * sd / Math.sqrt(n) + 0.01 * sd, `${name} mean`);
    close(varr, sd * sd, sd * sd * (4 * Math.sqrt(2 / n) + 0.02), `${name} variance`);
    tf.dispose([z0, z]);
  }
});

Deno.test("discretizeSde() gives SMLD's and DDPM's per-step f_i and G_i (score_sde's discretize)", () => {
  const N = 1000;
  const ve = scoreSdeSchedule("ve"), vp = scoreSdeSchedule("vp"), sub = scoreSdeSchedule("subvp");
  const sigmas = Array.from(
    { length: N },
    (_, i) => Math.exp(Math.log(0.01) + i / (N - 1) * (Math.log(50) - Math.log(0.01))),
  );
  const betas = Array.from({ length: N }, (_, i) => 0.1 / N + i / (N - 1) * (20 / N - 0.1 / N));
  for (const t of [1, 0.5, 0.2345, 1e-3, 1e-5]) {
    const i = Math.floor(t * (N - 1));
    const dve = discretizeSde(ve, t);
    assert.equal(dve.index, i);
    close(dve.scale, 1, 0, "VE a_i");
    const prev = i === 0 ? 0 : sigmas[i - 1];
    close(dve.g2, sigmas[i] ** 2 - prev ** 2, 1e-9 * sigmas[i] ** 2, `VE G_i^2 at ${t}`);
    close(
      dve.ancestralVariance,
      prev ** 2 * dve.g2 / sigmas[i] ** 2,
      1e-9 * sigmas[i] ** 2,
      "VE var",
    );
    const dvp = discretizeSde(vp, t);
    close(dvp.g2, betas[i], 1e-12, `VP beta_i at ${t}`);
    close(dvp.scale, Math.sqrt(1 - betas[i]), 1e-12, `VP a_i at ${t}`);
    close(dvp.langevinAlpha, 1 - betas[i], 1e-12, "VP alpha_i");
    // Sub-VP: Euler-Maruyama of its SDE at t with dt = 1/N.
    const { f, g2 } = forwardSdeCoefficients(sub, t);
    const dsub = discretizeSde(sub, t);
    close(dsub.scale, 1 + f / N, 1e-12, "sub-VP a");
    close(dsub.g2, g2 / N, 1e-12, "sub-VP G^2");
  }
  assert.throws(() => discretizeSde(vp, 1.5), /outside \[0, 1\]/);
  assert.throws(() => discretizeSde(vp, 0.5, { numScales: 1 }), /numScales/);
});
