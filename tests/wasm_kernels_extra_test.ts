import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type { NamedAttrMap } from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { jsReduceIsFaster, reducePlan } from "../core/kernels/reduce.ts";
import { copyRows } from "../core/kernels/_copy_rows.ts";
import { groupNorm, silu } from "../models/layers.ts";

type Backend = "wasm" | "cpu";
type Values = Float32Array | Int32Array | Uint8Array;
/** Plain data that crosses backends: tensors belong to one backend. */
type Data = { values: Values; shape: number[]; dtype?: tf.DataType };

await selectBackend({ backend: "wasm", log: () => {} });

const rng = new Rng(20261123);

function randn(shape: number[]): Data {
  return { values: rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape };
}

function ints(shape: number[]): Data {
  const n = shape.reduce((a, b) => a * b, 1);
  return { values: Int32Array.from({ length: n }, (_, i) => i * 7 - 3), shape, dtype: "int32" };
}

function bools(shape: number[]): Data {
  const n = shape.reduce((a, b) => a * b, 1);
  return { values: Uint8Array.from({ length: n }, (_, i) => (i * 5) % 3 === 0 ? 1 : 0), shape };
}

function tensorOf(d: Data): tf.Tensor {
  if (d.values instanceof Uint8Array) return tf.tensor(Array.from(d.values, Boolean), d.shape);
  return tf.tensor(d.values, d.shape, d.dtype);
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
 * Runs one kernel on wasm (checking that nothing but its outputs stays behind, tensors or heap
 * buffers) and on cpu with the same inputs; returns both outputs as plain data.
 */
async function kernelOnBoth(
  name: string,
  inputs: Data[] | Record<string, Data>,
  attrs: NamedAttrMap,
): Promise<{ wasm: Data[]; cpu: Data[] }> {
  const out: Partial<Record<Backend, Data[]>> = {};
  for (const backend of ["wasm", "cpu"] as const) {
    await tf.setBackend(backend);
    const ins = Array.isArray(inputs)
      ? inputs.map(tensorOf)
      : Object.fromEntries(Object.entries(inputs).map(([k, d]) => [k, tensorOf(d)]));
    const tensors = tf.memory().numTensors, buffers = numDataIds();
    const result = tf.engine().runKernel(name, ins as tf.NamedTensorMap, attrs);
    const ys = Array.isArray(result) ? result : [result];
    if (backend === "wasm") {
      assert.equal(tf.memory().numTensors, tensors + ys.length, `${name}: tensors leaked`);
      assert.ok(numDataIds() <= buffers + ys.length, `${name}: buffers leaked`);
    }
    out[backend] = ys.map((y) => ({ values: y.dataSync() as Values, shape: y.shape }));
    tf.dispose([...ys, ...Object.values(ins)]);
  }
  await tf.setBackend("wasm");
  return out as { wasm: Data[]; cpu: Data[] };
}

function assertSame(got: { wasm: Data[]; cpu: Data[] }, what: string, tol = 0): void {
  assert.equal(got.wasm.length, got.cpu.length, `${what}: output counts differ`);
  got.wasm.forEach((w, i) => {
    assert.deepEqual(w.shape, got.cpu[i].shape, `${what}: output ${i} shapes differ`);
    if (tol === 0) assert.deepEqual(Array.from(w.values), Array.from(got.cpu[i].values), what);
    else assert.ok(relError(w.values, got.cpu[i].values) < tol, `${what}: values differ`);
  });
}

Deno.test("copyRows() moves strided rows, short and long, and whole blocks", () => {
  for (const length of [3, 40]) {
    const rows = 5, heap = new Float32Array(2 * rows * 2 * length + 8);
    for (let i = 0; i < heap.length; i++) heap[i] = i;
    const ref = heap.slice();
    const dst = 2 * rows * length + 8;
    copyRows(heap, { src: 1, srcStride: 2 * length, dst, dstStride: length, rows, length });
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < length; j++) {
        assert.equal(heap[dst + r * length + j], ref[1 + r * 2 * length + j]);
      }
    }
  }
  const heap = Float32Array.from([1, 2, 3, 4, 0, 0, 0, 0]);
  copyRows(heap, { src: 0, srcStride: 2, dst: 4, dstStride: 2, rows: 2, length: 2 });
  assert.deepEqual(Array.from(heap), [1, 2, 3, 4, 1, 2, 3, 4]);
});

