import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise, rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import {
  identityTransform,
  learnedTransform,
  type NdmTransform,
  scaleTransform,
  transformTimeDerivative,
} from "../models/ndm_transform.ts";
import { initMlpParams, mlpNetwork } from "../models/mlp.ts";
import { ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
import { ddpmVlbTerms } from "../training/ddpm_loss.ts";
import { ndmLoss, ndmPriorTerms, ndmTerms, ndmTime } from "../training/ndm_loss.ts";
import { drawContinuousTimes, ndmContinuousTerms } from "../training/ndm_continuous.ts";
import { ddpmBound } from "../eval/ddpm_bound.ts";
import { ndmBound } from "../eval/ndm_bound.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const PROCESS = ddpmProcess();
const X0 = tf.keep(
  tf.tidy(() =>
    tf.sub(
      tf.div(
        tf.mul(tf.floor(tf.mul(tf.randomUniform([6, 2, 2, 1], 0, 1, "float32", 3), 256)), 2),
        255,
      ),
      1,
    )
  ),
);
const NOISE = tf.keep(rngNoise(new Rng(11)).randn([6, 2, 2, 1]));
const STEPS = [1, 2, 3, 50, 700, 1000];
const DIMS = 4;

/** A fixed, imperfect predictor: eps(z, t) = 0.7 z + t / 2000. */
const EPS: EpsPredictor = (xt, t) =>
  tf.tidy(() =>
    tf.add(tf.mul(xt, 0.7), tf.reshape(tf.div(t, 2000), [-1, ...xt.shape.slice(1).map(() => 1)]))
  );

/** The identity, but not marked as such: exercises the general eq. 10 code. */
const UNMARKED_IDENTITY: NdmTransform = { kind: "learned", apply: (x) => tf.clone(x) };

/** An analytic non-linear F: x + t^2 sin(2x) (as a learned transform of a fixed network). */
const SINE: NdmTransform = learnedTransform((x, c) =>
  tf.tidy(() =>
    tf.mul(
      tf.sin(tf.mul(x, 2)),
      tf.reshape(tf.div(c, 1000), [-1, ...x.shape.slice(1).map(() => 1)]),
    )
  )
);

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

Deno.test("identity F: every NDM term equals DDPM's bound term (sigma^2 = betaTilde) exactly", () => {
  const ndm = ndmTerms(EPS, identityTransform(), X0, { process: PROCESS, t: STEPS, noise: NOISE });
  const ddpm = ddpmVlbTerms(EPS, X0, {
    process: PROCESS,
    variance: "betaTilde",
    t: STEPS,
    noise: NOISE,
  });
  assert.deepEqual(values(ndm.terms), values(ddpm.terms));
  assert.deepEqual(values(ndm.x0Hat), values(ddpm.x0Hat));
  tf.dispose([ndm.terms, ndm.x0Hat, ddpm.terms, ddpm.x0Hat]);
});

Deno.test("identity F: the general eq. 10 formula gives DDPM's terms to float32 rounding", () => {
  const ndm = ndmTerms(EPS, UNMARKED_IDENTITY, X0, { process: PROCESS, t: STEPS, noise: NOISE });
  const ddpm = ddpmVlbTerms(EPS, X0, {
    process: PROCESS,
    variance: "betaTilde",
    t: STEPS,
    noise: NOISE,
  });
  const a = values(ndm.terms), b = values(ddpm.terms);
  a.forEach((v, i) =>
    assert.ok(Math.abs(v - b[i]) <= 2e-4 * Math.abs(b[i]) + 1e-6, `t=${STEPS[i]}: ${v} vs ${b[i]}`)
  );
  tf.dispose([ndm.terms, ndm.x0Hat, ddpm.terms, ddpm.x0Hat]);
});

Deno.test("identity F: the NDM NELBO equals ddpmBound (betaTilde) exactly, every part", async () => {
  const process = respaceDdpm(PROCESS, spaceTimesteps(1000, { numSteps: 12 }));
  const ndm = await ndmBound(EPS, identityTransform(), X0, {
    process,
    noise: perImageNoise([0, 1, 2, 3, 4, 5]),
  });
  const ddpm = await ddpmBound(EPS, X0, {
    process,
    noise: perImageNoise([0, 1, 2, 3, 4, 5]),
    variance: "betaTilde",
  });
  assert.deepEqual(ndm, ddpm);
});

Deno.test("linear F = exp(k t) x: the terms and prior match a hand-computed closed form", () => {
  const k = -0.8, f = scaleTransform({ rate: k }), T = 10;
  const process = ddpmProcess({ T });
  const steps = [1, 2, 4, 6, 8, 10];
  const ndm = ndmTerms(EPS, f, X0, { process, t: steps, noise: NOISE, decoder: "gaussian" });
  const prior = ndmPriorTerms(f, X0, { process });
  const x = values(X0), e = values(NOISE), got = values(ndm.terms), gotPrior = values(prior);
  const ab = process.alphaBar, abT = ab[T], std1 = Math.sqrt(process.posteriorVariance[2]);
  for (let i = 0; i < 6; i++) {
    const kk = steps[i], uT = kk / T, uS = (kk - 1) / T;
    const aT = Math.sqrt(ab[kk]), sT = Math.sqrt(1 - ab[kk]), aS = Math.sqrt(ab[kk - 1]);
    const tilde2 = process.posteriorVariance[kk];
    const c = Math.sqrt(1 - ab[kk - 1] - tilde2) / sT;
    let nats = 0, priorNats = 0;
    for (let j = 0; j < DIMS; j++) {
      const xi = x[i * DIMS + j];
      const z = aT * Math.exp(k * uT) * xi + sT * e[i * DIMS + j];
      const epsHat = 0.7 * z + kk / 2000;
      const xHat = (z - sT * epsHat) / aT;
      if (kk === 1) {
        // Gaussian decoder around F(x_hat, 0) = x_hat.
        nats += 0.5 * ((xi - xHat) / std1) ** 2 + Math.log(std1) + 0.5 * Math.log(2 * Math.PI);
      } else {
        const delta = (xi - xHat) * (aS * Math.exp(k * uS) - c * aT * Math.exp(k * uT));
        nats += delta * delta / (2 * tilde2);
      }
      priorNats += 0.5 * (abT * Math.exp(2 * k) * xi * xi + (1 - abT) - 1 - Math.log(1 - abT));
    }
    const want = nats / (DIMS * Math.LN2), wantPrior = priorNats / (DIMS * Math.LN2);
    assert.ok(
      Math.abs(got[i] - want) <= 1e-4 * Math.abs(want) + 1e-6,
      `t=${kk}: ${got[i]} vs ${want}`,
    );
    assert.ok(
      Math.abs(gotPrior[i] - wantPrior) <= 1e-5 * wantPrior,
      `prior ${gotPrior[i]} vs ${wantPrior}`,
    );
  }
  tf.dispose([ndm.terms, ndm.x0Hat, prior]);
});

Deno.test("eq. 10 equals the KL of the two Gaussians of eq. 8 (x and x_hat), for a non-linear F", () => {
  const T = 20, process = ddpmProcess({ T }), eta = 0.6;
  const kk = 7, steps = new Array(6).fill(kk);
  const ndm = ndmTerms(EPS, SINE, X0, { process, t: steps, noise: NOISE, eta });
  const got = values(ndm.terms);
  // Direct: posterior means of eq. 8 at x and at x_hat, equal variances s^2, general Gaussian KL.
  const x = values(X0), e = values(NOISE), ab = process.alphaBar;
  const F = (v: number, u: number) => v + u * u * Math.sin(2 * v);
  const aT = Math.sqrt(ab[kk]), sT = Math.sqrt(1 - ab[kk]), aS = Math.sqrt(ab[kk - 1]);
  const s2 = eta * eta * process.posteriorVariance[kk];
  const c = Math.sqrt(1 - ab[kk - 1] - s2) / sT, uT = kk / T, uS = (kk - 1) / T;
  for (let i = 0; i < 6; i++) {
    let kl = 0;
    for (let j = 0; j < DIMS; j++) {
      const xi = x[i * DIMS + j];
      const z = aT * F(xi, uT) + sT * e[i * DIMS + j];
      const xHat = (z - sT * (0.7 * z + kk / 2000)) / aT;
      const muQ = aS * F(xi, uS) + c * (z - aT * F(xi, uT));
      const muP = aS * F(xHat, uS) + c * (z - aT * F(xHat, uT));
      // KL(N(muQ, s2) || N(muP, s2)) = 1/2 (s2/s2 + (muP - muQ)^2 / s2 - 1 + log(s2/s2)).
      kl += 0.5 * (1 + (muP - muQ) ** 2 / s2 - 1 + 0);
    }
    const want = kl / (DIMS * Math.LN2);
    assert.ok(Math.abs(got[i] - want) <= 2e-4 * want + 1e-6, `${got[i]} vs ${want}`);
  }
  tf.dispose([ndm.terms, ndm.x0Hat]);
});

Deno.test("eta = 0 is refused by the objective with a message naming the fix", () => {
  assert.throws(
    () => ndmTerms(EPS, SINE, X0, { process: PROCESS, t: STEPS, noise: NOISE, eta: 0 }),
    /eta must be in \(0, 1\].*sampling only/,
  );
});

Deno.test("dF/dt: the central difference matches the closed form, ends included", () => {
  const x = tf.tensor2d([[0.3, -1.1], [2, 0.5], [-0.7, 0.1], [1, 1], [0.2, -2]]);
  const t = [0, 0.002, 0.5, 0.999, 1];
  const f = scaleTransform({ rate: 1.7 });
  const fd = transformTimeDerivative(f, x, t, { forceDifference: true });
  const exact = transformTimeDerivative(f, x, t);
  const a = values(fd), b = values(exact);
  a.forEach((v, i) =>
    assert.ok(Math.abs(v - b[i]) <= 2e-3 * Math.abs(b[i]) + 1e-4, `${v} vs ${b[i]}`)
  );
  // The learned form x + t NN: NN = (c / 1000) sin 2x gives dF/dt = 2 t sin 2x.
  const got = values(transformTimeDerivative(SINE, x, t)), xv = values(x);
  got.forEach((v, i) => {
    const want = 2 * t[Math.floor(i / 2)] * Math.sin(2 * xv[i]);
    assert.ok(Math.abs(v - want) <= 2e-3, `${v} vs ${want}`);
  });
  tf.dispose([x, fd, exact]);
});

Deno.test("gradients reach phi through the prior, a KL term and the reconstruction", () => {
  const cfg = { dim: 4, hidden: 16, layers: 2 };
  const phi = initMlpParams(cfg, new Rng(3)), theta = initMlpParams(cfg, new Rng(4));
  const f = learnedTransform(mlpNetwork(cfg, phi));
  const eps: EpsPredictor = (z, t) => mlpNetwork(cfg, theta)(z, tf.sub(t, 1) as tf.Tensor1D);
  const process = ddpmProcess({ T: 10 });
  const x = tf.reshape(X0, [6, 4]), noise = tf.reshape(NOISE, [6, 4]);
  const phiVars = Object.values(phi), thetaVars = Object.values(theta);
  const norm = (g: Record<string, tf.Tensor>, vars: tf.Variable[]) =>
    vars.reduce(
      (s, v) => s + (g[v.name] ? tf.tidy(() => tf.sum(tf.abs(g[v.name])).dataSync()[0]) : 0),
      0,
    );
  const parts: [string, () => tf.Scalar][] = [
    ["prior", () => tf.mean(ndmPriorTerms(f, x, { process })) as tf.Scalar],
    [
      "KL",
      () =>
        tf.mean(
          ndmTerms(eps, f, x, { process, t: 5, noise, decoder: "gaussian" }).terms,
        ) as tf.Scalar,
    ],
    [
      "reconstruction",
      () =>
        tf.mean(
          ndmTerms(eps, f, x, { process, t: 1, noise, decoder: "gaussian" }).terms,
        ) as tf.Scalar,
    ],
  ];
  for (const [name, loss] of parts) {
    const { value, grads } = tf.variableGrads(loss, [...phiVars, ...thetaVars]);
    assert.ok(norm(grads, phiVars) > 0, `${name}: no gradient reaches phi`);
    if (name !== "prior") {
      assert.ok(norm(grads, thetaVars) > 0, `${name}: no gradient reaches theta`);
    }
    tf.dispose([value, ...Object.values(grads)]);
  }
  tf.dispose([x, noise, ...phiVars, ...thetaVars]);
});

Deno.test("the continuous objective (eq. 11) is the limit of eq. 10 summed over many steps", () => {
  // Fixed z (noise 0) at every t: sum_k KL_k over t in [t0, 1] -> int_{t0}^1 integrand dt, for a
  // time-free predictor and F = exp(-t) x (where the sign of eq. 11's second term matters: the
  // extracted "+" gives 0.300 here against 0.350).
  const eps: EpsPredictor = (z) => tf.tidy(() => tf.mul(tf.tanh(z), 0.3));
  const f = scaleTransform({ rate: -1 }), t0 = 0.01;
  const x = tf.tensor2d([[0.4, -0.9, 0.1]]);
  const discrete = (T: number) => {
    const process = ddpmProcess({ T, betaStart: 0.1 / T, betaEnd: 20 / T });
    const k0 = Math.round(T * t0);
    const steps = Array.from({ length: T - k0 }, (_, i) => k0 + 1 + i);
    const xs = tf.tile(x, [steps.length, 1]);
    const { terms, x0Hat } = ndmTerms(eps, f, xs, {
      process,
      t: steps,
      noise: tf.zerosLike(xs),
      decoder: "gaussian",
    });
    const sum = values(terms).reduce((a, b) => a + b, 0);
    tf.dispose([xs, terms, x0Hat]);
    return sum;
  };
  const schedule = vpLogSnrSchedule({ tMin: t0 });
  const M = 2001, ts = Array.from({ length: M }, (_, i) => t0 + ((1 - t0) * i) / (M - 1));
  const xs = tf.tile(x, [M, 1]);
  const parts = ndmContinuousTerms(eps, f, xs, {
    schedule,
    t: ts,
    noise: tf.zerosLike(xs),
    noiseRec: tf.zerosLike(xs),
    decoder: "gaussian",
  });
  const g = values(parts.diffusion);
  let integral = 0;
  for (let i = 1; i < M; i++) integral += 0.5 * (g[i] + g[i - 1]) * (ts[i] - ts[i - 1]);
  const d1 = discrete(500), d2 = discrete(4000);
  const e1 = Math.abs(d1 - integral), e2 = Math.abs(d2 - integral);
  assert.ok(e2 < 0.02 * integral, `T=4000: ${d2} vs continuous ${integral}`);
  assert.ok(e2 < e1 / 4, `error should shrink like 1/T: ${e1} (T=500) vs ${e2} (T=4000)`);
  tf.dispose([x, xs, parts.diffusion, parts.prior, parts.reconstruction]);
});

Deno.test("continuous times: importance draws follow 1/g^2 and the weights make the integral unbiased", () => {
  const schedule = vpLogSnrSchedule({ tMin: 1e-3 });
  const { t, weights } = drawContinuousTimes(new Rng(5), { count: 20000, schedule });
  // The share of draws below t = 0.1 is the CDF of 1/beta(t), beta = 0.1 + 19.9 t: log ratios.
  const beta = (u: number) => 0.1 + 19.9 * u;
  const want = Math.log(beta(0.1) / beta(1e-3)) / Math.log(beta(1) / beta(1e-3));
  const share = t.filter((v) => v < 0.1).length / t.length;
  assert.ok(Math.abs(share - want) < 0.015, `share below 0.1: ${share} vs ${want}`);
  // E_p[w] is the length of [t0, 1].
  const mean = weights.reduce((a, b) => a + b, 0) / t.length;
  assert.ok(Math.abs(mean - 0.999) < 0.05, `mean weight ${mean}`);
  assert.ok(t.every((v) => v >= 1e-3 && v <= 1));
});

Deno.test("NDM losses free every intermediate tensor", () => {
  const process = ddpmProcess({ T: 10 });
  const schedule = vpLogSnrSchedule();
  const before = tf.memory().numTensors;
  const out = ndmLoss(EPS, SINE, X0, {
    process,
    draws: { t: STEPS.map((s) => 1 + (s % 10)), noise: NOISE },
  });
  tf.dispose([out.loss, out.terms]);
  const c = ndmContinuousTerms(EPS, SINE, X0, {
    schedule,
    t: [0.1, 0.2, 0.3, 0.5, 0.9, 1],
    noise: NOISE,
    noiseRec: NOISE,
  });
  tf.dispose([c.diffusion, c.prior, c.reconstruction]);
  assert.equal(tf.memory().numTensors, before);
  assert.equal(ndmTime(process, 10), 1);
});
