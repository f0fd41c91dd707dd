import assert from "node:assert/strict";
import {
  ddpmProcess,
  ddpmSigmas,
  respaceDdpm,
  reverseVariances,
  sigmaOfStep,
  spaceTimesteps,
  timeOfSigma,
} from "../schedules/ddpm.ts";
import { iddpmSchedule } from "../schedules/iddpm.ts";

function assertClose(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-300);
  assert.ok(err <= rel, `${what}: got ${actual}, expected ${expected} (relative error ${err})`);
}

Deno.test("ddpmProcess() has DDPM's linear betas from 1e-4 to 0.02 and alphaBar as their product", () => {
  const p = ddpmProcess();
  assert.equal(p.T, 1000);
  assert.equal(p.betas.length, 1001);
  assert.equal(p.alphaBar[0], 1);
  let ab = 1;
  for (let t = 1; t <= 1000; t++) {
    const beta = 1e-4 + (0.02 - 1e-4) * (t - 1) / 999;
    assertClose(p.betas[t], beta, 1e-14, `beta_${t}`);
    assertClose(p.alphas[t], 1 - beta, 1e-15, `alpha_${t}`);
    ab *= 1 - beta;
    assertClose(p.alphaBar[t], ab, 1e-12, `alphaBar_${t}`);
  }
  // alphaBar_T = exp(sum log(1 - beta)) ~ 4.04e-5: the signal left at x_T.
  assertClose(p.alphaBar[1000], 4.0358e-5, 1e-4, "alphaBar_T");
});

Deno.test("ddpmProcess({ schedule: 'cosine' }) follows improved DDPM's alphaBar(t) = f(t)/f(0)", () => {
  const T = 100, s = 0.008;
  const f = (t: number) => Math.cos(((t / T + s) / (1 + s)) * Math.PI / 2) ** 2;
  const p = ddpmProcess({ schedule: "cosine", T });
  for (let t = 1; t < T; t++) assertClose(p.alphaBar[t], f(t) / f(0), 1e-12, `alphaBar_${t}`);
  // beta_T = 1 - f(T)/f(T-1) = 1 (f(T) = 0) is clipped to 0.999.
  assertClose(p.betas[T], 0.999, 1e-15, "clipped beta_T");
  assertClose(p.alphaBar[T], 0.001 * f(T - 1) / f(0), 1e-12, "alphaBar_T");
});

Deno.test("the cosine process's sigma_t are the trained levels u_{M-t} of EDM's iDDPM column", () => {
  // EDM Table 1 builds u_j by a recursion on alphaBar ratios with the clamp C1 = 0.001, the
  // same clip as beta <= 0.999; its index j = M - t runs the other way.
  const p = ddpmProcess({ schedule: "cosine" });
  const { u, M } = iddpmSchedule();
  for (let t = 1; t <= 1000; t++) assertClose(sigmaOfStep(p, t), u[M - t], 1e-9, `sigma_${t}`);
});

Deno.test("the posterior q(x_{t-1} | x_t, x_0) matches the product of eq. 2 and eq. 4 Gaussians", () => {
  for (const p of [ddpmProcess(), ddpmProcess({ schedule: "cosine", T: 50 })]) {
    for (let t = 2; t <= p.T; t += 7) {
      // q(x_t | x_{t-1}) q(x_{t-1} | x_0) as a density in x_{t-1}: precisions add.
      const beta = p.betas[t], abPrev = p.alphaBar[t - 1];
      const precision = (1 - beta) / beta + 1 / (1 - abPrev);
      assertClose(p.posteriorVariance[t], 1 / precision, 1e-12, `betaTilde_${t}`);
      assertClose(
        p.posteriorCoefXt[t],
        Math.sqrt(1 - beta) / beta / precision,
        1e-12,
        `coefXt_${t}`,
      );
      assertClose(
        p.posteriorCoefX0[t],
        Math.sqrt(abPrev) / (1 - abPrev) / precision,
        1e-12,
        `coefX0_${t}`,
      );
    }
    // At t = 1 the posterior is the point x_0.
    assert.equal(p.posteriorVariance[1], 0);
    assertClose(p.posteriorCoefX0[1], 1, 1e-12, "coefX0_1");
    assert.equal(p.posteriorCoefXt[1], 0);
  }
});

Deno.test("reverseVariances() gives beta_t or betaTilde_t, with betaTilde_2 standing in at t = 1", () => {
  const p = ddpmProcess({ T: 20 });
  const large = reverseVariances(p, "beta"), small = reverseVariances(p, "betaTilde");
  for (let t = 2; t <= 20; t++) {
    assert.equal(large[t], p.betas[t]);
    assert.equal(small[t], p.posteriorVariance[t]);
    assert.ok(small[t] < large[t]);
  }
  assert.equal(large[1], p.betas[1]);
  assert.equal(small[1], p.posteriorVariance[2]);
  assert.throws(() => reverseVariances(p, "learned" as "beta"), RangeError);
});