Deno.test("Slice on wasm matches cpu on awkward shapes and dtypes, without leaks", async () => {
  const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
    { shape: [7], begin: [2], size: [4] },
    { shape: [5, 3], begin: [1, 0], size: [3, 3] }, // contiguous rows
    { shape: [5, 3], begin: [0, 1], size: [-1, 1] }, // one column
    { shape: [2, 3, 5, 7], begin: [0, 0, 0, 3], size: [2, 3, 5, 4] }, // NHWC channel slice
    { shape: [2, 3, 5, 40], begin: [1, 1, 2, 5], size: [1, 2, 3, 30] }, // long rows
    { shape: [3, 1, 4, 1, 5], begin: [1, 0, 1, 0, 0], size: [2, 1, 2, 1, 5] }, // rank 5
    { shape: [4, 6], begin: [0, 0], size: [4, 6] }, // the whole tensor
    { shape: [4, 6], begin: [1, 2], size: [0, 3] }, // empty
  ];
  for (const { shape, begin, size } of cases) {
    for (const data of [randn(shape), ints(shape), bools(shape)]) {
      const got = await kernelOnBoth("Slice", { x: data }, { begin, size });
      assertSame(got, `Slice ${shape} ${begin} ${size} ${data.values.constructor.name}`);
    }
  }
});

Deno.test("SplitV on wasm matches cpu along every axis, uneven and inferred sizes", async () => {
  const shape = [3, 4, 5, 6];
  for (let axis = 0; axis < 4; axis++) {
    const d = shape[axis];
    for (const numOrSizeSplits of [[1, d - 1], [d - 2, -1, 1], d % 2 === 0 ? 2 : 1]) {
      const got = await kernelOnBoth("SplitV", { x: randn(shape) }, { numOrSizeSplits, axis });
      assertSame(got, `SplitV axis ${axis} ${numOrSizeSplits}`);
    }
  }
  const got = await kernelOnBoth("SplitV", { x: ints([2, 9]) }, {
    numOrSizeSplits: [2, 7],
    axis: -1,
  });
  assertSame(got, "SplitV int32, axis -1");
});

Deno.test("Concat on wasm matches cpu along every axis, with empty and single inputs", async () => {
  for (let axis = 0; axis < 4; axis++) {
    const shapes = [3, 1, 2].map((k) => [2, 3, 4, 5].map((d, i) => (i === axis ? k : d)));
    const got = await kernelOnBoth("Concat", shapes.map(randn), { axis });
    assertSame(got, `Concat axis ${axis}`);
  }
  const long = await kernelOnBoth("Concat", [randn([2, 3, 33]), randn([2, 3, 31])], { axis: 2 });
  assertSame(long, "Concat of long rows");
  const empty = await kernelOnBoth("Concat", [randn([2, 0]), randn([2, 3]), randn([2, 0])], {
    axis: 1,
  });
  assertSame(empty, "Concat with empty inputs");
  const single = await kernelOnBoth("Concat", [ints([3, 2])], { axis: 0 });
  assertSame(single, "Concat of one int32 input");
  const mixed = await kernelOnBoth("Concat", [bools([2, 2]), bools([2, 3])], { axis: -1 });
  assertSame(mixed, "Concat of bools, axis -1");
});

Deno.test("Identity and same-dtype Cast share the buffer, which outlives its first tensor", () => {
  const buffers = numDataIds();
  const x = tf.tensor2d([[1.5, -2.5], [3, 4]]);
  const y = tf.clone(x), z = tf.cast(x, "float32");
  assert.equal(numDataIds(), buffers + 1, "a shared buffer, not a copy");
  const i = tf.cast(x, "int32");
  assert.deepEqual(Array.from(i.dataSync()), [1, -2, 3, 4], "a dtype change still converts");
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1.5, -2.5, 3, 4]);
  assert.deepEqual(Array.from(z.dataSync()), [1.5, -2.5, 3, 4]);
  tf.dispose([y, z, i]);
  assert.equal(numDataIds(), buffers, "the last reference frees the buffer");
  const s = tf.tensor1d(["a", "b"], "string");
  assert.deepEqual(tf.clone(s).dataSync(), ["a", "b"]);
});

Deno.test("reducePlan() merges runs and jsReduceIsFaster() leaves innermost reductions", () => {
  assert.deepEqual(reducePlan([8, 32, 32, 64], [1, 2]), {
    dims: [8, 1024, 64],
    reduced: [false, true, false],
  });
  assert.deepEqual(reducePlan([1, 4, 1, 3], [0, 1]), { dims: [4, 3], reduced: [true, false] });
  assert.equal(jsReduceIsFaster([8, 32, 32, 64], [1, 2]), true);
  assert.equal(jsReduceIsFaster([8, 32, 32, 64], [2, 3]), false);
  assert.equal(jsReduceIsFaster([8, 1, 1, 64], [1, 2]), false);
});

