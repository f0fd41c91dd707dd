import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { backend_util } from "@tensorflow/tfjs-core";
import type { NamedAttrMap } from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { registerWasmTrainingKernels } from "../core/wasm_kernels.ts";
import { simplifyPermutation, transposeInto } from "../core/kernels/transpose.ts";
import {
  resizeNearestNeighborGrad,
  resizeNearestNeighborGradCpuConfig,
} from "../core/kernels/resize_nearest_neighbor_grad.ts";

type Backend = "wasm" | "cpu";
type Pad = "same" | "valid" | number | backend_util.ExplicitPadding;
/** Plain data that crosses backends: tensors belong to one backend. */
type Data = { values: Float32Array | Int32Array; shape: number[] };

const rng = new Rng(20261122);

function randn(shape: number[]): Data {
  const n = shape.reduce((a, b) => a * b, 1);
  return { values: rng.fillNormal(new Float32Array(n)), shape };
}

async function use(backend: Backend): Promise<void> {
  await selectBackend({ backend, log: () => {} });
}

/** Replaces tfjs-backend-cpu's ResizeNearestNeighborGrad, wrong for batch > 1, by the fix. */
function fixCpuResizeGrad(): void {
  if (tf.getKernel("ResizeNearestNeighborGrad", "cpu")?.kernelFunc === resizeNearestNeighborGrad) {
    return;
  }
  tf.unregisterKernel("ResizeNearestNeighborGrad", "cpu");
  tf.registerKernel(resizeNearestNeighborGradCpuConfig);
}

function numDataIds(): number {
  return tf.engine().backend.numDataIds();
}

/** max |a - b| / max |b|: the error relative to the reference's scale. */
function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? err : err / scale;
}

/**
 * Runs one kernel on wasm (checking that a call leaves no tensor or buffer behind) and on cpu,
 * with the same inputs; returns both outputs.
 */
async function kernelOnBoth(
  name: string,
  inputs: Record<string, Data>,
  attrs: NamedAttrMap,
): Promise<{ wasm: Data; cpu: Data }> {
  const out: Partial<Record<Backend, Data>> = {};
  for (const backend of ["wasm", "cpu"] as const) {
    await use(backend);
    const ins = Object.fromEntries(
      Object.entries(inputs).map(([k, d]) => [k, tf.tensor(d.values, d.shape)]),
    );
    const tensors = tf.memory().numTensors, buffers = numDataIds();
    const y = tf.engine().runKernel(name, ins, attrs) as tf.Tensor;
    assert.equal(tf.memory().numTensors, tensors + 1, `${name} on ${backend}: tensors leaked`);
    assert.equal(numDataIds(), buffers + 1, `${name} on ${backend}: buffers leaked`);
    out[backend] = { values: y.dataSync() as Float32Array, shape: y.shape };
    tf.dispose([y, ...Object.values(ins)]);
  }
  assert.deepEqual(out.wasm!.shape, out.cpu!.shape, `${name}: output shapes differ`);
  return out as { wasm: Data; cpu: Data };
}

Deno.test("registerWasmTrainingKernels() installs its kernels once and is idempotent", async () => {
  // Without native BLAS, which would serve Conv2DBackpropFilter itself.
  await selectBackend({ backend: "wasm", blas: false, log: () => {} });
  const expected = [
    "Conv2DBackpropFilter",
    "Conv2DBackpropInput",
    "BatchMatMul",
    "Transpose",
    "ResizeNearestNeighbor",
    "ResizeNearestNeighborGrad",
    "Identity",
    "Cast",
    "Slice",
    "SplitV",
    "Concat",
    "Sum",
    "Mean",
  ];
  const first = registerWasmTrainingKernels();
  const funcs = expected.map((n) => tf.getKernel(n, "wasm")?.kernelFunc);
  assert.deepEqual(first, expected);
  assert.deepEqual(registerWasmTrainingKernels(), expected);
  await selectBackend({ backend: "wasm", blas: false, log: () => {} }); // registers again
  assert.deepEqual(expected.map((n) => tf.getKernel(n, "wasm")?.kernelFunc), funcs);
  await use("wasm"); // BLAS back on for the other tests
});

