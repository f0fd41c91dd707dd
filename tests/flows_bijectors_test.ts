import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { disposeParams } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import type { Bijector } from "../flows/bijector.ts";
import { chain } from "../flows/bijector.ts";
import { actNorm } from "../flows/actnorm.ts";
import { invConv } from "../flows/invconv.ts";
import { invConvLu, luWeight } from "../flows/invconv_lu.ts";
import { affineCoupling } from "../flows/affine_coupling.ts";
import { additiveCoupling } from "../flows/additive_coupling.ts";
import { couplingMask, maskedCoupling } from "../flows/masked_coupling.ts";
import { squeeze } from "../flows/squeeze.ts";
import { splitPrior } from "../flows/split_prior.ts";
import { topPrior } from "../flows/top_prior.ts";
import { logitTransform } from "../flows/logit.ts";
import { bruteLogDet, maxAbsDiff, perturb, randn } from "./_flow_check.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const S: [number, number, number] = [2, 2, 4];
const CASES: [string, () => Bijector][] = [
  ["actNorm", () => actNorm({ name: "an", shape: S })],
  ["invConv", () => invConv({ name: "ic", shape: S })],
  ["invConvLu", () => invConvLu({ name: "lu", shape: S })],
  ["affineCoupling", () => affineCoupling({ name: "ac", shape: S, hidden: 6 })],
  ["additiveCoupling", () => additiveCoupling({ name: "add", shape: S, hidden: 6 })],
  [
    "maskedCoupling checkerboard",
    () => maskedCoupling({ name: "cb", shape: S, mask: "checkerboard", hidden: 6 }),
  ],
  [
    "maskedCoupling channel",
    () => maskedCoupling({ name: "ch", shape: S, mask: "channel", parity: 1, hidden: 6 }),
  ],
  ["squeeze", () => squeeze({ name: "sq", shape: [4, 4, 1] })],
  ["splitPrior", () => splitPrior({ name: "sp", shape: S })],
  ["topPrior", () => topPrior({ name: "top", shape: S })],
  ["chain", () =>
    chain("c", [
      actNorm({ name: "c.an", shape: [4, 4, 1] }),
      squeeze({ name: "c.sq", shape: [4, 4, 1] }),
      invConvLu({ name: "c.lu", shape: S }),
      affineCoupling({ name: "c.ac", shape: S, hidden: 6 }),
    ])],
];

for (const [label, make] of CASES) {
  Deno.test(`${label}: log|det| equals the brute-force Jacobian log-determinant, and inverse(forward(x)) = x`, () => {
    const b = make();
    const params = b.init(new Rng(3));
    perturb(params, 0.3);
    const before = tf.memory().numTensors;
    const x = randn([2, ...b.inShape], 7);
    const fwd = b.forward(params, x);
    const inv = b.inverse(params, fwd.y);
    assert.ok(maxAbsDiff(inv.y, x) < 1e-5, `round trip error ${maxAbsDiff(inv.y, x)}`);
    const ld = fwd.logdet.arraySync();
    const ldInv = inv.logdet.arraySync();
    const brute = bruteLogDet((v) => b.forward(params, v).y, x);
    for (let e = 0; e < 2; e++) {
      assert.ok(
        Math.abs(ld[e] - brute[e]) < 1e-4,
        `${label}: logdet ${ld[e]} vs brute force ${brute[e]}`,
      );
      assert.ok(
        Math.abs(ldInv[e] + ld[e]) < 1e-4,
        `${label}: inverse logdet ${ldInv[e]} vs ${-ld[e]}`,
      );
    }
    tf.dispose([x, fwd.y, fwd.logdet, inv.y, inv.logdet]);
    assert.equal(tf.memory().numTensors, before, "forward and inverse leak no tensors");
    disposeParams(params);
  });
}

Deno.test("logitTransform: log|det| equals the brute-force Jacobian, and it inverts on (0, 1)", () => {
  const b = logitTransform({ name: "lg", shape: S, alpha: 0.05 });
  const x = tf.tidy(() => tf.sigmoid(randn([2, ...S], 5)) as tf.Tensor4D);
  const fwd = b.forward({}, x);
  const brute = bruteLogDet((v) => b.forward({}, v).y, x);
  fwd.logdet.arraySync().forEach((v, e) =>
    assert.ok(Math.abs(v - brute[e]) < 1e-4, `${v} vs ${brute[e]}`)
  );
  assert.ok(maxAbsDiff(b.inverse({}, fwd.y).y, x) < 1e-5);
});

Deno.test("actNorm: data-dependent init gives zero mean and unit variance per channel, once", () => {
  const an = actNorm({ name: "an", shape: [3, 3, 3] });
  const params = an.init(new Rng(0));
  const x = tf.tidy(() =>
    tf.add(tf.mul(randn([16, 3, 3, 3], 1), tf.tensor1d([0.1, 3, 10])), tf.tensor1d([5, -2, 0]))
  );
  const { y } = an.forward(params, x as tf.Tensor4D, { init: true });
  const { mean, variance } = tf.moments(y, [0, 1, 2]);
  mean.dataSync().forEach((m) => assert.ok(Math.abs(m) < 1e-4, `mean ${m}`));
  variance.dataSync().forEach((v) => assert.ok(Math.abs(v - 1) < 1e-3, `variance ${v}`));
  assert.equal(params["an.initialized"].dataSync()[0], 1);
  // A second init pass on other data leaves the parameters alone (resume does not re-initialise).
  const bias = params["an.bias"].arraySync();
  an.forward(params, tf.mul(x, 7) as tf.Tensor4D, { init: true });
  assert.deepEqual(params["an.bias"].arraySync(), bias);
});