Deno.test("Sum and Mean on wasm match cpu over leading and middle axes", async () => {
  const shape = [3, 5, 1, 7, 2];
  const axesCases = [[0], [1], [1, 2, 3], [0, 3], [0, 1, 4], [0, 2], [3], [4]];
  for (const axis of axesCases) {
    for (const name of ["Sum", "Mean"]) {
      for (const keepDims of [false, true]) {
        const got = await kernelOnBoth(name, { x: randn(shape) }, { axis, keepDims });
        assertSame(got, `${name} over ${axis} keepDims ${keepDims}`, 1e-5);
      }
    }
  }
  // Closed form: the sum over the pixels of a ramp.
  const x = tf.reshape(tf.range(0, 24), [2, 3, 4]);
  const s = tf.sum(x, 1);
  assert.deepEqual(Array.from(s.dataSync()), [12, 15, 18, 21, 48, 51, 54, 57]);
  tf.dispose([x, s]);
});

Deno.test("concat gradients (SplitV) and pixel sums on wasm equal cpu's", async () => {
  const a = randn([2, 3, 3, 4]), b = randn([2, 3, 3, 5]), e = randn([2, 1, 1, 9]);
  const w = randn([2, 3, 3, 9]);
  const out: Partial<Record<Backend, Float32Array[]>> = {};
  for (const backend of ["wasm", "cpu"] as const) {
    await tf.setBackend(backend);
    const [ta, tb, te, tw] = [a, b, e, w].map(tensorOf);
    // d/de sums dy over the pixels: a Sum over the middle axes [1, 2].
    const f = (p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) =>
      tf.sum(tf.mul(tf.square(tf.add(tf.concat([p, q], 3), r)), tw));
    const gs = tf.grads(f)([ta, tb, te]);
    out[backend] = gs.map((g) => g.dataSync() as Float32Array);
    tf.dispose([ta, tb, te, tw, ...gs]);
  }
  await tf.setBackend("wasm");
  out.wasm!.forEach((g, i) => assert.ok(relError(g, out.cpu![i]) < 1e-5, `gradient ${i}`));
});

Deno.test("groupNorm() forward and gradients on wasm equal cpu's, and leak nothing", async () => {
  const x = randn([2, 4, 6, 12]), dy = randn([2, 4, 6, 12]);
  const gamma = randn([12]), beta = randn([12]);
  const out: Partial<Record<Backend, Float32Array[]>> = {};
  for (const backend of ["wasm", "cpu"] as const) {
    await tf.setBackend(backend);
    const [tx, tdy, tg, tb] = [x, dy, gamma, beta].map(tensorOf);
    const tensors = tf.memory().numTensors;
    const f = (p: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(groupNorm(p as tf.Tensor4D, { weight: g, bias: b }, { groups: 3 }), tdy));
    const y = groupNorm(tx as tf.Tensor4D, { weight: tg, bias: tb }, { groups: 3 });
    const gs = tf.grads(f)([tx, tg, tb]);
    assert.equal(tf.memory().numTensors, tensors + 4, `groupNorm on ${backend} leaked`);
    out[backend] = [y, ...gs].map((t) => t.dataSync() as Float32Array);
    tf.dispose([tx, tdy, tg, tb, y, ...gs]);
  }
  await tf.setBackend("wasm");
  out.wasm!.forEach((v, i) => assert.ok(relError(v, out.cpu![i]) < 1e-5, `output ${i}`));
});

Deno.test("silu() gradient is s (1 + x (1 - s)), s = sigmoid(x), on wasm and cpu", async () => {
  const xs = [-6, -1.5, -0.25, 0, 0.5, 2, 7];
  for (const backend of ["wasm", "cpu"] as const) {
    await tf.setBackend(backend);
    const x = tf.tensor1d(xs);
    const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(silu(v), tf.range(1, 8))))(x);
    const got = dx.dataSync();
    xs.forEach((v, i) => {
      const s = 1 / (1 + Math.exp(-v));
      const want = (i + 1) * s * (1 + v * (1 - s));
      assert.ok(Math.abs(got[i] - want) < 1e-5 * Math.max(1, Math.abs(want)), `${backend} x=${v}`);
    });
    tf.dispose([x, dx]);
  }
  await tf.setBackend("wasm");
});