Deno.test("respaceDdpm() keeps alphaBar on the subsequence and recomputes beta_k from it", () => {
  const p = ddpmProcess();
  const steps = spaceTimesteps(1000, { numSteps: 50 });
  const r = respaceDdpm(p, steps);
  assert.equal(r.T, 50);
  assert.equal(r.schedule, "respaced");
  assert.equal(r.alphaBar[0], 1);
  for (let k = 1; k <= 50; k++) {
    assert.equal(r.alphaBar[k], p.alphaBar[steps[k - 1]]);
    assert.equal(r.timesteps[k], steps[k - 1]);
    assertClose(r.alphaBar[k - 1] * (1 - r.betas[k]), r.alphaBar[k], 1e-14, `ab_${k}`);
  }
  // Respacing to every step is the identity; respacing composes.
  const all = respaceDdpm(p, Array.from({ length: 1000 }, (_, i) => i + 1));
  for (let t = 1; t <= 1000; t += 37) assertClose(all.betas[t], p.betas[t], 1e-10, `beta_${t}`);
  const twice = respaceDdpm(r, [1, 10, 50]);
  assert.deepEqual(Array.from(twice.timesteps), [0, steps[0], steps[9], steps[49]]);
  assert.equal(twice.baseAlphaBar, p.alphaBar);
  assert.throws(() => respaceDdpm(p, [5, 5]), RangeError);
  assert.throws(() => respaceDdpm(p, [0, 5]), RangeError);
  assert.throws(() => respaceDdpm(p, []), RangeError);
});

Deno.test("spaceTimesteps() picks K increasing steps from 1 to T", () => {
  assert.deepEqual(Array.from(spaceTimesteps(1000, { numSteps: 10 })), [
    1,
    112,
    223,
    334,
    445,
    556,
    667,
    778,
    889,
    1000,
  ]);
  for (const spacing of ["uniform", "quadratic"] as const) {
    for (const K of [1, 2, 10, 100, 999, 1000]) {
      const s = spaceTimesteps(1000, { numSteps: K, spacing });
      assert.equal(s.length, K);
      assert.equal(s[K - 1], 1000);
      if (K > 1) assert.equal(s[0], 1);
      for (let k = 1; k < K; k++) assert.ok(s[k] > s[k - 1], `${spacing} K=${K} increases`);
    }
  }
  assert.throws(() => spaceTimesteps(10, { numSteps: 11 }), RangeError);
  assert.throws(() => spaceTimesteps(10, { numSteps: 0 }), RangeError);
});

Deno.test("the sigma bridge: sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t) and timeOfSigma inverts it", () => {
  const p = ddpmProcess();
  for (let t = 1; t <= 1000; t++) {
    const sigma = sigmaOfStep(p, t);
    assertClose(sigma, Math.sqrt((1 - p.alphaBar[t]) / p.alphaBar[t]), 1e-15, `sigma_${t}`);
    assert.equal(timeOfSigma(p, sigma), t);
    assertClose(timeOfSigma(p, sigma, { mode: "interpolate" }), t, 1e-9, `t(sigma_${t})`);
  }
  // Between two grid levels: the geometric mean is half way in log sigma.
  const mid = Math.sqrt(sigmaOfStep(p, 300) * sigmaOfStep(p, 301));
  assertClose(timeOfSigma(p, mid, { mode: "interpolate" }), 300.5, 1e-9, "t(mid)");
  assert.equal(timeOfSigma(p, mid * 1.0001), 301);
  assert.equal(timeOfSigma(p, mid / 1.0001), 300);
  // Outside the grid, clamped.
  assert.equal(timeOfSigma(p, 0), 1);
  assert.equal(timeOfSigma(p, 1e6, { mode: "interpolate" }), 1000);
  // On a respaced grid, the network time of the nearest kept step.
  const r = respaceDdpm(p, [1, 500, 1000]);
  assert.equal(timeOfSigma(r, sigmaOfStep(p, 480)), 500);
  const sigmas = ddpmSigmas(r);
  assert.deepEqual(Array.from(sigmas), [
    sigmaOfStep(p, 1000),
    sigmaOfStep(p, 500),
    sigmaOfStep(p, 1),
    0,
  ]);
  assert.throws(() => timeOfSigma(p, -1), RangeError);
});

Deno.test("ddpmProcess() rejects bad settings with RangeError", () => {
  assert.throws(() => ddpmProcess({ T: 0 }), RangeError);
  assert.throws(() => ddpmProcess({ T: 1.5 }), RangeError);
  assert.throws(() => ddpmProcess({ betaStart: 0.1, betaEnd: 0.01 }), RangeError);
  assert.throws(() => ddpmProcess({ betaEnd: 1 }), RangeError);
  assert.throws(() => ddpmProcess({ schedule: "sigmoid" as "linear" }), RangeError);
  assert.throws(() => ddpmProcess({ schedule: "cosine", maxBeta: 1 }), RangeError);
});
