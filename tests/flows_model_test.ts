import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { disposeParams } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import { createGlow } from "../flows/glow.ts";
import { createRealNvp } from "../flows/realnvp.ts";
import { type FlowModel, multiscaleFlow, standardNormalLogProb } from "../flows/multiscale.ts";
import { squeeze } from "../flows/squeeze.ts";
import {
  bitsPerDimFromLogDensity,
  dequantize,
  imageBitsPerDim,
  imageLogDensity,
} from "../flows/image_likelihood.ts";
import { bruteLogDet, maxAbs, maxAbsDiff, perturb, randn } from "./_flow_check.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const MODELS: [string, () => FlowModel][] = [
  ["Glow (2 levels, 2 steps, LU)", () => createGlow({ levels: 2, steps: 2, hidden: 6 }, [4, 4, 4])],
  [
    "Glow (2 levels, plain 1x1, additive)",
    () =>
      createGlow({ levels: 2, steps: 1, hidden: 6, permutation: "plain", coupling: "additive" }, [
        4,
        4,
        4,
      ]),
  ],
  ["RealNVP (2 levels)", () => createRealNvp({ levels: 2, hidden: 6 }, [4, 4, 2])],
];

function flatLatents(
  model: FlowModel,
  params: Record<string, tf.Variable>,
  x: tf.Tensor4D,
): tf.Tensor4D {
  const { latents } = model.encode(params, x);
  const n = x.shape[0];
  return tf.reshape(tf.concat(latents.map((z) => tf.reshape(z, [n, -1])), 1), [
    n,
    1,
    1,
    -1,
  ]) as tf.Tensor4D;
}

for (const [label, make] of MODELS) {
  Deno.test(`${label}: encode's log|det| equals the brute-force Jacobian and decode(encode(x)) = x`, () => {
    const model = make();
    const params = model.init(new Rng(1));
    const x = randn([2, ...model.shape], 4, 0.5);
    model.initialize(params, x);
    perturb(params, 0.1);
    const before = tf.memory().numTensors;
    const enc = model.encode(params, x);
    const back = model.decode(params, enc.latents);
    const err = maxAbsDiff(back, x);
    console.log(label, "round trip", err);
    assert.ok(err < 1e-3, `round trip ${err}`);
    const brute = bruteLogDet((v) => flatLatents(model, params, v), x);
    enc.logdet.arraySync().forEach((v, e) =>
      assert.ok(
        Math.abs(v - brute[e]) < 1e-3 * Math.max(1, Math.abs(brute[e]) / 10),
        `logdet ${v} vs ${brute[e]}`,
      )
    );
    const logp = model.logProb(params, x);
    const direct = tf.tidy(() =>
      enc.latents.reduce((a, z) => tf.add(a, standardNormalLogProb(z)), enc.logdet)
    );
    assert.ok(maxAbsDiff(logp, direct) < 1e-4);
    tf.dispose([...enc.latents, enc.logdet, back, logp, direct]);
    assert.equal(tf.memory().numTensors, before, "encode/decode/logProb leak nothing");
    disposeParams(params);
  });
}

Deno.test("Glow: sample() at temperature T leaks nothing and T = 0 gives the decoded zero latents", () => {
  const model = createGlow({ levels: 2, steps: 1, hidden: 6 }, [4, 4, 1]);
  const params = model.init(new Rng(1));
  model.initialize(params, randn([8, 4, 4, 1], 2, 0.3));
  perturb(params, 0.1);
  const before = tf.memory().numTensors;
  const s = model.sample(params, 3, { rng: new Rng(5), temperature: 0 });
  const zeros = model.latentShapes.map((ls) => tf.zeros([3, ...ls]) as tf.Tensor4D);
  const d = model.decode(params, zeros);
  assert.ok(maxAbsDiff(s, d) < 1e-6);
  assert.deepEqual(s.shape, [3, 4, 4, 1]);
  tf.dispose([s, d, ...zeros]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => model.sample(params, 2, { rng: new Rng(0), temperature: -1 }), /temperature/);
});

Deno.test("a standard-normal flow samples with std T (Glow temperature)", () => {
  const model = multiscaleFlow({
    shape: [8, 8, 1],
    levels: 1,
    level: (_i, s) => squeeze({ name: "sq", shape: s }),
  });
  const s = model.sample(model.init(new Rng(0)), 64, { rng: new Rng(1), temperature: 0.7 });
  const std = Math.sqrt(tf.moments(s).variance.dataSync()[0]);
  assert.ok(Math.abs(std - 0.7) < 0.02, `std ${std}`);
});

