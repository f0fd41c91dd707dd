import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import {
  estimateMmse,
  gaussianMmse,
  gaussianMutualInformation,
  informationCurve,
  informationPlotSvg,
  mutualInformationFromMmse,
  pointSetMutualInformation,
} from "../eval/mmse.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const LAMBDAS = Float64Array.from({ length: 41 }, (_, i) => -10 + i * 0.5);

Deno.test("mutualInformationFromMmse() integrates the exact Gaussian mmse to 0.5 D log(1 + e^lambda s^2)", () => {
  const opts = { dimension: 3, variance: 2.5 };
  const mmse = LAMBDAS.map((l) => gaussianMmse(l, opts));
  const info = mutualInformationFromMmse(LAMBDAS, mmse);
  LAMBDAS.forEach((l, k) => {
    const exact = gaussianMutualInformation(l, opts);
    // Only the tail start below lambda_0 = -10 is approximate (relative e^-10 s^2).
    assert.ok(Math.abs(info[k] - exact) < 1e-4 * exact, `I(${l}) = ${info[k]} vs ${exact}`);
  });
  // Anisotropic Gaussian (variances 0.1 and 10): not exact for the interpolation, still < 0.5%.
  const a = { dimension: 1, variance: 0.1 }, b = { dimension: 1, variance: 10 };
  const mixed = mutualInformationFromMmse(
    LAMBDAS,
    LAMBDAS.map((l) => gaussianMmse(l, a) + gaussianMmse(l, b)),
  );
  LAMBDAS.forEach((l, k) => {
    const exact = gaussianMutualInformation(l, a) + gaussianMutualInformation(l, b);
    assert.ok(Math.abs(mixed[k] - exact) < 5e-3 * exact, `I(${l}) = ${mixed[k]} vs ${exact}`);
  });
  // Closed forms themselves.
  assert.equal(gaussianMmse(0, { dimension: 2, variance: 1 }), 1);
  assert.ok(Math.abs(gaussianMutualInformation(0, { dimension: 2 }) - Math.log(2)) < 1e-15);
  assert.throws(() => mutualInformationFromMmse([0, 1], [1]), RangeError);
  assert.throws(() => mutualInformationFromMmse([1, 0], [1, 1]), /increasing/);
});

Deno.test("informationCurve() of Gaussian data with the exact denoiser matches the closed forms", async () => {
  const s = 1.5, dim = 4, m = 2048;
  const data = tf.tidy(() => tf.mul(rngNoise(new Rng(1)).randn([m, dim]), s));
  const before = tf.memory().numTensors;
  const curve = await informationCurve(idealGaussianDenoiser({ std: s }), data, {
    logSnrs: LAMBDAS,
    noise: rngNoise(new Rng(2)),
    batchSize: 1000,
  });
  assert.equal(tf.memory().numTensors, before, "no tensors leak");
  assert.equal(curve.dimension, dim);
  const opts = { dimension: dim, variance: s * s };
  // Per-example squared error ~ mmse chi^2_D / D: relative se sqrt(2 / (D m)) ~ 1.6%.
  curve.mmse.forEach((v, k) => {
    const exact = gaussianMmse(LAMBDAS[k], opts);
    assert.ok(Math.abs(v / exact - 1) < 0.08, `mmse(${LAMBDAS[k]}) = ${v} vs ${exact}`);
  });
  curve.mutualInformation.forEach((v, k) => {
    const exact = gaussianMutualInformation(LAMBDAS[k], opts);
    assert.ok(Math.abs(v - exact) < 0.03 * exact + 1e-4, `I(${LAMBDAS[k]}) = ${v} vs ${exact}`);
  });
  data.dispose();
});

Deno.test("the integrated mmse of a point set matches its exact-posterior mutual information", async () => {
  const rng = new Rng(4);
  const pts = Array.from({ length: 6 }, () => [3 * rng.normal(), 3 * rng.normal()]);
  const points = tf.tensor2d(pts);
  // Each point repeated: the data set is uniform over the points.
  const data = tf.tidy(() => tf.tile(points, [200, 1]));
  const curve = await informationCurve(idealPointSetDenoiser(points), data, {
    logSnrs: LAMBDAS,
    noise: rngNoise(new Rng(5)),
  });
  const direct = await pointSetMutualInformation(points, {
    logSnrs: LAMBDAS,
    noise: rngNoise(new Rng(6)),
    repeats: 200,
  });
  const logM = Math.log(6);
  LAMBDAS.forEach((l, k) => {
    assert.ok(direct[k] <= logM + 1e-6 && direct[k] >= -1e-6, `0 <= I <= log M at ${l}`);
    assert.ok(
      Math.abs(curve.mutualInformation[k] - direct[k]) < 0.05 * logM,
      `I(${l}): integrated ${curve.mutualInformation[k]} vs posterior ${direct[k]}`,
    );
  });
  // Well separated points: all log M nats at high SNR.
  assert.ok(Math.abs(direct[40] - logM) < 1e-3, `I(10) = ${direct[40]} vs log 6`);
  assert.ok(Math.abs(curve.mutualInformation[40] - logM) < 0.05 * logM);
  tf.dispose([points, data]);
});

Deno.test("estimateMmse() is the squared error summed over features, averaged over examples", async () => {
  // A denoiser that always returns 0: mmse = E |x|^2 whatever lambda.
  const data = tf.tensor2d([[1, 2], [3, 4]]);
  const mmse = await estimateMmse((x) => tf.zerosLike(x), data, {
    logSnrs: [-1, 3],
    noise: rngNoise(new Rng(0)),
    repeats: 3,
    batchSize: 1,
  });
  assert.deepEqual(Array.from(mmse), [15, 15]);
  await assert.rejects(
    () => estimateMmse((x) => x, data, { logSnrs: [], noise: rngNoise(new Rng(0)) }),
    RangeError,
  );
  await assert.rejects(
    () => estimateMmse((x) => x, data, { logSnrs: [0], noise: rngNoise(new Rng(0)), repeats: 0 }),
    /repeats/,
  );
  data.dispose();
});

Deno.test("informationPlotSvg() draws the estimate beside the closed form", () => {
  const opts = { dimension: 2, variance: 1 };
  const mmse = LAMBDAS.map((l) => gaussianMmse(l, opts));
  const curve = {
    logSnr: LAMBDAS,
    mmse,
    mutualInformation: mutualInformationFromMmse(LAMBDAS, mmse),
    dimension: 2,
  };
  const svg = informationPlotSvg(curve, {
    title: "Gaussian",
    reference: { mmse, mutualInformation: LAMBDAS.map((l) => gaussianMutualInformation(l, opts)) },
  });
  for (const doc of [svg.mmse, svg.mutualInformation]) {
    assert.ok(doc.startsWith("<svg") && doc.includes("closed form") && doc.includes("estimate"));
  }
  assert.ok(svg.mutualInformation.includes("nats"));
  assert.throws(() => informationPlotSvg(curve, { reference: { mmse: [1, 2] } }), RangeError);
});