interface ConvCase {
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

// Odd sizes, batch 1, channels not a multiple of 8, stride 2 and 3, 'same'/'valid'/explicit.
const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 5, 3], filter: [3, 3, 3, 5], strides: 1, pad: "same" },
  { x: [1, 9, 6, 5], filter: [3, 3, 5, 7], strides: 1, pad: "valid" },
  { x: [1, 7, 5, 3], filter: [3, 3, 3, 5], strides: 2, pad: "same" },
  { x: [2, 8, 6, 3], filter: [3, 3, 3, 4], strides: 2, pad: "same" },
  { x: [2, 8, 6, 3], filter: [3, 3, 3, 4], strides: 2, pad: "valid" },
  { x: [2, 7, 9, 3], filter: [3, 3, 3, 4], strides: 2, pad: "valid" },
  { x: [1, 7, 6, 3], filter: [1, 1, 3, 4], strides: 1, pad: "same" },
  { x: [3, 5, 5, 9], filter: [1, 1, 9, 2], strides: 1, pad: "valid" },
  { x: [1, 7, 6, 3], filter: [1, 1, 3, 4], strides: 2, pad: "valid" },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: 1 },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 4], strides: 2, pad: 2 },
  { x: [1, 7, 8, 3], filter: [3, 3, 3, 2], strides: 2, pad: 1, dimRoundingMode: "ceil" },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { x: [2, 7, 6, 3], filter: [3, 3, 3, 4], strides: 2, pad: [[0, 0], [0, 2], [1, 0], [0, 0]] },
  { x: [1, 6, 6, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [4, 0], [0, 1], [0, 0]] },
  { x: [2, 9, 6, 3], filter: [2, 3, 3, 4], strides: [3, 2], pad: "same" },
];

function dyShape(c: ConvCase): number[] {
  const info = backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.filter as [number, number, number, number],
    c.strides,
    1,
    c.pad,
    c.dimRoundingMode,
  );
  return info.outShape;
}

Deno.test("Conv2DBackpropFilter on wasm matches cpu on awkward shapes without leaks", async () => {
  for (const c of CONV_CASES) {
    const attrs = {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: c.dimRoundingMode,
      filterShape: c.filter,
    } as unknown as NamedAttrMap;
    const r = await kernelOnBoth(
      "Conv2DBackpropFilter",
      { x: randn(c.x), dy: randn(dyShape(c)) },
      attrs,
    );
    assert.deepEqual(r.wasm.shape, c.filter);
    const err = relError(r.wasm.values, r.cpu.values);
    assert.ok(err < 1e-5, `${JSON.stringify(c)}: relative error ${err}`);
  }
});

Deno.test("Conv2DBackpropInput on wasm matches cpu on awkward shapes without leaks", async () => {
  for (const c of CONV_CASES) {
    const attrs = {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: c.dimRoundingMode,
      inputShape: c.x,
    } as unknown as NamedAttrMap;
    const r = await kernelOnBoth(
      "Conv2DBackpropInput",
      { dy: randn(dyShape(c)), filter: randn(c.filter) },
      attrs,
    );
    assert.deepEqual(r.wasm.shape, c.x);
    const err = relError(r.wasm.values, r.cpu.values);
    assert.ok(err < 1e-5, `${JSON.stringify(c)}: relative error ${err}`);
  }
});

Deno.test("conv gradient kernels handle NCHW data like cpu", async () => {
  const x = [2, 3, 7, 6], filter = [3, 3, 3, 4], dy = [2, 4, 4, 3]; // NCHW, stride 2, 'same'
  const common = { strides: 2, pad: "same", dataFormat: "NCHW" };
  const f = await kernelOnBoth(
    "Conv2DBackpropFilter",
    { x: randn(x), dy: randn(dy) },
    { ...common, filterShape: filter } as unknown as NamedAttrMap,
  );
  assert.ok(relError(f.wasm.values, f.cpu.values) < 1e-5);
  const i = await kernelOnBoth(
    "Conv2DBackpropInput",
    { dy: randn(dy), filter: randn(filter) },
    { ...common, inputShape: x } as unknown as NamedAttrMap,
  );
  assert.ok(relError(i.wasm.values, i.cpu.values) < 1e-5);
});

Deno.test("BatchMatMul on wasm matches cpu for transposes, batches and broadcasts", async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[3, 5, 7], [3, 7, 2], false, false], // tiny slices: wasm's own loop
    [[3, 33, 35], [3, 35, 17], false, false], // per-slice products
    [[3, 35, 33], [3, 17, 35], true, true],
    [[2, 2, 33, 35], [2, 2, 17, 35], false, true],
    [[2, 3, 5, 7], [7, 4], false, false], // shared right operand
    [[2, 3, 7, 5], [4, 7], true, true],
    [[1, 5, 7], [3, 7, 4], false, false], // shared left operand
    [[33, 35], [2, 3, 35, 17], false, false],
    [[6, 33, 35], [1, 6, 35, 17], false, false], // batch ranks differ
  ];
  for (const [a, b, transposeA, transposeB] of cases) {
    const r = await kernelOnBoth("BatchMatMul", { a: randn(a), b: randn(b) }, {
      transposeA,
      transposeB,
    });
    const err = relError(r.wasm.values, r.cpu.values);
    assert.ok(err < 1e-5, `${a} x ${b} (${transposeA}, ${transposeB}): relative error ${err}`);
  }
});

