/**
 * Training and the deterministic samplers query a score-SDE denoiser the same way (issue #10's
 * PF-ODE investigation): the network receives score_sde's inputs at the sampler's times, the
 * training draws reach the network with the same time <-> noise-level mapping, and the
 * probability-flow ODE in z space and EDM's Heun ODE in x = z / alpha space follow the exact
 * Gaussian flow path by path.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import type { Network } from "../core/types.ts";
import { scoreFromDenoiser } from "../models/ddpm_param.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { sampleHeun } from "../samplers/heun.ts";
import { samplePfOde } from "../samplers/pf_ode.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { SCORE_SDE_NAMES, type ScoreSdeName, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { drawSdeTimes } from "../training/loss_sde.ts";
import { sdeObjective } from "../training/objective.ts";

await selectBackend({ backend: "cpu" });

/** score_sde's noise label: 999 t for the DDPM++ (VP, sub-VP) models, EDM's ln(sigma / 2) for VE. */
function expectedLabel(name: ScoreSdeName, t: number): number {
  const s = scoreSdeSchedule(name);
  return name === "ve" ? Math.log(0.5 * s.sigma(t) / s.alpha(t)) : 999 * t;
}

/** A network that records its input and noise label and returns the constant `out`. */
function spyNetwork(out: number): { net: Network; seen: { x: number[]; label: number[] } } {
  const seen = { x: [] as number[], label: [] as number[] };
  const net: Network = (x, cNoise) => {
    seen.x = Array.from(x.dataSync());
    seen.label = Array.from(cNoise.dataSync());
    return tf.fill(x.shape, out);
  };
  return { net, seen };
}

const close = (a: number, b: number, rel: number, what: string): void =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

Deno.test("the sampler's score query gives the network z, score_sde's label and the score its parametrization implies", () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const { net, seen } = spyNetwork(0.25);
    const score = scoreFromDenoiser(sdeObjective(name).precond(net), schedule);
    for (const t of [1e-3, 0.05, 0.5, 0.9, 1]) {
      const z = tf.tensor2d([[0.3, -1.2]]);
      const s = score(z, t);
      const sigma = schedule.sigma(t);
      // The network sees the schedule's own state z (c_in x = alpha x = z; VE: alpha = 1).
      close(seen.x[0], 0.3, 1e-4, `${name} input at t = ${t}`);
      close(seen.x[1], -1.2, 1e-4, `${name} input at t = ${t}`);
      close(seen.label[0], expectedLabel(name, t), 2e-4, `${name} label at t = ${t}`);
      // VP / sub-VP: F predicts epsilon, s = -F / sigma(t); VE: F = sigma D-part, s = F / sigma.
      // (alpha D - z) / sigma^2 rounds alpha D ~ |z| in float32: allow 2^-23 |z| / sigma^2 more
      // (sub-VP's sigma(1e-3) is 1.1e-4: an absolute error of a few units on a score of 2274).
      const want = name === "ve" ? 0.25 / sigma : -0.25 / sigma;
      const tol = 1e-4 * Math.abs(want) + 2 * 1.2 * 2 ** -23 / (sigma * sigma);
      for (const v of s.dataSync()) {
        assert.ok(Math.abs(v - want) <= tol, `${name} score at t = ${t}: ${v} vs ${want}`);
      }
      tf.dispose([z, s]);
    }
  }
});

Deno.test("training draws reach the network with the sampler's time <-> noise-level mapping", () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const objective = sdeObjective(name);
    const { net, seen } = spyNetwork(0);
    const denoiser = objective.precond(net);
    // The same generator state gives the times behind the levels the trainer draws.
    const { t } = drawSdeTimes(64, new Rng(5), { schedule });
    const sigmas = objective.drawSigmas(64, new Rng(5));
    tf.tidy(() => denoiser(tf.zeros([64, 1]), tf.tensor1d(sigmas)));
    for (let i = 0; i < 64; i++) {
      close(seen.label[i], expectedLabel(name, t[i]), 2e-4, `${name} training label ${i}`);
    }
  }
});

Deno.test("PF-ODE and Heun follow the exact Gaussian flow path by path from T", async () => {
  const mu = 0.5, sd = 0.3, tEnd = 1e-3;
  const gauss = idealGaussianDenoiser({ mean: mu, std: sd });
  const rng = new Rng(11);
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const lvl = (t: number) => schedule.sigma(t) / schedule.alpha(t);
    const sT = lvl(1), sE = lvl(tEnd);
    const start = new Float32Array(8);
    rng.fillNormal(start);
    const zT = tf.tensor2d(start.map((n) => schedule.sigma(1) * n), [4, 2]);
    // x = z / alpha moves along x(s) = mu + (x(sT) - mu) sqrt((sd^2 + s^2) / (sd^2 + sT^2)).
    const ratio = Math.sqrt((sd * sd + sE * sE) / (sd * sd + sT * sT));
    const exact = Array.from(
      zT.dataSync(),
      (z) => schedule.alpha(tEnd) * (mu + (z / schedule.alpha(1) - mu) * ratio),
    );
    const ode = await samplePfOde(gauss, zT, { schedule, tEnd, denoise: false });
    const sigmas = karrasSigmas({ numSteps: 160, sigmaMin: sE, sigmaMax: sT }).slice(0, -1);
    const x0 = tf.div(zT, schedule.alpha(1));
    const heun = await sampleHeun(gauss, x0, { sigmas, secondOrderAtLast: true });
    const h = heun.x.dataSync(), o = ode.x.dataSync();
    for (let i = 0; i < exact.length; i++) {
      assert.ok(Math.abs(o[i] - exact[i]) < 2e-3, `${name} PF-ODE ${o[i]} vs exact ${exact[i]}`);
      const hz = schedule.alpha(tEnd) * h[i];
      assert.ok(Math.abs(hz - exact[i]) < 2e-3, `${name} Heun ${hz} vs exact ${exact[i]}`);
    }
    tf.dispose([zT, x0, ode.x, heun.x]);
  }
});
