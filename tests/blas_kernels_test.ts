import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { loadBlas } from "../core/blas/openblas.ts";
import { registerBlasKernels } from "../core/blas/register.ts";
import { loadDnnl } from "../core/dnnl/onednn.ts";
import {
  addChannelShift,
  conv2d,
  downsample,
  groupNorm,
  linear,
  scaledAdd,
  selfAttention,
  silu,
  upsample,
} from "../models/layers.ts";
import { loadNativeKernels } from "../core/native/kernels.ts";
import { Rng } from "../core/rng.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// The user's DIFFUSE_BLAS / DIFFUSE_DNNL settings must not decide what these tests expect.
Deno.env.delete("DIFFUSE_BLAS");
Deno.env.delete("DIFFUSE_DNNL");

const hasGradients = (() => {
  try {
    tf.dispose(tf.grad((v: tf.Tensor) => tf.sum(v))(tf.ones([1])));
    return true;
  } catch {
    return false; // tfjs-core registers no gradients itself (the engine brings them in)
  }
})();

// The BLAS kernels need --allow-ffi and an installed library: without either, skip with a reason.
const ffi = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
const probe = ffi ? loadBlas() : { ok: false as const, why: "no --allow-ffi permission" };
const noBlas = !probe.ok;
if (!probe.ok) {
  console.warn(
    `blas_kernels_test: BLAS tests skipped (${probe.why}); run with --allow-ffi ` +
      `after apt-get install libopenblas0-pthread`,
  );
}

// Count native products, to tell the BLAS path from a silent fallback (registration captures
// the library's sgemm, so wrap it before anything registers).
let gemmCalls = 0;
if (probe.ok) {
  const inner = probe.blas.sgemm;
  probe.blas.sgemm = (op) => {
    gemmCalls++;
    inner(op);
  };
}

// oneDNN runs the convolutions and matrix products when installed; count its executions the
// same way (the registered kernels share this cached library object).
let dnnlCalls = 0;
const dnnlProbe = ffi ? loadDnnl() : { ok: false as const, why: "no --allow-ffi permission" };
if (dnnlProbe.ok) {
  const inner = dnnlProbe.dnnl.execute;
  dnnlProbe.dnnl.execute = (p, args) => {
    dnnlCalls++;
    inner(p, args);
  };
} else console.warn(`blas_kernels_test: oneDNN cases skipped (${dnnlProbe.why})`);

// The fused kernels of core/native (built with cc on first use); count their GroupNorm and
// channel-sum calls.
let nativeCalls = 0, shiftedCalls = 0;
const nativeProbe = ffi ? loadNativeKernels() : { ok: false as const, why: "no --allow-ffi" };
if (nativeProbe.ok) {
  const gn = nativeProbe.kernels.groupNorm;
  const [forward, backward] = [gn.forward, gn.backward];
  gn.forward = (...a) => (nativeCalls++, forward(...a));
  gn.backward = (...a) => (nativeCalls++, backward(...a));
  const sums = nativeProbe.kernels.channelSums;
  nativeProbe.kernels.channelSums = (...a) => (nativeCalls++, sums(...a));
  const [softmax, softmaxGrad] = [nativeProbe.kernels.softmax, nativeProbe.kernels.softmaxGrad];
  nativeProbe.kernels.softmax = (...a) => (nativeCalls++, softmax(...a));
  nativeProbe.kernels.softmaxGrad = (...a) => (nativeCalls++, softmaxGrad(...a));
  const shifted = nativeProbe.kernels.groupNormShifted;
  nativeProbe.kernels.groupNormShifted = (...a) => (shiftedCalls++, shifted(...a));
  const [resample, copyColumns] = [nativeProbe.kernels.resample, nativeProbe.kernels.copyColumns];
  nativeProbe.kernels.resample = (...a) => (nativeCalls++, resample(...a));
  nativeProbe.kernels.copyColumns = (...a) => (nativeCalls++, copyColumns(...a));
} else console.warn(`blas_kernels_test: fused native cases skipped (${nativeProbe.why})`);

/**
 * Which native path a run uses: none, sgemm only, oneDNN first then sgemm, or that with the
 * fused kernels of core/native.
 */
type Path = "off" | "sgemm" | "dnnl" | "native";
const NATIVE_PATHS: Path[] = dnnlProbe.ok ? ["sgemm", "dnnl"] : ["sgemm"];

type Backend = "wasm" | "cpu";
type Pad = "same" | "valid" | [[0, 0], [number, number], [number, number], [0, 0]];