Deno.test("Transpose on wasm matches cpu for matrices, batches, size-1 axes and rank 6", async () => {
  const cases: [number[], number[]][] = [
    [[37, 19], [1, 0]],
    [[3, 37, 19], [0, 2, 1]],
    [[2, 1, 5, 7], [0, 3, 2, 1]],
    [[3, 4, 5, 17], [1, 2, 0, 3]],
    [[2, 2, 3, 5, 4, 17], [2, 3, 0, 4, 1, 5]], // long chunks: moved with copyWithin
    [[2, 2, 3, 5, 4, 3], [2, 3, 0, 4, 1, 5]], // short chunks: moved element by element
    [[2, 3, 1, 4, 5, 2], [5, 3, 0, 4, 1, 2]],
  ];
  for (const [shape, perm] of cases) {
    const r = await kernelOnBoth("Transpose", { x: randn(shape) }, { perm });
    assert.deepEqual(Array.from(r.wasm.values), Array.from(r.cpu.values), `${shape} ${perm}`);
  }
  const ints = { values: Int32Array.from({ length: 60 }, (_, i) => i - 30), shape: [3, 4, 5] };
  const r = await kernelOnBoth("Transpose", { x: ints }, { perm: [0, 2, 1] });
  assert.deepEqual(Array.from(r.wasm.values), Array.from(r.cpu.values));
});

Deno.test("transposeInto() agrees with index arithmetic and merges adjacent axes", () => {
  // Moving only a size-1 axis is no transpose at all.
  assert.deepEqual(simplifyPermutation([2, 1, 3, 4, 5], [0, 2, 3, 1, 4]), {
    shape: [120],
    perm: [0],
  });
  assert.deepEqual(simplifyPermutation([2, 1, 3, 4], [3, 1, 0, 2]), {
    shape: [6, 4],
    perm: [1, 0],
  });
  assert.deepEqual(simplifyPermutation([2, 3, 4, 5], [2, 3, 0, 1]), {
    shape: [6, 20],
    perm: [1, 0],
  });
  const shape = [2, 3, 4, 1, 5];
  const strides = [60, 20, 5, 5, 1];
  const src = Float32Array.from({ length: 120 }, (_, i) => i);
  for (const perm of [[4, 2, 0, 3, 1], [2, 0, 3, 1, 4], [1, 0, 2, 3, 4], [0, 1, 2, 3, 4]]) {
    const dst = new Float32Array(120);
    transposeInto(src, dst, shape, perm);
    const outShape = perm.map((p) => shape[p]);
    for (let o = 0; o < 120; o++) {
      let rest = o, from = 0;
      for (let d = outShape.length - 1; d >= 0; d--) {
        from += (rest % outShape[d]) * strides[perm[d]];
        rest = Math.floor(rest / outShape[d]);
      }
      assert.equal(dst[o], src[from], `perm ${perm}, output ${o}`);
    }
  }
});

Deno.test("ResizeNearestNeighbor on wasm copies x[floor(i / k)] for whole factors, as cpu does", async () => {
  // Channels below and above the copyWithin cut-over, factors 2x2 and 3x1, half-pixel centers,
  // an int32 image, and a fractional factor and corner alignment (wasm's own kernel).
  const cases: [number[], [number, number], boolean, boolean][] = [
    [[2, 3, 4, 5], [6, 8], false, false],
    [[2, 3, 4, 20], [9, 4], false, true],
    [[1, 4, 4, 3], [6, 6], false, false],
    [[1, 4, 4, 3], [8, 8], true, false],
  ];
  for (const [shape, size, alignCorners, halfPixelCenters] of cases) {
    const images = randn(shape);
    const attrs = { size, alignCorners, halfPixelCenters };
    const r = await kernelOnBoth("ResizeNearestNeighbor", { images }, attrs);
    assert.deepEqual(r.wasm, r.cpu, JSON.stringify(attrs));
    const [, h, w, c] = shape, [oh, ow] = size;
    if (alignCorners || oh % h || ow % w) continue;
    const [fy, fx] = [oh / h, ow / w];
    for (let o = 0; o < r.wasm.values.length; o++) {
      const ch = o % c, j = Math.floor(o / c) % ow, i = Math.floor(o / (c * ow)) % oh;
      const b = Math.floor(o / (c * ow * oh));
      const from = ((b * h + Math.floor(i / fy)) * w + Math.floor(j / fx)) * c + ch;
      assert.equal(r.wasm.values[o], images.values[from], `output ${o}`);
    }
  }
  await use("wasm");
  const ints = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1], "int32");
  const up = tf.image.resizeNearestNeighbor(ints, [4, 4]);
  assert.equal(up.dtype, "int32");
  assert.deepEqual([...await up.data()], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  tf.dispose([ints, up]);
});

