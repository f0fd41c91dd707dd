import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { iddpmSchedule } from "../schedules/iddpm.ts";
import { fromAlphaSigma, type LogSnrSchedule } from "../schedules/log_snr.ts";
import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
import {
  cosineLogSnrSchedule,
  edmLogSnrSchedule,
  fmOtLogSnrSchedule,
  s2nSchedule,
  veLogSnrSchedule,
  vpLogSnrSchedule,
} from "../schedules/s2n_schedules.ts";
import { vpSchedule } from "../schedules/vp.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function close(actual: number, expected: number, rel: number, what: string): void {
  const tol = rel * Math.max(1, Math.abs(expected));
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: got ${actual}, expected ${expected} (tol ${tol})`,
  );
}

const ALL = (): LogSnrSchedule[] => [
  vpLogSnrSchedule(),
  veLogSnrSchedule(),
  cosineLogSnrSchedule(),
  fmOtLogSnrSchedule(),
  edmLogSnrSchedule(),
];

/** Points spread over [tMin, tMax]. */
function inside(sch: LogSnrSchedule, n = 7): number[] {
  return Array.from({ length: n }, (_, i) => sch.tMin + (i / (n - 1)) * (sch.tMax - sch.tMin));
}

Deno.test("Table 1 rows: alpha, sigma and lambda equal the printed formulas", () => {
  const bd = 19.9, bm = 0.1, smin = 0.01, smax = 50, s = 0.008;
  const vpE = (t: number) => Math.exp(0.5 * bd * t * t + bm * t);
  const cosT = (t: number) => Math.cos(((t + s) / (1 + s)) * Math.PI / 2);
  const cos0 = Math.cos((s / (1 + s)) * Math.PI / 2);
  const rows: [LogSnrSchedule, (t: number) => [number, number, number]][] = [
    [vpLogSnrSchedule(), (t) => [
      1 / Math.sqrt(vpE(t)),
      Math.sqrt(1 - 1 / vpE(t)),
      Math.log(1 / (vpE(t) - 1)),
    ]],
    [veLogSnrSchedule(), (t) => [
      1,
      smin * (smax / smin) ** t,
      (2 * t - 2) * Math.log(smin) - 2 * t * Math.log(smax),
    ]],
    [cosineLogSnrSchedule(), (t) => [
      cosT(t) / cos0,
      Math.sqrt(1 - cosT(t) ** 2 / cos0 ** 2),
      Math.log(cosT(t) ** 2 / (cos0 ** 2 - cosT(t) ** 2)),
    ]],
    [fmOtLogSnrSchedule(), (t) => [1 - t, t, 2 * Math.log((1 - t) / t)]],
    [edmLogSnrSchedule(), (t) => [1, t, -2 * Math.log(t)]],
  ];
  for (const [sch, row] of rows) {
    for (const t of inside(sch)) {
      const [a, sg, l] = row(t);
      close(sch.alpha(t), a, 1e-9, `${sch.name} alpha(${t})`);
      close(sch.sigma(t), sg, 1e-7, `${sch.name} sigma(${t})`);
      close(sch.logSnr(t), l, 1e-7, `${sch.name} lambda(${t})`);
    }
  }
});

Deno.test("lambda and its inverse round-trip for every Table 1 schedule", () => {
  for (const sch of ALL()) {
    for (const t of inside(sch, 11)) {
      close(sch.tOfLogSnr(sch.logSnr(t)), t, 1e-9, `${sch.name} t(lambda(${t}))`);
    }
    for (const lambda of [-6, -1, 0, 2.5, 7]) {
      close(sch.logSnr(sch.tOfLogSnr(lambda)), lambda, 1e-9, `${sch.name} lambda(t(${lambda}))`);
    }
  }
});

Deno.test("zero-noise ends: lambda = +Infinity at t = 0 and maps back to t = 0", () => {
  for (const sch of [vpLogSnrSchedule(), cosineLogSnrSchedule(), fmOtLogSnrSchedule()]) {
    assert.equal(sch.sigma(0), 0, `${sch.name} sigma(0)`);
    assert.equal(sch.logSnr(0), Infinity, `${sch.name} lambda(0)`);
    close(sch.tOfLogSnr(Infinity), 0, 1e-15, `${sch.name} t(+inf)`);
  }
});

Deno.test("closed-form derivatives match central differences", () => {
  for (const sch of ALL()) {
    for (const t of inside(sch)) {
      const h = 1e-6 * Math.max(t, 1e-2);
      const d = (fn: (t: number) => number) => (fn(t + h) - fn(t - h)) / (2 * h);
      if (t - h <= 0 || t + h >= (sch.name === "edm" ? Infinity : 1)) continue;
      close(sch.alphaDeriv(t), d(sch.alpha), 1e-5, `${sch.name} alpha'(${t})`);
      close(sch.sigmaDeriv(t), d(sch.sigma), 1e-5, `${sch.name} sigma'(${t})`);
      close(sch.logSnrDeriv(t), d(sch.logSnr), 1e-5, `${sch.name} lambda'(${t})`);
      close(
        sch.logSnrDeriv(t),
        2 * (sch.alphaDeriv(t) / sch.alpha(t) - sch.sigmaDeriv(t) / sch.sigma(t)),
        1e-9,
        `${sch.name} lambda' = 2 (alpha'/alpha - sigma'/sigma) at ${t}`,
      );
    }
  }
});