Deno.test("actNorm: a constant channel on the init batch stays finite (scale 1, mean removed)", () => {
  const an = actNorm({ name: "an", shape: [2, 2, 2] });
  const params = an.init(new Rng(0));
  const x = tf.tidy(() =>
    tf.concat([tf.fill([4, 2, 2, 1], 3), randn([4, 2, 2, 1], 2)], 3) as tf.Tensor4D
  );
  const { y, logdet } = an.forward(params, x, { init: true });
  assert.ok(y.dataSync().every(Number.isFinite) && logdet.dataSync().every(Number.isFinite));
  assert.deepEqual(params["an.logs"].dataSync()[0], 0);
  const later = an.forward(params, randn([4, 2, 2, 2], 9));
  assert.ok(later.y.dataSync().every(Number.isFinite), "a later batch with spread is finite too");
  assert.ok(Math.abs(y.dataSync()[0]) < 1e-6, "the constant is removed");
});

Deno.test("invConvLu: equals the plain 1x1 conv with the same W", () => {
  const lu = invConvLu({ name: "lu", shape: S });
  const plain = invConv({ name: "ic", shape: S });
  const pLu = lu.init(new Rng(4));
  perturb(pLu, 0.3);
  const pPlain = plain.init(new Rng(0));
  pPlain["ic.weight"].assign(
    tf.tensor2d(Float32Array.from(luWeight(pLu, { name: "lu", shape: S })), [4, 4]),
  );
  const x = randn([3, ...S], 2);
  const a = lu.forward(pLu, x), b = plain.forward(pPlain, x);
  assert.ok(maxAbsDiff(a.y, b.y) < 1e-5);
  assert.ok(maxAbsDiff(a.logdet, b.logdet) < 1e-4);
});

Deno.test("invConv: the float64 inverse is accurate for a badly conditioned W (cond ~ 1e4)", () => {
  const c = 8;
  const conv = invConv({ name: "ic", shape: [2, 2, c] });
  const params = conv.init(new Rng(5));
  // W = Q diag(1, ..., 1e-4) Q^T-ish: scale the rows of a rotation.
  const w = params["ic.weight"].arraySync() as number[][];
  const scaled = w.map((row, i) => row.map((v) => v * 10 ** (-4 * i / (c - 1))));
  params["ic.weight"].assign(tf.tensor2d(scaled));
  const x = randn([4, 2, 2, c], 3);
  const back = conv.inverse(params, conv.forward(params, x).y).y;
  assert.ok(maxAbsDiff(back, x) < 1e-2, `round trip error ${maxAbsDiff(back, x)}`);
  const ld = conv.forward(params, x).logdet.dataSync()[0];
  const exact = 4 * (-4 * c / 2); // H W * sum_i log10^(-4i/7) * ln 10 ... computed below
  const want = 4 *
    Array.from({ length: c }, (_, i) => -4 * i / (c - 1) * Math.LN10).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(ld - want) < 1e-3, `logdet ${ld} vs ${want} (${exact})`);
});

Deno.test("invConv: the log|det W| gradient is W^-T (checked against finite differences)", () => {
  const conv = invConv({ name: "ic", shape: [1, 1, 3] });
  const params = conv.init(new Rng(6));
  perturb(params, 0.5);
  const x = randn([1, 1, 1, 3], 1);
  const f = () => tf.sum(conv.forward(params, x).logdet) as tf.Scalar;
  const { grads } = tf.variableGrads(f, [params["ic.weight"]]);
  const g = grads[params["ic.weight"].name].dataSync();
  const w = params["ic.weight"].dataSync().slice();
  for (let k = 0; k < 9; k++) {
    const eps = 1e-2;
    const at = (d: number) => {
      const v = w.slice();
      v[k] += d;
      params["ic.weight"].assign(tf.tensor2d(v, [3, 3]));
      return f().dataSync()[0];
    };
    const fd = (at(eps) - at(-eps)) / (2 * eps);
    assert.ok(Math.abs(fd - g[k]) < 1e-2, `entry ${k}: grad ${g[k]} vs finite difference ${fd}`);
  }
});

Deno.test("couplingMask: checkerboard alternates pixels and the channel mask halves channels", () => {
  assert.deepEqual([...couplingMask("checkerboard", { shape: [2, 2, 1] })], [1, 0, 0, 1]);
  assert.deepEqual([...couplingMask("checkerboard", { shape: [2, 2, 1], parity: 1 })], [
    0,
    1,
    1,
    0,
  ]);
  assert.deepEqual([...couplingMask("channel", { shape: [1, 1, 4] })], [1, 1, 0, 0]);
});

Deno.test("affineCoupling: the zero-initialised last layer makes the first step a fixed scale sigmoid(2)", () => {
  const b = affineCoupling({ name: "ac", shape: S, hidden: 4 });
  const x = randn([2, ...S], 1);
  const { y, logdet } = b.forward(b.init(new Rng(0)), x);
  const expected = tf.concat([
    tf.slice(x, [0, 0, 0, 0], [2, 2, 2, 2]),
    tf.mul(tf.slice(x, [0, 0, 0, 2], [2, 2, 2, 2]), 1 / (1 + Math.exp(-2))),
  ], 3);
  assert.ok(maxAbsDiff(y, expected) < 1e-6);
  assert.ok(Math.abs(logdet.dataSync()[0] - 8 * Math.log(1 / (1 + Math.exp(-2)))) < 1e-4);
});
