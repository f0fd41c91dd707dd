import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { vpSchedule } from "../schedules/vp.ts";
import { veSchedule } from "../schedules/ve.ts";
import { iddpmSchedule } from "../schedules/iddpm.ts";
import { edmSchedule } from "../schedules/edm.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import {
  iddpmTimeSteps,
  sigmasOfTimes,
  veTimeSteps,
  vpTimeSteps,
} from "../schedules/time_steps.ts";
import {
  edmSigmaOf,
  logSnrOfSigma,
  noiseScheduleOf,
  sigmaOfLogSnr,
  vpAlphaSigma,
} from "../schedules/noise_schedule.ts";
import type { SigmaSchedule } from "../schedules/types.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

// Central differences, step relative to t so small t stays in the domain.
function checkDerivatives(sch: SigmaSchedule, ts: number[]): void {
  for (const t of ts) {
    const h = 1e-6 * t;
    const dSigma = (sch.sigma(t + h) - sch.sigma(t - h)) / (2 * h);
    const dS = (sch.s(t + h) - sch.s(t - h)) / (2 * h);
    close(sch.sigmaDeriv(t), dSigma, 1e-6, `${sch.name} sigma'(${t})`);
    close(sch.sDeriv(t), dS, 1e-6, `${sch.name} s'(${t})`);
  }
}

function checkRoundTrip(sch: SigmaSchedule, ts: number[]): void {
  for (const t of ts) close(sch.sigmaInv(sch.sigma(t)), t, 1e-10, `${sch.name} inv(sigma(${t}))`);
}

Deno.test("vpSchedule() reproduces Table 1 sigma(t) and s(t) at sample points", () => {
  const vp = vpSchedule();
  assert.equal(vp.betaD, 19.9);
  assert.equal(vp.betaMin, 0.1);
  assert.equal(vp.epsS, 1e-3);
  assert.equal(vp.epsT, 1e-5);
  for (const t of [1e-5, 1e-3, 0.1, 0.5, 1]) {
    const e = Math.exp(0.5 * 19.9 * t * t + 0.1 * t);
    close(vp.sigma(t), Math.sqrt(e - 1), 1e-9, `sigma(${t})`);
    close(vp.s(t), 1 / Math.sqrt(e), 1e-12, `s(${t})`);
    // s(t) = 1 / sqrt(1 + sigma(t)^2): the VP process preserves variance for unit data.
    close(vp.s(t), 1 / Math.sqrt(1 + vp.sigma(t) ** 2), 1e-12, `s vs sigma at ${t}`);
  }
  close(vp.sigma(1), 152.16697, 1e-6, "sigma(1)");
});

Deno.test("vpSchedule() derivatives match finite differences and sigmaInv round-trips", () => {
  const vp = vpSchedule({ betaD: 10, betaMin: 0.5 });
  checkDerivatives(vp, [0.01, 0.2, 0.7, 1]);
  checkRoundTrip(vp, [1e-5, 1e-3, 0.3, 1]);
  checkRoundTrip(vpSchedule(), [1e-5, 1e-3, 0.3, 1]);
  close(vpSchedule().sigmaInv(0), 0, 0, "sigmaInv(0)");
});

Deno.test("veSchedule() is sigma = sqrt(t), s = 1, with derivatives and inverse", () => {
  const ve = veSchedule();
  assert.equal(ve.sigmaMin, 0.02);
  assert.equal(ve.sigmaMax, 100);
  close(ve.tMin, 0.0004, 1e-12, "tMin");
  close(ve.tMax, 10000, 1e-12, "tMax");
  for (const t of [0.0004, 0.25, 4, 10000]) {
    close(ve.sigma(t), Math.sqrt(t), 1e-15, `sigma(${t})`);
    assert.equal(ve.s(t), 1);
  }
  checkDerivatives(ve, [0.0004, 0.25, 4, 10000]);
  checkRoundTrip(ve, [0.0004, 0.25, 4, 10000]);
});

Deno.test("edmSchedule() is sigma = t, s = 1 with the paper's parameters", () => {
  const edm = edmSchedule();
  assert.deepEqual([edm.sigmaMin, edm.sigmaMax, edm.rho], [0.002, 80, 7]);
  for (const t of [0.002, 1, 80]) {
    assert.equal(edm.sigma(t), t);
    assert.equal(edm.s(t), 1);
    assert.equal(edm.sigmaDeriv(t), 1);
    assert.equal(edm.sDeriv(t), 0);
    assert.equal(edm.sigmaInv(t), t);
  }
});

