import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import { scaleTransform } from "../models/ndm_transform.ts";
import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
import { ndmOdeLikelihood } from "../eval/ndm_likelihood.ts";
import { sampleNdmOde, sampleNdmSde } from "../samplers/ndm_ode.ts";
import { perImageNoise } from "../core/noise.ts";

await selectBackend({ backend: "wasm", log: () => {} });

// Gaussian data x ~ N(mu, s^2 I) and F(x, t) = exp(k t) x: z_t ~ N(m_t, v_t I) with
// m_t = alpha e^{kt} mu, v_t = alpha^2 e^{2kt} s^2 + sigma^2; the exact x-prediction is
// E[x | z] = mu + s^2 alpha e^{kt} (z - m_t) / v_t. The model's x_hat is (z - sigma eps) / alpha
// (x-prediction through the eps parameterization), so the exact "eps" is (z - alpha E[x | z]) / sigma
// (for k != 0 this is not E[noise | z]: the network predicts x, and F(x_hat, t) the transformed point).
const MU = [0.5, -0.3], S = 0.4;
const schedule = vpLogSnrSchedule({ tMin: 1e-3 });

function moments(k: number, t: number) {
  const a = schedule.alpha(t), sg = schedule.sigma(t), c = a * Math.exp(k * t);
  return { a, sg, c, m: MU.map((u) => c * u), v: c * c * S * S + sg * sg };
}

function exactEps(k: number): EpsPredictor {
  return (z, tNet) => {
    const t = tNet.dataSync()[0] / 1000;
    const { a, sg, c, m, v } = moments(k, t);
    return tf.tidy(() => {
      const mean = tf.tensor2d([m], [1, 2]);
      const xHat = tf.add(tf.tensor2d([MU], [1, 2]), tf.mul(tf.sub(z, mean), (S * S * c) / v));
      return tf.div(tf.sub(z, tf.mul(xHat, a)), sg);
    });
  };
}

Deno.test("ODE NLL of Gaussian data under a linear F equals the closed-form marginal density", async () => {
  for (const k of [0, -0.7]) {
    const z0 = tf.tensor2d([[0.1, 0.2], [0.9, -0.5], [-0.4, 0.3]]);
    const result = await ndmOdeLikelihood(
      { eps: exactEps(k), transform: scaleTransform({ rate: k }), schedule },
      z0,
      { rng: new Rng(0), probe: "exact", dequantize: false, rtol: 1e-6, atol: 1e-6 },
    );
    // The flow keeps each coordinate's standard score: z_1 = m_1 + sqrt(v_1 / v_0) (z_0 - m_0).
    // The likelihood uses N(0, I) at t = 1, not the exact N(m_1, v_1): add that known gap.
    const t0 = moments(k, schedule.tMin), t1 = moments(k, 1), z = z0.arraySync() as number[][];
    const nlogN = (x: number, m: number, v: number) =>
      0.5 * Math.log(2 * Math.PI * v) + (x - m) ** 2 / (2 * v);
    z.forEach((row, i) => {
      let want = 0;
      row.forEach((zi, d) => {
        const z1 = t1.m[d] + Math.sqrt(t1.v / t0.v) * (zi - t0.m[d]);
        want += nlogN(zi, t0.m[d], t0.v) + nlogN(z1, 0, 1) - nlogN(z1, t1.m[d], t1.v);
      });
      assert.ok(
        Math.abs(result.nll[i] - want) < 2e-4,
        `k=${k}, image ${i}: ${result.nll[i]} vs ${want}`,
      );
    });
    z0.dispose();
  }
});

Deno.test("Hutchinson probes estimate the same NLL and free their tensors", async () => {
  const k = -0.7;
  const z0 = tf.tensor2d([[0.1, 0.2], [0.9, -0.5]]);
  const model = { eps: exactEps(k), transform: scaleTransform({ rate: k }), schedule };
  const before = tf.memory().numTensors;
  const probed = await ndmOdeLikelihood(model, z0, {
    rng: new Rng(1),
    numProbes: 8,
    dequantize: false,
  });
  assert.equal(tf.memory().numTensors, before);
  const exact = await ndmOdeLikelihood(model, z0, {
    rng: new Rng(1),
    probe: "exact",
    dequantize: false,
  });
  for (let i = 0; i < 2; i++) {
    assert.ok(Math.abs(probed.nll[i] - exact.nll[i]) < 0.5, `${probed.nll[i]} vs ${exact.nll[i]}`);
  }
  z0.dispose();
});

Deno.test("the ODE sampler carries z_1 to the exact quantile map of the t0 marginal", async () => {
  const k = -0.7;
  const z1 = tf.tensor2d([[0.3, -1.2], [1.5, 0.4]]);
  const { x } = await sampleNdmOde(
    { eps: exactEps(k), transform: scaleTransform({ rate: k }), schedule },
    z1,
    { rtol: 1e-6, atol: 1e-6 },
  );
  const t0 = moments(k, schedule.tMin), t1 = moments(k, 1);
  const got = x.arraySync() as number[][], start = z1.arraySync() as number[][];
  got.forEach((row, i) =>
    row.forEach((v, d) => {
      const want = t0.m[d] + Math.sqrt(t0.v / t1.v) * (start[i][d] - t1.m[d]);
      assert.ok(Math.abs(v - want) < 1e-3, `${v} vs ${want}`);
    })
  );
  tf.dispose([x, z1]);
});

Deno.test("the reverse SDE (Euler-Maruyama) lands on the t0 marginal of Gaussian data", async () => {
  const k = -0.7, n = 2000;
  const noise = perImageNoise(Array.from({ length: n }, (_, i) => i));
  const z1 = noise.randn([n, 2]);
  const { x } = await sampleNdmSde(
    { eps: exactEps(k), transform: scaleTransform({ rate: k }), schedule },
    z1,
    { steps: 400, noise },
  );
  const { mean, variance } = tf.moments(x, 0);
  const m = mean.dataSync(), v = variance.dataSync(), t0 = moments(k, schedule.tMin);
  for (let d = 0; d < 2; d++) {
    assert.ok(Math.abs(m[d] - t0.m[d]) < 0.03, `mean ${m[d]} vs ${t0.m[d]}`);
    assert.ok(Math.abs(v[d] - t0.v) < 0.1 * t0.v, `variance ${v[d]} vs ${t0.v}`);
  }
  tf.dispose([x, z1, mean, variance]);
});