/** Runs `fn` on a backend with a native path (or none) and returns plain arrays (no tensors survive). */
async function on(
  backend: Backend,
  path: Path | boolean,
  fn: () => tf.Tensor[],
): Promise<Float32Array[]> {
  await selectBackend({ backend, log: () => {} });
  const mode: Path = path === true ? "sgemm" : path === false ? "off" : path;
  const r = registerBlasKernels({
    backend,
    disable: mode === "off",
    dnnl: mode === "dnnl" || mode === "native",
    native: mode === "native",
  });
  assert.equal(r.enabled, mode !== "off", r.message);
  assert.equal(r.dnnl !== undefined, mode === "dnnl" || mode === "native", r.message);
  assert.equal(r.native !== undefined, mode === "native", r.message);
  const before = tf.memory().numTensors;
  const out = tf.tidy(fn);
  const data = out.map((t) => t.dataSync() as Float32Array);
  tf.dispose(out);
  assert.equal(tf.memory().numTensors, before, `tensors leaked on ${backend}`);
  return data;
}

function randn(shape: number[], seed: number): tf.Tensor {
  const values = new Rng(seed).fillNormal(new Float32Array(shape.reduce((p, d) => p * d, 1)));
  return tf.tensor(values, shape, "float32");
}

/** Largest |a - b| relative to the largest |b| (float32 sums of up to ~200 terms: ~1e-6). */
function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let err = 0, scale = 1e-6;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  assert.ok(err <= 2e-5 * scale, `${what}: max error ${err} vs scale ${scale}`);
}

interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: Pad;
}

// Odd sizes, batch 1, channels not a multiple of 8, non-square and 1x1 filters, every padding.
const CONV_CASES: ConvCase[] = [
  { x: [2, 7, 9, 5], filter: [3, 3, 5, 6], stride: 1, pad: "same" },
  { x: [1, 7, 9, 5], filter: [3, 3, 5, 7], stride: 1, pad: "valid" },
  { x: [2, 7, 9, 3], filter: [3, 3, 3, 6], stride: 2, pad: "same" },
  { x: [1, 8, 6, 5], filter: [3, 3, 5, 3], stride: 2, pad: "valid" },
  { x: [3, 5, 7, 6], filter: [1, 1, 6, 5], stride: 1, pad: "valid" },
  { x: [2, 5, 7, 6], filter: [1, 1, 6, 5], stride: 2, pad: "same" },
  { x: [1, 6, 5, 3], filter: [2, 3, 3, 4], stride: 1, pad: [[0, 0], [2, 1], [0, 3], [0, 0]] },
  { x: [2, 6, 5, 3], filter: [2, 3, 3, 4], stride: 2, pad: [[0, 0], [1, 0], [2, 1], [0, 0]] },
  { x: [1, 4, 4, 2], filter: [5, 5, 2, 3], stride: 1, pad: "same" },
];

// Forward and both gradient kernels, called directly (no gradient registry needed).
function convKernels(c: ConvCase, seed: number): tf.Tensor[] {
  const x = randn(c.x, seed), filter = randn(c.filter, seed + 1);
  const y = tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, c.stride, c.pad);
  const dy = randn(y.shape, seed + 2);
  const attrs = { strides: c.stride, pad: c.pad, dataFormat: "NHWC" };
  const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
    ...attrs,
    inputShape: c.x,
  }) as tf.Tensor;
  const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
    ...attrs,
    filterShape: c.filter,
  }) as tf.Tensor;
  const bias = randn([c.filter[3]], seed + 3);
  const fused = tf.fused.conv2d({
    x: x as tf.Tensor4D,
    filter: filter as tf.Tensor4D,
    strides: c.stride,
    pad: c.pad,
    bias,
  });
  return [y, dx, dw, fused];
}

interface MatMulCase {
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  bias?: number[];
  activation?: "linear" | "relu";
}

const MATMUL_CASES: MatMulCase[] = [
  { a: [5, 7], b: [7, 3], transposeA: false, transposeB: false },
  { a: [7, 5], b: [7, 3], transposeA: true, transposeB: false },
  { a: [3, 5, 7], b: [3, 9, 7], transposeA: false, transposeB: true },
  { a: [2, 7, 5], b: [3, 7], transposeA: true, transposeB: true },
  { a: [1, 5, 7], b: [4, 7, 3], transposeA: false, transposeB: false },
  { a: [2, 3, 5, 7], b: [7, 1], transposeA: false, transposeB: false },
  { a: [2, 1, 5, 7], b: [1, 3, 7, 3], transposeA: false, transposeB: false }, // fallback
  { a: [5, 7], b: [7, 3], transposeA: false, transposeB: false, bias: [3] },
  { a: [7, 5], b: [3, 7], transposeA: true, transposeB: true, bias: [1, 3] },
  { a: [5, 7], b: [7, 3], transposeA: false, transposeB: false, bias: [3], activation: "relu" },
  { a: [1, 300], b: [300, 5], transposeA: false, transposeB: false }, // a bias gradient's shape
];

function matMulKernel(c: MatMulCase, seed: number): tf.Tensor[] {
  const a = randn(c.a, seed), b = randn(c.b, seed + 1);
  if (c.bias === undefined) return [tf.matMul(a, b, c.transposeA, c.transposeB)];
  return [tf.fused.matMul({
    a,
    b,
    transposeA: c.transposeA,
    transposeB: c.transposeB,
    bias: randn(c.bias, seed + 2),
    activation: c.activation ?? "linear",
  })];
}