Deno.test("ResizeNearestNeighborGrad sums 2x2 blocks for 2x upsampling on wasm and fixed cpu", async () => {
  fixCpuResizeGrad();
  const images = { values: new Float32Array(2 * 3 * 4 * 5), shape: [2, 3, 4, 5] };
  const dy = randn([2, 6, 8, 5]);
  const attrs = { alignCorners: false, halfPixelCenters: false };
  const r = await kernelOnBoth("ResizeNearestNeighborGrad", { images, dy }, attrs);
  for (const backend of ["wasm", "cpu"] as const) {
    const dx = r[backend].values;
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 4; j++) {
          for (let c = 0; c < 5; c++) {
            let sum = 0;
            for (const [u, v] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
              sum += dy.values[((b * 6 + 2 * i + u) * 8 + 2 * j + v) * 5 + c];
            }
            const got = dx[((b * 3 + i) * 4 + j) * 5 + c];
            assert.ok(Math.abs(got - sum) < 1e-5, `${backend} dx[${b},${i},${j},${c}]`);
          }
        }
      }
    }
  }
});

Deno.test("ResizeNearestNeighborGrad is the adjoint of the resize on wasm and fixed cpu", async () => {
  fixCpuResizeGrad();
  // <resize(x), dy> = <x, grad(dy)> for every mode, with a non-integer scale.
  const x = randn([2, 5, 7, 3]), dy = randn([2, 8, 3, 3]);
  for (const backend of ["wasm", "cpu"] as const) {
    await use(backend);
    for (const [alignCorners, halfPixelCenters] of [[false, false], [true, false], [false, true]]) {
      const [lhs, rhs] = tf.tidy(() => {
        const xs = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
        const dys = tf.tensor(dy.values, dy.shape);
        const y = tf.image.resizeNearestNeighbor(xs, [8, 3], alignCorners, halfPixelCenters);
        const g = tf.engine().runKernel("ResizeNearestNeighborGrad", { images: xs, dy: dys }, {
          alignCorners,
          halfPixelCenters,
        }) as tf.Tensor;
        return [tf.sum(tf.mul(y, dys)).dataSync()[0], tf.sum(tf.mul(xs, g)).dataSync()[0]];
      });
      const mode = `${backend} alignCorners=${alignCorners} halfPixelCenters=${halfPixelCenters}`;
      assert.ok(Math.abs(lhs - rhs) <= 1e-5 * (1 + Math.abs(lhs)), `${mode}: ${lhs} vs ${rhs}`);
    }
  }
});

/** Parameter shapes of a tiny U-Net-like block (NHWC, 8x8 input, 3 channels). */
const NET_PARAMS: Record<string, number[]> = {
  conv0: [3, 3, 3, 6],
  gamma: [6],
  beta: [6],
  embed: [4, 6],
  down: [3, 3, 6, 10],
  skip: [1, 1, 6, 10],
  q: [10, 10],
  k: [10, 10],
  v: [10, 10],
  out: [3, 3, 16, 3],
};

