import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import {
  conv2d,
  downsample,
  dropout,
  fourierEmbedding,
  fourierFrequencies,
  groupNorm,
  linear,
  positionalEmbedding,
  selfAttention,
  silu,
  upsample,
} from "../models/layers.ts";
import {
  checkParams,
  convSpecs,
  countSpecs,
  initParams,
  linearSpecs,
  normSpecs,
} from "../models/param_specs.ts";
import { disposeParams } from "../core/params.ts";

await selectBackend({ backend: "cpu", log: () => {} });

function randn(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillNormal(new Float32Array(n)), shape);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Reference GroupNorm in float64 JS on NHWC data. */
function groupNormRef(
  x: Float32Array,
  [n, h, w, c]: number[],
  gamma: Float32Array,
  beta: Float32Array,
  groups: number,
): Float64Array {
  const out = new Float64Array(x.length);
  const cg = c / groups;
  for (let b = 0; b < n; b++) {
    for (let g = 0; g < groups; g++) {
      let s = 0, s2 = 0, m = 0;
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < cg; k++) {
          const v = x[(b * h * w + p) * c + g * cg + k];
          s += v;
          m++;
        }
      }
      const mean = s / m;
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < cg; k++) s2 += (x[(b * h * w + p) * c + g * cg + k] - mean) ** 2;
      }
      const r = 1 / Math.sqrt(s2 / m + 1e-5);
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < cg; k++) {
          const i = (b * h * w + p) * c + g * cg + k;
          out[i] = (x[i] - mean) * r * gamma[g * cg + k] + beta[g * cg + k];
        }
      }
    }
  }
  return out;
}

/** GroupNorm written with plain tf ops, so its gradient is tfjs's automatic one. */
function groupNormAutodiff(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number) {
  const [n, h, w, c] = x.shape;
  const xr = tf.reshape(x, [n, h * w, groups, c / groups]);
  const mean = tf.mean(xr, [1, 3], true);
  const variance = tf.mean(tf.square(tf.sub(xr, mean)), [1, 3], true);
  const xhat = tf.div(tf.sub(xr, mean), tf.sqrt(tf.add(variance, 1e-5)));
  return tf.add(tf.mul(tf.reshape(xhat, [n, h, w, c]), gamma), beta);
}

Deno.test("groupNorm() matches the per-group mean/variance formula", () => {
  const rng = new Rng(1);
  const shape = [2, 3, 3, 8];
  const x = tf.add(randn(shape, rng), 3) as tf.Tensor4D; // an offset mean tests the centring
  const gamma = randn([8], rng), beta = randn([8], rng);
  const y = groupNorm(x, { weight: gamma, bias: beta }, { groups: 2 });
  const ref = groupNormRef(
    x.dataSync() as Float32Array,
    shape,
    gamma.dataSync() as Float32Array,
    beta.dataSync() as Float32Array,
    2,
  );
  assert.ok(maxAbsDiff(y.dataSync(), ref) < 2e-5);
  assert.throws(() => groupNorm(x, { weight: gamma, bias: beta }, { groups: 3 }), RangeError);
  tf.dispose([x, gamma, beta, y]);
});

Deno.test("groupNorm() gradients equal automatic differentiation of the formula", () => {
  const rng = new Rng(2);
  const x = tf.add(randn([2, 4, 4, 12], rng), 0.7) as tf.Tensor4D;
  const gamma = randn([12], rng), beta = randn([12], rng), dy = randn([2, 4, 4, 12], rng);
  const loss = (f: typeof groupNormAutodiff) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(f(a as tf.Tensor4D, g, b, 3), dy));
  const ours = tf.grads(loss((a, g, b) => groupNorm(a, { weight: g, bias: b }, { groups: 3 })))([
    x,
    gamma,
    beta,
  ]);
  const auto = tf.grads(loss(groupNormAutodiff))([x, gamma, beta]);
  for (let i = 0; i < 3; i++) {
    const scale = Math.max(...Array.from(auto[i].dataSync(), Math.abs));
    assert.ok(maxAbsDiff(ours[i].dataSync(), auto[i].dataSync()) < 1e-5 * Math.max(1, scale));
  }
  tf.dispose([x, gamma, beta, dy, ...ours, ...auto]);
});