for (const backend of ["wasm", "cpu"] as const) {
  for (const path of NATIVE_PATHS) {
    Deno.test({
      name: `${path} conv kernels on ${backend} match the cpu kernels (forward, input and ` +
        `filter gradients, fused bias) on odd shapes, strides 1 and 2, same/valid/explicit padding`,
      ignore: noBlas,
      async fn() {
        for (const [i, c] of CONV_CASES.entries()) {
          const expected = await on("cpu", false, () => convKernels(c, 10 * i));
          const gemm = gemmCalls, dnnl = dnnlCalls;
          const actual = await on(backend, path, () => convKernels(c, 10 * i));
          if (path === "sgemm") assert.ok(gemmCalls > gemm, "the sgemm path ran");
          // oneDNN does all four (plus filter reorders): no sgemm product at all.
          else assert.ok(dnnlCalls >= dnnl + 4 && gemmCalls === gemm, "oneDNN ran them all");
          const names = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "FusedConv2D"];
          names.forEach((n, k) => assertClose(actual[k], expected[k], `${n} ${JSON.stringify(c)}`));
        }
      },
    });

    Deno.test({
      name: `${path} matMul kernels on ${backend} match the cpu kernels with transposes, ` +
        `batches and fused bias, and fall back for broadcasting batches and relu`,
      ignore: noBlas,
      async fn() {
        for (const [i, c] of MATMUL_CASES.entries()) {
          const [expected] = await on("cpu", false, () => matMulKernel(c, 10 * i));
          const gemm = gemmCalls, dnnl = dnnlCalls;
          const [actual] = await on(backend, path, () => matMulKernel(c, 10 * i));
          const fallback = c.activation === "relu" || c.a.length === 4 && c.b.length === 4;
          // On the sgemm path a single row times a matrix is summed in JavaScript (no native
          // call to count); oneDNN takes every product it is given.
          const row = c.a.length === 2 && c.a[0] === 1 && !c.transposeA && !c.transposeB;
          const native = gemmCalls > gemm || dnnlCalls > dnnl;
          const expectNative = !fallback && (path === "dnnl" || !row);
          assert.equal(native, expectNative, `native path ran: ${expectNative}`);
          if (path === "dnnl") assert.equal(dnnlCalls > dnnl, !fallback, "oneDNN ran it");
          assertClose(actual, expected, JSON.stringify(c));
        }
      },
    });
  }

  Deno.test({
    name: `native kernels on ${backend} leave no tensors or backend buffers behind`,
    ignore: noBlas,
    async fn() {
      await selectBackend({ backend, log: () => {} });
      assert.ok(registerBlasKernels({ backend }).enabled);
      const c = CONV_CASES[0];
      const layer = { weight: tf.ones([6]), bias: tf.zeros([6]) };
      // Convolutions, products, and GroupNorm for sampling and (with its gradient) training.
      const all = () => {
        const x = randn([2, 3, 4, 6], 2) as tf.Tensor4D;
        const norm = (t: tf.Tensor) => groupNorm(t as tf.Tensor4D, layer, { silu: true });
        const grads = hasGradients ? [tf.grad((t: tf.Tensor) => tf.sum(norm(t)))(x)] : [];
        return [...convKernels(c, 1), ...matMulKernel(MATMUL_CASES[3], 1), norm(x), ...grads];
      };
      tf.dispose(tf.tidy(all)); // warm-up allocations
      const tensors = tf.memory().numTensors;
      const buffers = tf.engine().backend.numDataIds();
      tf.dispose(tf.tidy(all));
      assert.equal(tf.memory().numTensors, tensors);
      assert.equal(tf.engine().backend.numDataIds(), buffers);
      tf.dispose([layer.weight, layer.bias]);
    },
  });
}

Deno.test({
  name: "BLAS conv kernels match wasm's own kernels on an image large enough for several chunks",
  ignore: noBlas,
  async fn() {
    // 3 x 152 x 152 grid rows exceed one product's chunk (2^18 floats / 5 channels).
    const c: ConvCase = { x: [3, 150, 150, 3], filter: [3, 3, 3, 5], stride: 1, pad: "same" };
    const expected = await on("wasm", false, () => convKernels(c, 7));
    for (const path of NATIVE_PATHS) {
      const actual = await on("wasm", path, () => convKernels(c, 7));
      const names = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "FusedConv2D"];
      names.forEach((n, k) => assertClose(actual[k], expected[k], `${path} ${n}`));
    }
  },
});

Deno.test({
  name: "BLAS Conv2D falls back to the backend's own kernel for dilation 2",
  ignore: noBlas,
  async fn() {
    const dilated = () => {
      const x = randn([1, 9, 8, 3], 5) as tf.Tensor4D, f = randn([3, 3, 3, 2], 6) as tf.Tensor4D;
      return [tf.conv2d(x, f, 1, "same", "NHWC", 2)];
    };
    const [expected] = await on("cpu", false, dilated);
    const calls = gemmCalls;
    const [actual] = await on("wasm", true, dilated);
    assert.equal(gemmCalls, calls, "no native product for a dilated conv");
    assertClose(actual, expected, "dilated conv");
  },
});

