import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { rngNoise } from "../core/noise.ts";
import {
  ddpmDenoiser,
  ddpmEpsNetwork,
  ddpmMuNetwork,
  epsFromDenoiser,
  epsFromMu,
  epsFromX0,
  type EpsPredictor,
  muFromEps,
  posteriorMean,
  qSample,
  x0FromEps,
} from "../models/ddpm_param.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { ddpmProcess, respaceDdpm, sigmaOfStep } from "../schedules/ddpm.ts";

await selectBackend({ backend: "wasm", log: () => {} });

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

const process = ddpmProcess();
const rng = new Rng(3);
const X0 = tf.keep(tf.clipByValue(rngNoise(rng).randn([4, 3, 3, 1]), -1, 1));
const NOISE = tf.keep(rngNoise(rng).randn([4, 3, 3, 1]));
const STEPS = [1, 10, 500, 1000];

Deno.test("qSample, x0FromEps and epsFromX0 invert each other (eq. 4, 15)", () => {
  tf.tidy(() => {
    const xt = qSample(process, { x0: X0, noise: NOISE, t: STEPS });
    const ab = STEPS.map((t) => process.alphaBar[t]);
    const expected = tf.add(
      tf.mul(X0, tf.tensor(ab.map(Math.sqrt), [4, 1, 1, 1])),
      tf.mul(NOISE, tf.tensor(ab.map((a) => Math.sqrt(1 - a)), [4, 1, 1, 1])),
    );
    assert.ok(maxAbsDiff(xt, expected) < 1e-6);
    // x0 from eps loses digits at t = T (divided by sqrt(alphaBar_T) ~ 0.0064).
    assert.ok(maxAbsDiff(x0FromEps(process, { xt, eps: NOISE, t: STEPS }), X0) < 1e-4);
    assert.ok(maxAbsDiff(epsFromX0(process, { xt, x0: X0, t: STEPS }), NOISE) < 1e-3);
    assert.ok(maxAbsDiff(qSample(process, { x0: X0, noise: NOISE, t: 0 }), X0) === 0);
  });
});

Deno.test("muFromEps is eq. 11: the posterior mean at x0-hat, and epsFromMu inverts it", () => {
  tf.tidy(() => {
    for (const t of [2, 10, 500, 1000]) {
      const xt = qSample(process, { x0: X0, noise: NOISE, t });
      const mu = muFromEps(process, { xt, eps: NOISE, t });
      const viaPosterior = posteriorMean(process, { xt, x0: X0, t });
      assert.ok(maxAbsDiff(mu, viaPosterior) < 1e-5, `t=${t}`);
      // beta_t / sqrt(1 - alphaBar_t) is small at small t, so eps is recovered to ~1e-3 there.
      assert.ok(maxAbsDiff(epsFromMu(process, { xt, mu, t }), NOISE) < 2e-3, `t=${t}`);
    }
  });
});

Deno.test("posteriorMean() takes one step per image", () => {
  tf.tidy(() => {
    const xt = qSample(process, { x0: X0, noise: NOISE, t: 7 });
    const perImage = posteriorMean(process, { xt, x0: X0, t: [7, 7, 7, 7] });
    const shared = posteriorMean(process, { xt, x0: X0, t: 7 });
    assert.ok(maxAbsDiff(perImage, shared) < 1e-7);
    assert.throws(() => posteriorMean(process, { xt, x0: X0, t: [7, 7] }), RangeError);
    assert.throws(() => posteriorMean(process, { xt, x0: X0, t: 1001 }), RangeError);
  });
});