Deno.test("conv2d() with 'same' padding matches a direct sum, for 3x3 and 1x1 kernels", () => {
  const rng = new Rng(3);
  const [n, h, w, ci, co] = [1, 4, 3, 2, 3];
  const x = randn([n, h, w, ci], rng) as tf.Tensor4D;
  for (const k of [3, 1]) {
    const wt = randn([k, k, ci, co], rng), b = randn([co], rng);
    const xv = x.dataSync(), wv = wt.dataSync(), bv = b.dataSync();
    const ref = new Float64Array(h * w * co);
    const p = (k - 1) / 2;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        for (let o = 0; o < co; o++) {
          let s = bv[o];
          for (let di = 0; di < k; di++) {
            for (let dj = 0; dj < k; dj++) {
              const ii = i + di - p, jj = j + dj - p;
              if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
              for (let c = 0; c < ci; c++) {
                s += xv[(ii * w + jj) * ci + c] * wv[((di * k + dj) * ci + c) * co + o];
              }
            }
          }
          ref[(i * w + j) * co + o] = s;
        }
      }
    }
    const y = conv2d(x, { weight: wt, bias: b });
    assert.deepEqual(y.shape, [n, h, w, co]);
    assert.ok(maxAbsDiff(y.dataSync(), ref) < 1e-5);
    // Under a gradient tape conv2d takes the unfused path; its value must not change.
    const taped = tf.grad((a: tf.Tensor) =>
      tf.sum(tf.square(conv2d(a as tf.Tensor4D, { weight: wt, bias: b })))
    );
    const g = taped(x);
    assert.ok(Number.isFinite(g.dataSync()[0]));
    tf.dispose([wt, b, y, g]);
  }
  x.dispose();
});

Deno.test("linear() bias gradient is the sum of dy over rows", () => {
  const rng = new Rng(4);
  const x = randn([5, 3], rng) as tf.Tensor2D, w = randn([3, 2], rng), b = randn([2], rng);
  const dy = randn([5, 2], rng);
  const [dx, dw, db] = tf.grads((a: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
    tf.sum(tf.mul(linear(a as tf.Tensor2D, { weight: ww, bias: bb }), dy))
  )([x, w, b]);
  assert.ok(maxAbsDiff(db.dataSync(), tf.sum(dy, 0).dataSync()) < 1e-6);
  assert.ok(maxAbsDiff(dx.dataSync(), tf.matMul(dy, w, false, true).dataSync()) < 1e-6);
  assert.ok(maxAbsDiff(dw.dataSync(), tf.matMul(x, dy, true, false).dataSync()) < 1e-6);
  tf.dispose([x, w, b, dy, dx, dw, db]);
});

Deno.test("downsample() averages 2x2 windows and upsample() repeats pixels; gradients are exact", () => {
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 4, 4, 1]);
  assert.deepEqual(Array.from(downsample(x).dataSync()), [3.5, 5.5, 11.5, 13.5]);
  const small = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  assert.deepEqual(
    Array.from(upsample(small).dataSync()),
    [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
  );
  // d/dx sum(w * down(x)) = w / 4 spread over each window; d/dx sum(W * up(x)) = window sums of W.
  const w = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  const gDown = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(downsample(a as tf.Tensor4D), w)))(x);
  assert.deepEqual(
    Array.from(gDown.dataSync()),
    [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4].map((v) => v / 4),
  );
  const gUp = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(upsample(a as tf.Tensor4D), x)))(small);
  assert.deepEqual(Array.from(gUp.dataSync()), [14, 22, 46, 54]);
  assert.throws(() => downsample(tf.zeros([1, 3, 4, 1]) as tf.Tensor4D), RangeError);
  tf.dispose([x, small, w, gDown, gUp]);
});

Deno.test("positionalEmbedding() is [cos(c f), sin(c f)] with f_i = (1/10000)^(i/half)", () => {
  const e = positionalEmbedding(tf.tensor1d([0.5, -2]), { channels: 4 });
  const f = [1, 0.01];
  const ref = [0.5, -2].flatMap((
    c,
  ) => [...f.map((fi) => Math.cos(c * fi)), ...f.map((fi) => Math.sin(c * fi))]);
  assert.deepEqual(e.shape, [2, 4]);
  assert.ok(maxAbsDiff(e.dataSync(), ref) < 1e-6);
  const ep = positionalEmbedding(tf.tensor1d([1]), { channels: 6, endpoint: true });
  // With the end point the last frequency is exactly 1/10000.
  assert.ok(Math.abs(ep.dataSync()[2] - Math.cos(1e-4)) < 1e-7);
  assert.throws(() => positionalEmbedding(tf.tensor1d([0]), { channels: 5 }), RangeError);
  tf.dispose([e, ep]);
});

Deno.test("fourierEmbedding() is [cos(2 pi f c), sin(2 pi f c)] with seeded N(0, 16^2) frequencies", () => {
  const f = fourierFrequencies(8, { seed: 7 });
  const rng = new Rng(7);
  assert.deepEqual(Array.from(f), Array.from({ length: 4 }, () => Math.fround(16 * rng.normal())));
  assert.notDeepEqual(Array.from(f), Array.from(fourierFrequencies(8, { seed: 8 })));
  const e = fourierEmbedding(tf.tensor1d([0.3]), f);
  const ref = [...f].map((fi) => Math.cos(2 * Math.PI * fi * 0.3))
    .concat([...f].map((fi) => Math.sin(2 * Math.PI * fi * 0.3)));
  assert.ok(maxAbsDiff(e.dataSync(), ref) < 2e-5);
  e.dispose();
});