Deno.test({
  name: "sgemm and oneDNN gradients of conv2d and matMul through tf.grads match the cpu backend",
  ignore: noBlas || !hasGradients,
  async fn() {
    const grads = () => {
      const x = randn([2, 5, 7, 3], 1), f = randn([3, 3, 3, 4], 2), w = randn([2, 3, 4, 4], 3);
      const g = tf.grads((x: tf.Tensor, f: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, "same"), w))
      );
      const a = randn([3, 4, 5], 4), b = randn([3, 6, 5], 5);
      const h = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.matMul(a, b, false, true)))
      );
      return [...g([x, f]), ...h([a, b])];
    };
    const expected = await on("cpu", false, grads);
    for (const path of NATIVE_PATHS) {
      const gemm = gemmCalls, dnnl = dnnlCalls;
      const actual = await on("wasm", path, grads);
      assert.ok(path === "sgemm" ? gemmCalls > gemm : dnnlCalls > dnnl, `the ${path} path ran`);
      expected.forEach((e, k) => assertClose(actual[k], e, `${path} gradient ${k}`));
    }
  },
});

Deno.test("registerBlasKernels with disable restores the backend's own kernels, one message", async () => {
  await selectBackend({ backend: "wasm", log: () => {} });
  registerBlasKernels({ backend: "wasm", disable: true });
  const own = tf.getKernel("Conv2D", "wasm").kernelFunc;
  const on = registerBlasKernels({ backend: "wasm" });
  assert.equal(on.message.includes("\n"), false);
  if (on.enabled) assert.notEqual(tf.getKernel("Conv2D", "wasm").kernelFunc, own);
  const off = registerBlasKernels({ backend: "wasm", disable: true });
  assert.deepEqual([off.enabled, off.kernels], [false, []]);
  assert.match(off.message, /^diffuse: native BLAS off for wasm \(disabled by option\)$/);
  assert.equal(tf.getKernel("Conv2D", "wasm").kernelFunc, own);
});

Deno.test("registerBlasKernels with a bogus library path falls back with one message", async () => {
  await selectBackend({ backend: "cpu", log: () => {} });
  registerBlasKernels({ backend: "cpu", disable: true });
  const own = tf.getKernel("BatchMatMul", "cpu").kernelFunc;
  registerBlasKernels({ backend: "cpu" });
  const r = registerBlasKernels({ backend: "cpu", libraryPath: "/nonexistent/libnoblas.so" });
  assert.deepEqual([r.enabled, r.kernels], [false, []]);
  assert.equal(r.message.split("\n").length, 1);
  assert.match(r.message, ffi ? /libnoblas\.so/ : /--allow-ffi/);
  assert.equal(tf.getKernel("BatchMatMul", "cpu").kernelFunc, own);
  // And the result is still right, through the cpu backend's own kernel.
  const c = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])));
  assert.deepEqual([...c.dataSync()], [17, 39]);
  c.dispose();
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `oneDNN sigmoid, softmax, SiLU and its gradient on ${backend} match the cpu kernels ` +
      `on odd shapes`,
    ignore: noBlas || !dnnlProbe.ok,
    async fn() {
      const ops = () => {
        const x = tf.mul(randn([3, 5, 7, 11], 3), 4); // odd sizes, large arguments
        const logits = tf.mul(randn([2, 9, 13], 4), 5);
        const dy = randn([3, 5, 7, 11], 5);
        const siluGrad = hasGradients
          ? [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(silu(t), dy)))(x)]
          : [];
        return [
          tf.sigmoid(x),
          tf.softmax(logits),
          tf.sigmoid(tf.tensor1d([-100, 0, 100])),
          silu(x),
          ...siluGrad,
        ];
      };
      const expected = await on("cpu", false, ops);
      const calls = dnnlCalls;
      const actual = await on(backend, "dnnl", ops);
      assert.ok(dnnlCalls >= calls + 4, "oneDNN ran them");
      ["sigmoid", "softmax", "sigmoid saturation", "silu", "silu gradient"].slice(0, actual.length)
        .forEach((n, k) => assertClose(actual[k], expected[k], n));
      // Rows of the softmax sum to one.
      for (let r = 0; r < 18; r++) {
        const row = actual[1].subarray(r * 13, (r + 1) * 13);
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `row ${r}`);
      }
    },
  });
}