Deno.test("iddpmSchedule() table follows the Table 1 recursion from u_M = 0", () => {
  const sch = iddpmSchedule();
  const { u, M, C1, C2 } = sch;
  assert.deepEqual([C1, C2, M, sch.j0], [0.001, 0.008, 1000, 8]);
  assert.equal(u.length, M + 1);
  assert.equal(u[M], 0);
  const alphaBar = (j: number) => Math.sin((Math.PI / 2) * j / (M * (C2 + 1))) ** 2;
  for (const j of [0, 1, 500, 999, 1000]) close(sch.alphaBar(j), alphaBar(j), 1e-15, `abar ${j}`);
  // Last step from u_M = 0: u_{M-1}^2 = abar_M / abar_{M-1} - 1.
  close(u[M - 1], Math.sqrt(alphaBar(M) / alphaBar(M - 1) - 1), 1e-12, "u_{M-1}");
  // Recursion written as (u_{j-1}^2 + 1) max(ratio, C1) = u_j^2 + 1, at sample j.
  for (const j of [1, 2, 8, 100, 500, 999]) {
    const ratio = Math.max(alphaBar(j - 1) / alphaBar(j), C1);
    close((u[j - 1] ** 2 + 1) * ratio, u[j] ** 2 + 1, 1e-12, `recursion at j=${j}`);
  }
  // alpha_bar_0 = 0, so u_0 comes from the clamp C1.
  close(u[0], Math.sqrt((u[1] ** 2 + 1) / C1 - 1), 1e-12, "u_0");
  for (let j = 1; j <= M; j++) assert.ok(u[j] < u[j - 1], `u decreasing at ${j}`);
  close(u[8], 80.2037, 1e-5, "u_8 (EDM's sigma_max for iDDPM)");
  assert.equal(sch.sigma(3), 3);
  assert.equal(sch.sigmaInv(3), 3);
});

Deno.test("iddpmSchedule() nearestIndex and roundSigma snap to table entries", () => {
  const sch = iddpmSchedule();
  const { u, M } = sch;
  for (const j of [0, 8, 123, 999]) {
    assert.equal(sch.nearestIndex(u[j] * (1 + 1e-9)), j);
    assert.equal(sch.roundSigma(u[j] * (1 - 1e-9)), u[j]);
  }
  assert.equal(sch.nearestIndex(0), M - 1); // c_noise stays in the trained range
  assert.equal(sch.roundSigma(0), 0); // ...while a final 0 stays 0
  // Midpoint between two entries goes to the closer side.
  const mid = 0.5 * (u[10] + u[11]);
  assert.equal(sch.nearestIndex(mid + 1e-9), 10);
  assert.equal(sch.nearestIndex(mid - 1e-9), 11);
});

Deno.test("schedule factories reject invalid options with a RangeError", () => {
  assert.throws(() => vpSchedule({ betaD: 0 }), RangeError);
  assert.throws(() => vpSchedule({ epsS: 1 }), RangeError);
  assert.throws(() => veSchedule({ sigmaMin: 5, sigmaMax: 1 }), RangeError);
  assert.throws(() => edmSchedule({ rho: 0 }), RangeError);
  assert.throws(() => iddpmSchedule({ M: 1.5 }), RangeError);
  assert.throws(() => iddpmSchedule({ j0: 999 }), RangeError);
  assert.throws(() => iddpmSchedule({ C1: 0 }), RangeError);
});

Deno.test("vpTimeSteps() runs uniformly from t_0 = 1 to t_{N-1} = epsS, then 0", () => {
  const t = vpTimeSteps({ numSteps: 10, epsS: 1e-3 });
  assert.equal(t.length, 11);
  assert.equal(t[0], 1);
  close(t[9], 1e-3, 1e-14, "t_{N-1}");
  assert.equal(t[10], 0);
  for (let i = 1; i < 10; i++) close(t[i - 1] - t[i], (1 - 1e-3) / 9, 1e-12, `spacing ${i}`);
  const sigmas = sigmasOfTimes(t, vpSchedule());
  close(sigmas[0], vpSchedule().sigma(1), 1e-15, "sigma_0");
  assert.equal(sigmas[10], 0);
  assert.deepEqual(Array.from(vpTimeSteps({ numSteps: 1 })), [1, 0]);
});

Deno.test("veTimeSteps() is geometric in sigma from sigma_max to sigma_min, then 0", () => {
  const t = veTimeSteps({ numSteps: 8 });
  assert.equal(t.length, 9);
  assert.equal(t[8], 0);
  const sigmas = sigmasOfTimes(t, veSchedule());
  close(sigmas[0], 100, 1e-12, "sigma_0");
  close(sigmas[7], 0.02, 1e-12, "sigma_{N-1}");
  const ratio = (0.02 / 100) ** (1 / 7);
  for (let i = 1; i < 8; i++) close(sigmas[i] / sigmas[i - 1], ratio, 1e-12, `ratio ${i}`);
  assert.equal(sigmas[8], 0);
});