Deno.test("fromAlphaSigma() builds derivatives and the inverse numerically", () => {
  // alpha = cos(pi t / 2), sigma = sin(pi t / 2): lambda = 2 log cot(pi t / 2),
  // lambda' = -2 pi / sin(pi t), inverse t = (2 / pi) atan(exp(-lambda / 2)).
  const q = Math.PI / 2;
  const trig = fromAlphaSigma((t) => Math.cos(q * t), (t) => Math.sin(q * t), {
    tMin: 1e-3,
    tMax: 0.999,
    name: "trig",
  });
  assert.equal(trig.name, "trig");
  for (const t of [1e-3, 0.01, 0.2, 0.5, 0.8, 0.999]) {
    close(trig.alphaDeriv(t), -q * Math.sin(q * t), 1e-8, `alpha'(${t})`);
    close(trig.sigmaDeriv(t), q * Math.cos(q * t), 1e-8, `sigma'(${t})`);
    close(trig.logSnr(t), 2 * Math.log(1 / Math.tan(q * t)), 1e-12, `lambda(${t})`);
    close(trig.logSnrDeriv(t), -2 * Math.PI / Math.sin(Math.PI * t), 1e-7, `lambda'(${t})`);
  }
  for (const lambda of [trig.logSnr(0.999), -3, 0, 4, trig.logSnr(1e-3)]) {
    close(trig.tOfLogSnr(lambda), Math.atan(Math.exp(-lambda / 2)) / q, 1e-12, `t(${lambda})`);
  }
  assert.throws(() => trig.tOfLogSnr(50), RangeError);
  // The numerical VP equals the closed-form one.
  const vp = vpLogSnrSchedule();
  const numeric = fromAlphaSigma(vp.alpha, vp.sigma, { tMin: vp.tMin, tMax: vp.tMax });
  for (const t of [1e-3, 0.05, 0.5, 1]) {
    close(numeric.logSnrDeriv(t), vp.logSnrDeriv(t), 1e-6, `numeric VP lambda'(${t})`);
    close(numeric.tOfLogSnr(vp.logSnr(t)), t, 1e-10, `numeric VP inverse at ${t}`);
  }
});

Deno.test("fromAlphaSigma() rejects a bad range and an increasing lambda", () => {
  const id = (t: number) => t, one = () => 1;
  assert.throws(() => fromAlphaSigma(one, id, { tMin: 1, tMax: 1 }), RangeError);
  assert.throws(() => fromAlphaSigma(one, id, { tMin: 0.1, tMax: Infinity }), RangeError);
  assert.throws(
    () => fromAlphaSigma(one, (t) => 1 / t, { tMin: 0.1, tMax: 1 }),
    /lambda must decrease/,
  );
  assert.throws(() => vpLogSnrSchedule({ betaD: 0 }), RangeError);
  assert.throws(() => veLogSnrSchedule({ sigmaMin: 5, sigmaMax: 1 }), RangeError);
  assert.throws(() => s2nSchedule("nope" as "vp"), /unknown schedule/);
});