for (
  const [backend, path] of [
    ["wasm", "dnnl"],
    ["cpu", "dnnl"],
    ["wasm", "native"],
    ["cpu", "native"],
  ] as const
) {
  const count = () => path === "native" ? nativeCalls : dnnlCalls;
  Deno.test({
    name: `${path === "native" ? "Fused native" : "oneDNN"} GroupNorm (+ SiLU) on ${backend} ` +
      `matches the composed ops on odd shapes, forward and gradient (x, gamma, beta)`,
    ignore: noBlas || !dnnlProbe.ok || (path === "native" && !nativeProbe.ok),
    async fn() {
      const cases = [
        { x: [3, 5, 7, 12], groups: 3, silu: true },
        { x: [2, 4, 4, 8], groups: 8, silu: false }, // one channel per group
        { x: [1, 9, 3, 6], groups: 1, silu: true },
      ];
      for (const [i, c] of cases.entries()) {
        const run = () => {
          // A large mean against the spread: E[x^2] - mean^2 must still give the variance.
          const x = tf.add(tf.mul(randn(c.x, i), 3), 10) as tf.Tensor4D;
          const layer = { weight: randn([c.x[3]], i + 1), bias: randn([c.x[3]], i + 2) };
          return [groupNorm(x, layer, { groups: c.groups, silu: c.silu })];
        };
        const [expected] = await on("cpu", false, run);
        const calls = count();
        const [actual] = await on(backend, path, run);
        assert.ok(count() > calls, `${path} ran it`);
        // Relative to the output scale (~1): float32 sums over 5 * 7 * 4 values.
        assertClose(actual, expected, `groupNorm ${JSON.stringify(c)}`);
      }
      // Under a gradient tape the forward and gradient kernels run with the SiLU inside (the
      // gradient recomputes its input), and without it; a batch of 3 (whole images per thread)
      // and of 1 (an image's pixels split over the threads).
      if (!hasGradients) return;
      for (const [silu, n] of [[true, 3], [false, 3], [true, 1]] as const) {
        const grad = () => {
          const x = tf.add(randn([n, 3, 5, 6], 9), 4), w = randn([6], 10), b = randn([6], 11);
          const seed = randn([n, 3, 5, 6], 12); // a non-uniform output gradient
          const f = (t: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
            tf.sum(tf.mul(
              groupNorm(t as tf.Tensor4D, { weight: wt, bias: bt }, { groups: 3, silu }),
              seed,
            ));
          return tf.grads(f)([x, w, b]);
        };
        const expectedGrads = await on("cpu", false, grad);
        const before = count();
        const actualGrads = await on(backend, path, grad);
        assert.ok(count() >= before + 2, `${path} ran the forward and the gradient`);
        ["dx", "dgamma", "dbeta"].forEach((name, k) =>
          assertClose(actualGrads[k], expectedGrads[k], `${name} (silu ${silu}, batch ${n})`)
        );
      }
    },
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `conv2d + bias, addChannelShift and linear on ${backend} with the native kernels: ` +
      `gradients equal autodiff of the plain ops`,
    ignore: noBlas || !dnnlProbe.ok || !nativeProbe.ok || !hasGradients,
    async fn() {
      const shapes = [[2, 5, 6, 3], [3, 3, 3, 4], [4], [2, 4], [4, 5], [5], [2, 5, 6, 4]];
      const grads = (
        layers: (ts: tf.Tensor[]) => { z: tf.Tensor; l: tf.Tensor },
      ) =>
      () => {
        const ts = shapes.map((sh, i) => randn(sh, i + 1));
        const seed = ts.pop()!;
        const f = (...a: tf.Tensor[]) => {
          const { z, l } = layers(a);
          return tf.add(tf.sum(tf.mul(z, seed)), tf.sum(tf.square(l))) as tf.Scalar;
        };
        return tf.grads(f)(ts);
      };
      const plain = grads(([x, f, b, s, w, bl]) => {
        const z = tf.add(
          tf.add(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, "same"), b),
          tf.reshape(s, [2, 1, 1, 4]),
        );
        return {
          z,
          l: tf.add(tf.matMul(tf.reshape(z, [-1, 4]) as tf.Tensor2D, w as tf.Tensor2D), bl),
        };
      });
      const ours = grads(([x, f, b, s, w, bl]) => {
        const z = addChannelShift(
          conv2d(x as tf.Tensor4D, { weight: f, bias: b }),
          s as tf.Tensor2D,
        );
        return { z, l: linear(tf.reshape(z, [-1, 4]) as tf.Tensor2D, { weight: w, bias: bl }) };
      });
      const expected = await on("cpu", false, plain);
      const before = nativeCalls;
      const actual = await on(backend, "native", ours);
      assert.ok(
        nativeCalls >= before + 3,
        "native channel sums ran (conv bias, shift, linear bias)",
      );
      ["dx", "dfilter", "dbias", "dshift", "dweight", "dlinear-bias"].forEach((n, k) =>
        assertClose(actual[k], expected[k], n)
      );
    },
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `Fused native scaledAdd on ${backend} equals (x + y) scale, forward and gradient`,
    ignore: noBlas || !dnnlProbe.ok || !nativeProbe.ok,
    async fn() {
      const run = () => {
        const x = randn([3, 5, 7, 4], 1), y = randn([3, 5, 7, 4], 2), seed = randn([3, 5, 7, 4], 3);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(scaledAdd(a, b, 0.7), seed));
        return [scaledAdd(x, y, Math.SQRT1_2), ...(hasGradients ? tf.grads(f)([x, y]) : [])];
      };
      const expected = await on("cpu", false, run);
      const actual = await on(backend, "native", run);
      assert.ok(expected.length >= 1 && actual.length === expected.length);
      ["sum", "dx", "dy"].slice(0, actual.length).forEach((n, k) =>
        assertClose(actual[k], expected[k], n)
      );
      // The closed form, not only agreement: scale (x + y) element by element.
      const [x, y] = [randn([3, 5, 7, 4], 1), randn([3, 5, 7, 4], 2)].map((t) => {
        const d = t.dataSync() as Float32Array;
        t.dispose();
        return d;
      });
      assertClose(actual[0], x.map((v, i) => (v + y[i]) * Math.SQRT1_2), "closed form");
    },
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `Fused native scaled softmax on ${backend}: self-attention equals the composed ops, ` +
      `forward and gradient`,
    ignore: noBlas || !dnnlProbe.ok || !nativeProbe.ok,
    async fn() {
      const run = () => {
        // Logits of a few units, so that the softmax is far from uniform.
        const x = tf.mul(randn([2, 3, 5, 6], 1), 3) as tf.Tensor4D;
        const [wq, bq, wp, bp] = [
          randn([6, 18], 2),
          randn([18], 3),
          randn([1, 1, 6, 6], 4),
          randn([6], 5),
        ];
        const attend = (t: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          selfAttention(t as tf.Tensor4D, {
            qkv: { weight: w, bias: b },
            proj: { weight: wp, bias: bp },
          });
        const seed = randn([2, 3, 5, 6], 6);
        const f = (t: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(attend(t, w, b), seed));
        return [attend(x, wq, bq), ...(hasGradients ? tf.grads(f)([x, wq, bq]) : [])];
      };
      const expected = await on("cpu", false, run);
      const calls = nativeCalls;
      const actual = await on(backend, "native", run);
      assert.ok(nativeCalls >= calls + (hasGradients ? 2 : 1), "the native softmax ran");
      ["attention", "dx", "dqkv", "dbias"].slice(0, actual.length).forEach((n, k) =>
        assertClose(actual[k], expected[k], n)
      );
      // The closed forms: softmax(2 [0, ln 2 / 2, ln 3 / 2]) = [1, 2, 3] / 6; with y = [1/4, 3/4],
      // dy = [1, 0] and scale 2 the gradient 2 y (dy - 1/4) is [3/8, -3/8].
      if (!nativeProbe.ok) return;
      const y = new Float32Array(3), dx = new Float32Array(2);
      nativeProbe.kernels.softmax(new Float32Array([0, Math.LN2 / 2, Math.log(3) / 2]), 3, 2, y);
      assertClose(y, new Float32Array([1 / 6, 2 / 6, 3 / 6]), "softmax closed form");
      nativeProbe.kernels.softmaxGrad(
        new Float32Array([0.25, 0.75]),
        new Float32Array([1, 0]),
        2,
        2,
        dx,
      );
      assertClose(dx, new Float32Array([0.375, -0.375]), "gradient closed form");
    },
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `Fused native 2x pooling, upsampling and channel splits on ${backend} equal the ` +
      `composed ops, forward and gradient`,
    ignore: noBlas || !dnnlProbe.ok || !nativeProbe.ok,
    async fn() {
      const run = () => {
        const x = randn([3, 4, 6, 5], 1), seedDown = randn([3, 2, 3, 5], 2);
        const seedUp = randn([3, 8, 12, 5], 3), seedCat = randn([3, 4, 6, 9], 4);
        const y = randn([3, 4, 6, 4], 5);
        const down = (t: tf.Tensor) => tf.sum(tf.mul(downsample(t as tf.Tensor4D), seedDown));
        const up = (t: tf.Tensor) => tf.sum(tf.mul(upsample(t as tf.Tensor4D), seedUp));
        // The gradient of a channel concatenation is a SplitV along the last axis.
        const cat = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.concat([a, b], 3), seedCat));
        const values = [downsample(x as tf.Tensor4D), upsample(x as tf.Tensor4D)];
        // A split along another axis goes to the backend's kernel.
        const [top, rest] = tf.split(x, [1, 3], 1);
        const grads = hasGradients
          ? [tf.grad(down)(x), tf.grad(up)(x), ...tf.grads(cat)([x, y])]
          : [];
        return [...values, top, rest, ...tf.split(x, [2, 3], 3), ...grads];
      };
      const expected = await on("cpu", false, run);
      const calls = nativeCalls;
      const actual = await on(backend, "native", run);
      assert.ok(nativeCalls >= calls + 4, "the native kernels ran");
      const names = [
        "down",
        "up",
        "top",
        "rest",
        "c2",
        "c3",
        "d down",
        "d up",
        "d cat x",
        "d cat y",
      ];
      assert.equal(actual.length, expected.length);
      actual.forEach((a, k) => assertClose(a, expected[k], names[k]));
      // The closed form of one window: the average of 1..4 is 2.5; upsampled, each value 4 times.
      if (!nativeProbe.ok) return;
      const pooled = new Float32Array(1), repeated = new Float32Array(4);
      const one = { n: 1, h: 1, w: 1, c: 1 };
      nativeProbe.kernels.resample("pool", new Float32Array([1, 2, 3, 4]), one, 0.25, pooled);
      nativeProbe.kernels.resample("unpool", new Float32Array([3]), one, 0.5, repeated);
      assert.deepEqual([...pooled, ...repeated], [2.5, 1.5, 1.5, 1.5, 1.5]);
    },
  });
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `Fused native GroupNorm of x + shift on ${backend} equals groupNorm(addChannelShift), ` +
      `without and with a gradient tape`,
    ignore: noBlas || !dnnlProbe.ok || !nativeProbe.ok,
    async fn() {
      for (const [n, silu] of [[3, true], [1, false]] as const) {
        const run = () => {
          // A shift of a few units against x's spread moves the group means and variances.
          const x = tf.add(tf.mul(randn([n, 4, 5, 6], 1), 2), 1) as tf.Tensor4D;
          const shift = tf.mul(randn([n, 6], 2), 3) as tf.Tensor2D;
          const layer = { weight: randn([6], 3), bias: randn([6], 4) };
          const seed = randn([n, 4, 5, 6], 5);
          const f = (t: tf.Tensor, s: tf.Tensor) =>
            tf.sum(
              tf.mul(
                groupNorm(t as tf.Tensor4D, layer, { groups: 3, silu, shift: s as tf.Tensor2D }),
                seed,
              ),
            );
          return [
            groupNorm(x, layer, { groups: 3, silu, shift }),
            ...(hasGradients ? tf.grads(f)([x, shift]) : []),
          ];
        };
        const expected = await on("cpu", false, run);
        const calls = shiftedCalls;
        const actual = await on(backend, "native", run);
        assert.equal(shiftedCalls, calls + 1, "the shifted GroupNorm ran once, outside the tape");
        ["y", "dx", "dshift"].slice(0, actual.length).forEach((name, k) =>
          assertClose(actual[k], expected[k], `${name} (batch ${n}, silu ${silu})`)
        );
      }
    },
  });
}