Deno.test("bits/dim of uniform noise images under a standard-normal flow equals the closed form", () => {
  const model = multiscaleFlow({
    shape: [16, 16, 1],
    levels: 1,
    level: (_i, s) => squeeze({ name: "sq", shape: s }),
  });
  const params = model.init(new Rng(0));
  const rng = new Rng(3);
  const n = 32, d = 256;
  const k = Float32Array.from({ length: n * d }, () => rng.int(256));
  const images = tf.tensor4d(k.map((v) => v / 127.5 - 1), [n, 16, 16, 1]);
  const u = Float32Array.from({ length: n * d }, () => rng.uniform());
  const y = dequantize(images, tf.tensor4d(u, [n, 16, 16, 1]));
  const bpd = bitsPerDimFromLogDensity(imageLogDensity(model, params, y), { dims: d }).arraySync();
  for (let e = 0; e < n; e++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += ((k[e * d + j] + u[e * d + j]) / 256 - 0.5) ** 2;
    const want = (0.5 * sq + d * (0.5 * Math.log(2 * Math.PI) + Math.log(256))) / (d * Math.LN2);
    assert.ok(Math.abs(bpd[e] - want) < 1e-4, `bpd ${bpd[e]} vs ${want}`);
  }
  // Its expectation: 8 + (1/24 + log(2 pi) / 2) / ln 2 = 9.386 bits/dim.
  const mean = bpd.reduce((a, b) => a + b, 0) / n;
  assert.ok(
    Math.abs(mean - (8 + (1 / 24 + 0.5 * Math.log(2 * Math.PI)) / Math.LN2)) < 0.01,
    `mean ${mean}`,
  );
});

Deno.test("dequantize: 8-bit levels plus noise over 256 bins, and coarser bins floor the level", () => {
  const x = tf.tensor4d([-1, 1, 0 / 127.5 - 1 + 2 / 255 * 100], [1, 1, 3, 1]);
  const y = dequantize(x, tf.fill([1, 1, 3, 1], 0.5) as tf.Tensor4D).dataSync();
  [0.5 / 256, 255.5 / 256, 100.5 / 256].forEach((v, i) =>
    assert.ok(Math.abs(y[i] - v) < 1e-6, `${y[i]} vs ${v}`)
  );
  const y32 = dequantize(x, tf.zeros([1, 1, 3, 1]) as tf.Tensor4D, { nBins: 32 }).dataSync();
  [0, 31 / 32, 12 / 32].forEach((v, i) =>
    assert.ok(Math.abs(y32[i] - v) < 1e-6, `${y32[i]} vs ${v}`)
  );
  assert.throws(() => dequantize(x, x, { nBins: 300 }), /nBins/);
});

Deno.test("logProb is differentiable in the flow parameters inside a joint loss (leak-free step)", () => {
  const model = createGlow({ levels: 2, steps: 1, hidden: 6 }, [4, 4, 1]);
  const params = model.init(new Rng(1));
  const x = randn([4, 4, 4, 1], 2, 0.3);
  model.initialize(params, x);
  const other = tf.variable(tf.scalar(2));
  const before = tf.memory().numTensors;
  const trainable = [...Object.values(params).filter((v) => v.trainable), other];
  const { value, grads } = tf.variableGrads(
    () => tf.add(tf.neg(tf.mean(model.logProb(params, x))), tf.square(other)) as tf.Scalar,
    trainable,
  );
  assert.ok(Number.isFinite(value.dataSync()[0]));
  const coupling = grads[params["level0.step0.coupling.net.out.weight"].name];
  assert.ok(coupling && maxAbs(coupling) > 0, "the zero last layer gets a gradient");
  assert.ok(Math.abs(grads[other.name].dataSync()[0] - 4) < 1e-6);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("imageBitsPerDim: RealNVP with the logit input gives finite bits/dim on [-1, 1] images", () => {
  const model = createRealNvp({ levels: 2, hidden: 6 }, [4, 4, 1]);
  const params = model.init(new Rng(1));
  const images = tf.tidy(() => tf.clipByValue(randn([4, 4, 4, 1], 1, 0.5), -1, 1) as tf.Tensor4D);
  const bpd = imageBitsPerDim(model, params, images, { rng: new Rng(0), input: "logit" })
    .dataSync();
  assert.ok(bpd.every((v) => Number.isFinite(v) && v > 0), `${bpd}`);
});
