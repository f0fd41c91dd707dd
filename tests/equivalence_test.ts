import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise } from "../core/noise.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { sampleS2n } from "../samplers/s2n_backward.ts";
import { logSnrRange, mapPath, mapTimes, snrEquivalence } from "../schedules/equivalence.ts";
import { forwardTransition } from "../schedules/forward_sde.ts";
import { fromAlphaSigma, type LogSnrSchedule } from "../schedules/log_snr.ts";
import { s2nTimeGrid } from "../schedules/s2n_grids.ts";
import {
  cosineLogSnrSchedule,
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

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A VE schedule with the same lambda range as `sch`: sigma = exp(-lambda/2) at both ends. */
function matchedVe(sch: LogSnrSchedule): LogSnrSchedule {
  const { min, max } = logSnrRange(sch);
  return veLogSnrSchedule({ sigmaMin: Math.exp(-max / 2), sigmaMax: Math.exp(-min / 2) });
}

Deno.test("mapTimes() keeps lambda: lambda_to(t') = lambda_from(t)", () => {
  const vp = vpLogSnrSchedule();
  const pairs: [LogSnrSchedule, LogSnrSchedule][] = [
    [vp, matchedVe(vp)],
    [vp, cosineLogSnrSchedule()],
    [fmOtLogSnrSchedule(), edmLogSnrSchedule()],
  ];
  for (const [from, to] of pairs) {
    const times = [0.9, 0.5, 0.2, 0.05];
    const mapped = mapTimes(times, { from, to });
    times.forEach((t, i) => {
      close(to.logSnr(mapped[i]), from.logSnr(t), 1e-9, `${from.name} -> ${to.name} at ${t}`);
    });
  }
  // Zero noise maps to zero noise.
  assert.equal(mapTimes([0], { from: vp, to: fmOtLogSnrSchedule() })[0], 0);
});

Deno.test("VP and VE with matched lambda ranges produce the same z / alpha (Theorem 5)", async () => {
  const vp = vpLogSnrSchedule(), ve = matchedVe(vp);
  const rv = logSnrRange(vp), re = logSnrRange(ve);
  close(re.min, rv.min, 1e-12, "lambda_min");
  close(re.max, rv.max, 1e-12, "lambda_max");
  const denoiser = idealGaussianDenoiser({ mean: [1, -2], std: [0.5, 2] });
  const n = 16, seeds = [...Array(n).keys()];
  const settings = [
    { rho: 0, gamma: 0 },
    { rho: 0, gamma: 0.026 },
    { rho: 1, gamma: 1.25, delta: 0.95 },
    { rho: 0.5, gamma: -0.3, delta: 0 },
  ];
  for (const spacing of ["logSnr", "karras"] as const) {
    // Each grid is built on its own schedule; both depend on lambda only.
    const tVp = s2nTimeGrid(vp, { numSteps: 12, spacing });
    const tVe = s2nTimeGrid(ve, { numSteps: 12, spacing });
    tVp.forEach((t, i) => close(ve.logSnr(tVe[i]), vp.logSnr(t), 1e-9, `grid lambda ${i}`));
    const x0 = tf.tidy(() => perImageNoise(seeds).randn([n, 2]));
    // z_0 / alpha_0 = sigma~_0 n in both.
    const zVp = tf.tidy(() => tf.mul(x0, vp.sigma(tVp[0])));
    const zVe = tf.tidy(() => tf.mul(x0, ve.sigma(tVe[0])));
    for (const p of settings) {
      const a = await sampleS2n(denoiser, zVp, {
        schedule: vp,
        times: tVp,
        ...p,
        noise: perImageNoise(seeds),
      });
      const b = await sampleS2n(denoiser, zVe, {
        schedule: ve,
        times: tVe,
        ...p,
        noise: perImageNoise(seeds),
      });
      const aEnd = vp.alpha(tVp[12]), bEnd = ve.alpha(tVe[12]);
      const xa = Float64Array.from(a.x.dataSync(), (v) => v / aEnd);
      const xb = Float64Array.from(b.x.dataSync(), (v) => v / bEnd);
      tf.dispose([a.x, b.x]);
      const scale = Math.max(...xa.map(Math.abs));
      assert.ok(
        maxAbsDiff(xa, xb) < 1e-4 * scale,
        `${spacing} ${JSON.stringify(p)}: z/alpha differ by ${maxAbsDiff(xa, xb)}`,
      );
    }
    tf.dispose([x0, zVp, zVe]);
  }
});

Deno.test("mapPath() moves a forward path of VP to VE with the same z / alpha", () => {
  const vp = vpLogSnrSchedule(), ve = matchedVe(vp);
  const times = [0.05, 0.3, 0.7, 1];
  // An exact forward path of VP from x, through q(z_t | z_s).
  const x = tf.tensor2d([[0.5, -1], [2, 0.25]]);
  const samples: tf.Tensor[] = [];
  let prev = x, tPrev = 0;
  for (const [k, t] of times.entries()) {
    const { scale, variance } = forwardTransition(vp, { s: tPrev, t });
    const noise = tf.tensor2d([[Math.sin(k), Math.cos(k)], [Math.cos(2 * k), Math.sin(3 * k)]]);
    prev = tf.tidy(() => tf.add(tf.mul(prev, scale), tf.mul(noise, Math.sqrt(variance))));
    noise.dispose();
    samples.push(prev);
    tPrev = t;
  }
  const before = tf.memory().numTensors;
  const mapped = mapPath({ times, samples }, { from: vp, to: ve });
  assert.equal(tf.memory().numTensors, before + times.length, "one new tensor per sample");
  times.forEach((t, i) => {
    close(ve.logSnr(mapped.times[i]), vp.logSnr(t), 1e-9, `lambda at ${t}`);
    const a = samples[i].dataSync(), b = mapped.samples[i].dataSync();
    const ratio = ve.alpha(mapped.times[i]) / vp.alpha(t);
    a.forEach((v, j) => close(b[j] / ratio, v, 1e-6, `z/alpha at ${t}`));
  });
  assert.throws(() => mapPath({ times: [0.5], samples: [] }, { from: vp, to: ve }), RangeError);
  tf.dispose([x, ...samples, ...mapped.samples]);
});

Deno.test("snrEquivalence() checks Theorem 5: same lambda range and same alpha o lambda^-1", () => {
  const vp = vpLogSnrSchedule();
  // VP reparametrized in time, t = u^2: the same process in signal-to-noise space.
  const u0 = Math.sqrt(vp.tMin);
  const squared = fromAlphaSigma((u) => vp.alpha(u * u), (u) => vp.sigma(u * u), {
    tMin: u0,
    tMax: 1,
  });
  const same = snrEquivalence(vp, squared);
  assert.ok(same.sameRange && same.equivalent, `reparametrized VP: ${JSON.stringify(same)}`);
  assert.ok(same.alphaGap < 1e-9);
  // VE with VP's range: same z / alpha but a different alpha~ (1 instead of VP's).
  const ve = snrEquivalence(vp, matchedVe(vp));
  assert.ok(ve.sameRange && !ve.equivalent && ve.alphaGap > 0.5, JSON.stringify(ve));
  // Default VE has another range.
  assert.ok(!snrEquivalence(vp, veLogSnrSchedule()).sameRange);
  assert.throws(() => snrEquivalence(vp, vp, { numPoints: 1 }), RangeError);
});