Deno.test({
  name: "DIFFUSE_DNNL=0 keeps BLAS on and convolutions on sgemm",
  ignore: noBlas || !dnnlProbe.ok,
  async fn() {
    await selectBackend({ backend: "cpu", log: () => {} });
    Deno.env.set("DIFFUSE_DNNL", "0");
    try {
      const r = registerBlasKernels({ backend: "cpu" });
      assert.deepEqual([r.enabled, r.dnnl], [true, undefined]);
      assert.doesNotMatch(r.message, /oneDNN/);
      assert.ok(!r.kernels.includes("Sigmoid"), "sigmoid back on the backend's own kernel");
    } finally {
      Deno.env.delete("DIFFUSE_DNNL");
    }
    const r = registerBlasKernels({ backend: "cpu" });
    assert.match(r.message, /GroupNorm and large add, sub, multiply and concat on oneDNN/);
    assert.ok(r.kernels.includes("Sigmoid"), r.kernels.join());
  },
});

Deno.test({
  name: "loadDnnl() with a missing library says why instead of throwing",
  ignore: !ffi,
  fn() {
    const r = loadDnnl({ libraryPath: "/nonexistent/libdnnl.so.2" });
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.why, /cannot open \/nonexistent\/libdnnl\.so\.2/);
  },
});