Deno.test("iddpmTimeSteps() picks u_j from u_{j0} to u_{M-1}, decreasing, then u_M = 0", () => {
  const { u } = iddpmSchedule();
  const t = iddpmTimeSteps({ numSteps: 18 });
  assert.equal(t.length, 19);
  assert.equal(t[0], u[8]);
  assert.equal(t[17], u[999]);
  assert.equal(t[18], 0);
  for (let i = 1; i < 19; i++) assert.ok(t[i] < t[i - 1], `decreasing at ${i}`);
  // The floor(j0 + (M-1-j0)/(N-1) i + 1/2) index at i = 1.
  assert.equal(t[1], u[Math.floor(8 + 991 / 17 + 0.5)]);
  assert.equal(iddpmTimeSteps({ numSteps: 5, j0: 0 })[0], u[0]);
  assert.throws(() => iddpmTimeSteps({ numSteps: 993 }), RangeError);
  assert.throws(() => vpTimeSteps({ numSteps: 0 }), RangeError);
  assert.throws(() => veTimeSteps({ sigmaMin: 0 }), RangeError);
});

Deno.test("karrasSigmas() (EDM column) runs from sigma_max to sigma_min, then 0", () => {
  const s = karrasSigmas({ numSteps: 18 });
  close(s[0], 80, 1e-12, "sigma_0");
  close(s[17], 0.002, 1e-12, "sigma_{N-1}");
  assert.equal(s[18], 0);
  for (let i = 1; i < 19; i++) assert.ok(s[i] < s[i - 1]);
});

Deno.test("noiseScheduleOf() gives alpha = s, sigma = s sigma(t) and an invertible log-SNR", () => {
  const vp = vpSchedule();
  const ns = noiseScheduleOf(vp);
  assert.equal(ns.name, "vp");
  assert.equal(ns.tMin, 1e-5);
  assert.equal(ns.tMax, 1);
  for (const t of [1e-5, 0.01, 0.3, 1]) {
    close(ns.alpha(t) ** 2 + ns.sigma(t) ** 2, 1, 1e-12, `VP unit variance at ${t}`);
    close(ns.logSnr(t), Math.log(ns.alpha(t) ** 2 / ns.sigma(t) ** 2), 1e-9, `logSnr ${t}`);
    close(ns.tOfLogSnr(ns.logSnr(t)), t, 1e-9, `tOfLogSnr ${t}`);
  }
  const ve = noiseScheduleOf(veSchedule(), { tMin: 1, tMax: 4, name: "ve-short" });
  assert.deepEqual([ve.name, ve.tMin, ve.tMax, ve.alpha(2)], ["ve-short", 1, 4, 1]);
  close(ve.sigma(4), 2, 1e-15, "VE sigma");
  close(ve.tOfLogSnr(ve.logSnr(2.5)), 2.5, 1e-12, "VE round trip");
  const edm = noiseScheduleOf(edmSchedule());
  close(edm.logSnr(1), 0, 1e-15, "logSnr at sigma 1");
  const id = noiseScheduleOf(iddpmSchedule());
  close(id.tMax, iddpmSchedule().u[0], 0, "iDDPM tMax = u_0");
  const bare: SigmaSchedule = { ...edmSchedule() };
  assert.throws(
    () =>
      noiseScheduleOf({
        name: "x",
        sigma: bare.sigma,
        sigmaDeriv: bare.sigmaDeriv,
        sigmaInv: bare.sigmaInv,
        s: bare.s,
        sDeriv: bare.sDeriv,
      }),
    RangeError,
  );
});

Deno.test("sigma / log-SNR / VP pair conversions invert each other", () => {
  for (const sigma of [0.002, 0.5, 1, 80]) {
    close(sigmaOfLogSnr(logSnrOfSigma(sigma)), sigma, 1e-12, `sigma ${sigma}`);
    const { alpha, sigma: sVp } = vpAlphaSigma(sigma);
    close(alpha * alpha + sVp * sVp, 1, 1e-12, "VP pair unit variance");
    close(edmSigmaOf(alpha, sVp), sigma, 1e-12, "edmSigmaOf");
    close(alpha, vpSchedule().s(vpSchedule().sigmaInv(sigma)), 1e-9, "pair = VP s(t)");
  }
  assert.throws(() => edmSigmaOf(0, 1), RangeError);
});