Deno.test("ddpmDenoiser() is D(x; sigma) = x - sigma eps(x / sqrt(1 + sigma^2), t(sigma))", () => {
  // A known eps network: eps(x_t, t) = 0.1 x_t + t / 1000.
  const eps: EpsPredictor = (xt, t) =>
    tf.tidy(() => tf.add(tf.mul(xt, 0.1), tf.reshape(tf.div(t, 1000), [-1, 1, 1, 1])));
  const d = ddpmDenoiser(eps, process);
  assert.equal(d.kind, "ddpm");
  assert.equal(d.sigmaMin, sigmaOfStep(process, 1));
  assert.equal(d.sigmaMax, sigmaOfStep(process, 1000));
  tf.tidy(() => {
    const sigmas = [3, 100, 700, 1000].map((t) => sigmaOfStep(process, t));
    const out = d(X0, tf.tensor1d(sigmas));
    const expected = tf.concat(sigmas.map((s, i) => {
      const x = tf.slice(X0, i, 1);
      const t = [3, 100, 700, 1000][i];
      return tf.sub(x, tf.mul(tf.add(tf.mul(tf.div(x, Math.sqrt(1 + s * s)), 0.1), t / 1000), s));
    }));
    assert.ok(maxAbsDiff(out, expected) < 1e-4);
    // Nearest vs interpolated time between grid levels, seen through cNoise.
    const mid = Math.sqrt(sigmaOfStep(process, 300) * sigmaOfStep(process, 301));
    assert.equal(d.coefficients(mid * 1.001).cNoise, 301);
    const interp = ddpmDenoiser(eps, process, { mode: "interpolate" });
    assert.ok(Math.abs(interp.coefficients(mid).cNoise - 300.5) < 1e-9);
    // The tensor path agrees: D differs between the two modes by sigma * (t - t') / 1000.
    const x = tf.zeros([1, 3, 3, 1]);
    const dn = d(x, tf.tensor1d([mid * 1.001])).dataSync()[0];
    const di = interp(x, tf.tensor1d([mid])).dataSync()[0];
    assert.ok(Math.abs(dn - -mid * 1.001 * 0.301) < 1e-4, `nearest ${dn}`);
    assert.ok(Math.abs(di - -mid * 0.3005) < 1e-4, `interpolated ${di}`);
    assert.equal(d.roundSigma(mid * 1.001), sigmaOfStep(process, 301));
    // Beyond the grid's ends the time clamps to 1 and 1000 on the tensor path as on the number
    // path (tfjs-wasm's ClipByValue misreads int32 tensors, so the clamp must not be int32).
    const ends = [d.sigmaMax * 2, d.sigmaMin / 2];
    const dEnds = d(tf.zeros([2, 1, 1, 1]), tf.tensor1d(ends)).dataSync();
    assert.deepEqual(ends.map((s) => d.coefficients(s).cNoise), [1000, 1]);
    assert.ok(Math.abs(dEnds[0] - -ends[0]) < 1e-3 * ends[0], `above sigmaMax ${dEnds[0]}`);
    assert.ok(Math.abs(dEnds[1] - -ends[1] / 1000) < 1e-9, `below sigmaMin ${dEnds[1]}`);
  });
});

Deno.test("epsFromDenoiser() of the ideal Gaussian denoiser is E[eps | x_t] in closed form", () => {
  const mu = 0.3, s = 0.5;
  const eps = epsFromDenoiser(idealGaussianDenoiser({ mean: mu, std: s }), process);
  tf.tidy(() => {
    for (const t of [1, 20, 400, 1000]) {
      const ab = process.alphaBar[t];
      const xt = qSample(process, { x0: X0, noise: NOISE, t });
      // E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab).
      const expected = tf.div(
        tf.mul(tf.sub(xt, Math.sqrt(ab) * mu), Math.sqrt(1 - ab)),
        ab * s * s + 1 - ab,
      );
      const got = eps(xt, tf.fill([4], t) as tf.Tensor1D);
      assert.ok(maxAbsDiff(got, expected) < 1e-4, `t=${t}: ${maxAbsDiff(got, expected)}`);
    }
  });
});

Deno.test("epsFromDenoiser(ddpmDenoiser(eps)) hands back eps itself", () => {
  const eps = ddpmEpsNetwork((x) => tf.zerosLike(x));
  assert.equal(epsFromDenoiser(ddpmDenoiser(eps, process), process), eps);
  // A respacing shares the time axis.
  assert.equal(epsFromDenoiser(ddpmDenoiser(eps, process), respaceDdpm(process, [1, 9])), eps);
  // Another process does not: the general conversion is used.
  assert.notEqual(epsFromDenoiser(ddpmDenoiser(eps, process), ddpmProcess({ T: 10 })), eps);
});

Deno.test("ddpmEpsNetwork() feeds c_noise = t - 1 and ddpmMuNetwork() inverts eq. 11", () => {
  const seen: number[] = [];
  const eps = ddpmEpsNetwork((x, cNoise) => {
    seen.push(...cNoise.dataSync());
    return tf.zerosLike(x);
  });
  tf.tidy(() => eps(X0, tf.tensor1d([1, 2, 500, 1000])));
  assert.deepEqual(seen, [0, 1, 499, 999]);
  // A network that outputs the true posterior mean gives back the true noise.
  tf.tidy(() => {
    for (const t of [50, 500, 1000]) {
      const xt = qSample(process, { x0: X0, noise: NOISE, t });
      const mu = posteriorMean(process, { xt, x0: X0, t });
      const viaMu = ddpmMuNetwork(() => mu, process);
      const got = viaMu(xt, tf.fill([4], t) as tf.Tensor1D);
      assert.ok(maxAbsDiff(got, NOISE) < 1e-3, `t=${t}: ${maxAbsDiff(got, NOISE)}`);
    }
  });
});

Deno.test("the conversions and ddpmDenoiser leak no tensors", () => {
  const d = ddpmDenoiser(ddpmEpsNetwork((x) => tf.zerosLike(x)), process);
  const before = tf.memory().numTensors;
  const xt = qSample(process, { x0: X0, noise: NOISE, t: 5 });
  const sigma = tf.fill([4], 2) as tf.Tensor1D;
  const outs = [
    x0FromEps(process, { xt, eps: NOISE, t: 5 }),
    muFromEps(process, { xt, eps: NOISE, t: [1, 2, 3, 4] }),
    d(xt, sigma),
  ];
  [...outs, xt, sigma].forEach((o) => o.dispose());
  assert.equal(tf.memory().numTensors, before);
});