Deno.test("VP and iDDPM agree with EDM's VP and iDDPM rows (sigma/alpha, s)", () => {
  const vp = vpLogSnrSchedule(), edmVp = vpSchedule();
  for (const t of [1e-3, 0.1, 0.5, 1]) {
    close(vp.sigma(t) / vp.alpha(t), edmVp.sigma(t), 1e-9, `VP sigma/alpha at ${t}`);
    close(vp.alpha(t), edmVp.s(t), 1e-12, `VP alpha at ${t}`);
  }
  // EDM's iDDPM table u_j is the cosine schedule's sigma/alpha at t = 1 - j / M (j >= 1).
  const cos = cosineLogSnrSchedule(), table = iddpmSchedule();
  for (const j of [1, 8, 100, 500, 999]) {
    const t = 1 - j / table.M;
    close(cos.sigma(t) / cos.alpha(t), table.u[j], 1e-8, `iDDPM u_${j}`);
  }
  close(cos.sigma(cos.tMax) / cos.alpha(cos.tMax), table.u[table.j0], 1e-8, "iDDPM tMax");
});

Deno.test("s2nSchedule() builds each Table 1 schedule by name with its options", () => {
  assert.equal(s2nSchedule("ve", { sigmaMax: 80 }).sigma(1), 80);
  assert.equal(s2nSchedule("fm-ot").alpha(0.25), 0.75);
  close(
    s2nSchedule("vp", { betaMin: 0.2 }).logSnrDeriv(0.5),
    vpLogSnrSchedule({ betaMin: 0.2 }).logSnrDeriv(0.5),
    0,
    "vp option",
  );
  assert.equal(s2nSchedule("iddpm", { tMax: 0.9 }).tMax, 0.9);
  assert.equal(s2nSchedule("edm").tMax, 80);
});

// ---------- grids ----------

Deno.test("s2nTimeGrid() spaces times uniformly in t, in lambda, and in (sigma/alpha)^(1/rho)", () => {
  const vp = vpLogSnrSchedule();
  const n = 12;
  const tGrid = s2nTimeGrid(vp, { numSteps: n, spacing: "time" });
  const lGrid = s2nTimeGrid(vp, { numSteps: n, spacing: "logSnr" });
  const kGrid = s2nTimeGrid(vp, { numSteps: n, spacing: "karras", rho: 7 });
  for (const g of [tGrid, lGrid, kGrid]) {
    assert.equal(g.length, n + 1);
    assert.equal(g[0], vp.tMax);
    assert.equal(g[n], vp.tMin);
    for (let i = 1; i <= n; i++) assert.ok(g[i] < g[i - 1], "times decrease");
  }
  const l0 = vp.logSnr(vp.tMax), l1 = vp.logSnr(vp.tMin);
  const s0 = Math.exp(-l0 / 14), s1 = Math.exp(-l1 / 14);
  for (let i = 0; i <= n; i++) {
    close(tGrid[i], 1 + (i / n) * (vp.tMin - 1), 1e-12, `time grid ${i}`);
    close(vp.logSnr(lGrid[i]), l0 + (i / n) * (l1 - l0), 1e-9, `lambda grid ${i}`);
    const edmSigma = vp.sigma(kGrid[i]) / vp.alpha(kGrid[i]);
    close(edmSigma ** (1 / 7), s0 + (i / n) * (s1 - s0), 1e-9, `karras grid ${i}`);
  }
});

Deno.test("s2nTimeGrid() Karras grid on EDM's schedule equals karrasSigmas, with endTime 0", () => {
  const edm = edmLogSnrSchedule();
  const grid = s2nTimeGrid(edm, { numSteps: 18, endTime: 0 });
  assert.equal(grid.length, 19);
  assert.equal(grid[18], 0);
  // EDM eq. 5 written out.
  for (let i = 0; i < 18; i++) {
    const expected = (80 ** (1 / 7) + (i / 17) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7;
    close(grid[i], expected, 1e-12, `sigma_${i}`);
  }
});

Deno.test("s2nTimeGrid() rejects bad counts, ends and infinite lambda", () => {
  const vp = vpLogSnrSchedule();
  assert.throws(() => s2nTimeGrid(vp, { numSteps: 0 }), RangeError);
  assert.throws(() => s2nTimeGrid(vp, { numSteps: 2.5 }), RangeError);
  assert.throws(() => s2nTimeGrid(vp, { endTime: vp.tMin }), /endTime/);
  assert.throws(() => s2nTimeGrid(vp, { tMin: 0, spacing: "logSnr" }), /finite lambda/);
  assert.throws(() => s2nTimeGrid(vp, { spacing: "cubic" as "time" }), /unknown spacing/);
  // Uniform in t from 0 is fine: no lambda needed.
  assert.equal(s2nTimeGrid(vp, { tMin: 0, spacing: "time", numSteps: 4 })[4], 0);
});