Deno.test("selfAttention() equals softmax(q k^T / sqrt(C)) v per image", () => {
  const rng = new Rng(5);
  const [n, h, w, c] = [2, 2, 2, 3];
  const x = randn([n, h, w, c], rng) as tf.Tensor4D;
  const wqkv = randn([1, 1, c, 3 * c], rng), bqkv = randn([3 * c], rng);
  const wp = randn([1, 1, c, c], rng), bp = randn([c], rng);
  const y = selfAttention(x, { qkv: { weight: wqkv, bias: bqkv }, proj: { weight: wp, bias: bp } });
  const xv = x.dataSync(), wv = wqkv.dataSync(), bv = bqkv.dataSync();
  const pv = wp.dataSync(), pb = bp.dataSync();
  const hw = h * w, ref: number[] = [];
  for (let b = 0; b < n; b++) {
    const proj = (p: number, part: number) =>
      Array.from({ length: c }, (_, o) => {
        let s = bv[part * c + o];
        for (let i = 0; i < c; i++) s += xv[(b * hw + p) * c + i] * wv[i * 3 * c + part * c + o];
        return s;
      });
    const q = [...Array(hw).keys()].map((p) => proj(p, 0));
    const k = [...Array(hw).keys()].map((p) => proj(p, 1));
    const v = [...Array(hw).keys()].map((p) => proj(p, 2));
    for (let i = 0; i < hw; i++) {
      const logits = k.map((kj) => kj.reduce((s, kv, t) => s + kv * q[i][t], 0) / Math.sqrt(c));
      const mx = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - mx));
      const z = e.reduce((a, b2) => a + b2, 0);
      const a = Array.from(
        { length: c },
        (_, t) => e.reduce((s, ej, j) => s + ej / z * v[j][t], 0),
      );
      for (let o = 0; o < c; o++) {
        ref.push(pb[o] + a.reduce((s, av, t) => s + av * pv[t * c + o], 0));
      }
    }
  }
  assert.ok(maxAbsDiff(y.dataSync(), ref) < 1e-5);
  tf.dispose([x, wqkv, bqkv, wp, bp, y]);
});

Deno.test("silu() is x * sigmoid(x)", () => {
  const y = silu(tf.tensor1d([-2, 0, 3]));
  const ref = [-2, 0, 3].map((v) => v / (1 + Math.exp(-v)));
  assert.ok(maxAbsDiff(y.dataSync(), ref) < 1e-6);
  y.dispose();
});

Deno.test("dropout() keeps draws >= rate, scales by 1/(1-rate), and rejects rates outside [0, 1)", () => {
  const draws = tf.tensor2d([0.1, 0.5, 0.9, 0.2], [1, 4]);
  const y = dropout(tf.ones([1, 4]), { rate: 0.25, uniform: () => draws.clone() });
  assert.ok(maxAbsDiff(y.dataSync(), [0, 4 / 3, 4 / 3, 0]) < 1e-6);
  assert.throws(() => dropout(tf.ones([1]), { rate: 1, uniform: () => tf.ones([1]) }), RangeError);
  tf.dispose([draws, y]);
});

Deno.test("param specs: Xavier-uniform bounds, zero biases, unit norms, and checks by name and shape", () => {
  const specs = [
    ...convSpecs("c", { inChannels: 16, outChannels: 32 }),
    ...convSpecs("z", { inChannels: 16, outChannels: 32, gain: 1e-5 }),
    ...linearSpecs("l", { inFeatures: 7, outFeatures: 5, bias: false }),
    ...normSpecs("n", 32),
  ];
  assert.equal(countSpecs(specs), 2 * (9 * 16 * 32 + 32) + 35 + 64);
  const params = initParams(specs, new Rng(0));
  const bound = Math.sqrt(6 / (9 * 16 + 9 * 32));
  const wv = params["c.weight"].dataSync() as Float32Array;
  const std = Math.sqrt(wv.reduce((s, v) => s + v * v, 0) / wv.length);
  assert.ok(Math.max(...Array.from(wv, Math.abs)) <= bound);
  assert.ok(Math.abs(std - bound / Math.sqrt(3)) < 0.03 * bound); // std of U(-b, b) is b / sqrt 3
  assert.ok(Math.max(...Array.from(params["z.weight"].dataSync(), Math.abs)) <= 1e-5 * bound);
  assert.ok((params["c.bias"].dataSync() as Float32Array).every((v) => v === 0));
  assert.ok((params["n.weight"].dataSync() as Float32Array).every((v) => v === 1));
  assert.equal(params["l.bias"], undefined);
  checkParams(specs, params);
  assert.throws(() => checkParams(normSpecs("n", 16), params), /shape/);
  assert.throws(() => checkParams(normSpecs("m", 32), params), /missing parameter "m.weight"/);
  assert.throws(
    () => initParams([...normSpecs("n", 2), ...normSpecs("n", 2)], new Rng(0)),
    RangeError,
  );
  disposeParams(params);
});