Deno.test("DIFFUSE_BLAS=0 turns native BLAS off", async () => {
  await selectBackend({ backend: "cpu", log: () => {} });
  const previous = Deno.env.get("DIFFUSE_BLAS");
  Deno.env.set("DIFFUSE_BLAS", "0");
  try {
    const r = registerBlasKernels({ backend: "cpu" });
    assert.equal(r.enabled, false);
    assert.match(r.message, /DIFFUSE_BLAS=0/);
  } finally {
    if (previous === undefined) Deno.env.delete("DIFFUSE_BLAS");
    else Deno.env.set("DIFFUSE_BLAS", previous);
  }
});

Deno.test({
  name: "sgemm rejects a view too short for its shape instead of reading past it",
  ignore: noBlas,
  fn() {
    if (!probe.ok) return;
    const a = new Float32Array(6), c = new Float32Array(4);
    assert.throws(
      () => probe.blas.sgemm({ m: 2, n: 2, k: 4, a, lda: 4, b: a, ldb: 2, c, ldc: 2 }),
      RangeError,
    );
    const b = new Float32Array([1, 2, 3, 4]);
    probe.blas.sgemm({ m: 2, n: 2, k: 2, a: b, lda: 2, b, ldb: 2, c, ldc: 2 });
    assert.deepEqual([...c], [7, 10, 15, 22]);
  },
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `oneDNN Add, Sub and Multiply on ${backend} match the cpu kernels for every broadcast ` +
      `pattern, forward and gradient`,
    ignore: noBlas || !dnnlProbe.ok,
    async fn() {
      // [a shape, b shape]: equal, b broadcast, a broadcast (swapped for add/mul, fallback for
      // sub), a scalar, ranks that differ, both broadcast (fallback), and one below the size limit.
      const cases: [number[], number[]][] = [
        [[3, 17, 19, 20], [3, 17, 19, 20]],
        [[3, 17, 19, 20], [3, 1, 1, 20]],
        [[20], [3, 17, 19, 20]],
        [[3, 17, 19, 20], []],
        [[2, 70, 130], [70, 1]],
        [[3, 1, 19, 20], [1, 17, 1, 20]],
        [[5, 7], [5, 1]],
      ];
      const ops = () =>
        cases.flatMap(([sa, sb], i) => {
          const a = randn(sa, 20 + i), b = randn(sb, 40 + i);
          return [tf.add(a, b), tf.sub(a, b), tf.sub(b, a), tf.mul(a, b)];
        });
      const expected = await on("cpu", false, ops);
      const calls = dnnlCalls;
      const actual = await on(backend, "dnnl", ops);
      // Cases 0-4 run natively: 4 ops each, but for the one whose first operand is broadcast and
      // which is a subtraction (1 each): 16.
      assert.ok(dnnlCalls >= calls + 16, `oneDNN ran ${dnnlCalls - calls} of them`);
      expected.forEach((e, k) =>
        assert.deepEqual(actual[k], e, `${["add", "sub", "rsub", "mul"][k % 4]} ${cases[k >> 2]}`)
      );
      if (!hasGradients) return;
      // The gradients reduce dy over the broadcast axes (Sum) and multiply (Multiply).
      const grad = () => {
        const a = randn([3, 17, 19, 20], 60), b = randn([3, 1, 1, 20], 61);
        const w = randn([3, 17, 19, 20], 62);
        const f = (x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.mul(tf.mul(tf.add(x, y), tf.sub(x, y)), w));
        return tf.grads(f)([a, b]);
      };
      const expectedGrads = await on("cpu", false, grad);
      const actualGrads = await on(backend, "dnnl", grad);
      ["da", "db"].forEach((n, k) => assertClose(actualGrads[k], expectedGrads[k], n));
    },
  });
}