/** Loss of the block: every op family a U-Net training step uses. */
function netLoss(p: Record<string, tf.Variable>, x: tf.Tensor4D, t: tf.Tensor1D): tf.Scalar {
  const silu = (h: tf.Tensor) => tf.mul(h, tf.sigmoid(h));
  const [n, size] = [x.shape[0], x.shape[1]];
  let h: tf.Tensor = tf.conv2d(x, p.conv0 as tf.Tensor4D, 1, "same");
  // Group norm: mean and variance over reshaped groups of 3 channels.
  const groups = tf.reshape(h, [n, size, size, 2, 3]);
  const { mean, variance } = tf.moments(groups, [1, 2, 4], true);
  h = tf.reshape(tf.mul(tf.sub(groups, mean), tf.rsqrt(tf.add(variance, 1e-5))), h.shape);
  h = silu(tf.add(tf.mul(h, p.gamma), p.beta));
  // Sinusoidal embedding of t, projected and added per channel.
  const angles = tf.mul(tf.reshape(t, [n, 1]), tf.tensor2d([[1, 0.1]]));
  const emb = tf.matMul(tf.concat([tf.sin(angles), tf.cos(angles)], 1), p.embed);
  h = tf.add(h, tf.reshape(emb, [n, 1, 1, 6]));
  // Down: 3x3 stride 2, plus average-pooled 1x1 skip.
  const d = tf.add(
    tf.conv2d(h as tf.Tensor4D, p.down as tf.Tensor4D, 2, "same"),
    tf.conv2d(tf.avgPool(h as tf.Tensor4D, 2, 2, "valid"), p.skip as tf.Tensor4D, 1, "valid"),
  );
  // Self-attention over the 4x4 positions.
  const tokens = tf.reshape(silu(d), [n * 16, 10]);
  const heads = (w: tf.Variable) => tf.reshape(tf.matMul(tokens, w), [n, 16, 10]);
  const weights = tf.softmax(tf.div(tf.matMul(heads(p.q), heads(p.k), false, true), Math.sqrt(10)));
  const a = tf.add(d, tf.reshape(tf.matMul(weights, heads(p.v)), d.shape));
  // Up: nearest-neighbour resize, concatenated with the skip, 3x3 conv out.
  const up = tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [size, size]);
  const y = tf.conv2d(tf.concat([up, h], 3) as tf.Tensor4D, p.out as tf.Tensor4D, 1, "same");
  return tf.mean(tf.square(tf.sub(y, x)));
}

Deno.test("a U-Net-like training gradient on wasm matches cpu and leaks nothing", async () => {
  fixCpuResizeGrad(); // the reference must be right: see resize_nearest_neighbor_grad.ts
  // Weights ~ N(0, 1 / fan-in) keep activations O(1), so float32 rounding is not amplified.
  const params = Object.fromEntries(
    Object.entries(NET_PARAMS).map(([name, shape]) => {
      const d = randn(shape);
      const fanIn = shape.length === 1 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
      d.values = d.values.map((v) => v / Math.sqrt(fanIn));
      return [name, d];
    }),
  );
  const x = randn([2, 8, 8, 3]);
  const t = { values: Float32Array.from([0.3, 2.5]), shape: [2] };
  const result: Partial<Record<Backend, { loss: number; grads: Record<string, Data> }>> = {};
  let kernels: string[] = [];
  for (const backend of ["wasm", "cpu"] as const) {
    await use(backend);
    const vars = Object.fromEntries(
      Object.entries(params).map(([k, d]) => [k, tf.variable(tf.tensor(d.values, d.shape))]),
    );
    const xs = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
    const ts = tf.tensor1d(t.values);
    const step = () => tf.variableGrads(() => netLoss(vars, xs, ts), Object.values(vars));
    const before = tf.memory().numTensors;
    const { value, grads } = step();
    const loss = value.dataSync()[0];
    const g = Object.fromEntries(
      Object.entries(vars).map(([k, v]) => {
        const grad = grads[v.name];
        return [k, { values: grad.dataSync(), shape: grad.shape } as Data];
      }),
    );
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${backend}: the gradient step leaked tensors`);
    if (backend === "wasm") {
      const profile = await tf.profile(() => tf.dispose(Object.values(step().grads)));
      kernels = profile.kernelNames;
    }
    result[backend] = { loss, grads: g };
    tf.dispose([xs, ts, ...Object.values(vars)]);
  }
  const { wasm, cpu } = result as Record<Backend, { loss: number; grads: Record<string, Data> }>;
  assert.ok(Math.abs(wasm.loss - cpu.loss) <= 1e-5 * Math.abs(cpu.loss), `loss ${wasm.loss}`);
  assert.equal(Object.keys(cpu.grads).length, Object.keys(NET_PARAMS).length);
  for (const name of Object.keys(cpu.grads)) {
    const err = relError(wasm.grads[name].values, cpu.grads[name].values);
    assert.ok(err < 1e-4, `gradient of ${name}: relative error ${err}`);
  }
  // The step exercised the kernels a U-Net needs (shared/bench/ENGINE-NOTES.md), ours included.
  for (
    const k of [
      "Conv2D",
      "Conv2DBackpropFilter",
      "Conv2DBackpropInput",
      "AvgPool",
      "AvgPoolGrad",
      "ResizeNearestNeighbor",
      "ResizeNearestNeighborGrad",
      "BatchMatMul",
      "Softmax",
      "Concat",
      "Sin",
      "Cos",
      "Sigmoid",
      "Rsqrt",
      "Mean",
    ]
  ) {
    assert.ok(kernels.includes(k), `the step did not run ${k} (ran ${kernels.join(", ")})`);
  }
});