Deno.test({
  name: "DIFFUSE_NATIVE_SKIP leaves the named kernels to the backend, the others native",
  ignore: noBlas || !dnnlProbe.ok,
  async fn() {
    Deno.env.set("DIFFUSE_NATIVE_SKIP", "Add, Sigmoid");
    try {
      const run = () => [tf.add(randn([64, 512], 1), 1), tf.mul(randn([64, 512], 2), 3)];
      const calls = dnnlCalls;
      const [sum, product] = await on("wasm", "dnnl", run);
      assert.equal(dnnlCalls, calls + 1, "only Multiply ran on oneDNN");
      const r = registerBlasKernels({ backend: "wasm" });
      assert.ok(!r.kernels.includes("Add") && !r.kernels.includes("Sigmoid"), r.kernels.join());
      assert.ok(r.kernels.includes("Multiply"), r.kernels.join());
      const [sumRef, productRef] = await on("cpu", false, run);
      assert.deepEqual([sum, product], [sumRef, productRef]);
    } finally {
      Deno.env.delete("DIFFUSE_NATIVE_SKIP");
    }
    const r = registerBlasKernels({ backend: "wasm" });
    assert.ok(r.kernels.includes("Add"), "back on oneDNN once the variable is gone");
  },
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test({
    name: `oneDNN Concat on ${backend} matches the cpu kernel on any axis and falls back for ` +
      `small tensors`,
    ignore: noBlas || !dnnlProbe.ok,
    async fn() {
      const ops = () => {
        const a = randn([3, 17, 19, 20], 70), b = randn([3, 17, 19, 7], 71);
        return [
          tf.concat([a, b], 3), // channels, the decoder's skip concatenation
          tf.concat([a, randn([3, 17, 19, 20], 73), a], 0), // leading axis, three inputs
          tf.concat([a, randn([3, 4, 19, 20], 74)], 1), // a middle axis
          tf.concat([randn([5, 3], 75), randn([5, 2], 76)], 1), // small: the fallback
        ];
      };
      const expected = await on("cpu", false, ops);
      const calls = dnnlCalls;
      const actual = await on(backend, "dnnl", ops);
      assert.equal(dnnlCalls - calls, 3, "oneDNN ran the three large concatenations");
      expected.forEach((e, k) => assert.deepEqual(actual[k], e, `op ${k}`));
    },
  });
}
