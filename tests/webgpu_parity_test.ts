/**
 * The webgpu backend against cpu (and wasm for training), issue #18: every op family the U-Net,
 * DDPM and flows use, forward and gradient; a whole tiny U-Net loss with all its gradients; a
 * short EDM training run; a Heun sampler run; GPU memory across repeated steps. Skips with a note
 * where no WebGPU adapter exists (CI installs Mesa's software Vulkan, see .ci/run).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { probeWebGpu } from "../core/webgpu.ts";
import { UserError } from "../core/errors.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import { groupNorm, positionalEmbedding, selfAttention, silu } from "../models/layers.ts";
import { initUNetParams, type UNetConfig, unetNetwork } from "../models/unet.ts";
import { edmPrecond } from "../models/precond_edm.ts";
import { sampleHeun } from "../samplers/heun.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { EDM_PRESETS, type EdmTrainConfig } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";

const probe = await probeWebGpu();
if (!probe.ok) console.error(`webgpu_parity_test: skipped, ${probe.why}`);
const OPTS = { ignore: !probe.ok, sanitizeOps: false, sanitizeResources: false };
const TOL = 1e-4;
type Backend = "cpu" | "wasm" | "webgpu";

/** Seeded values in [-1, 1) as a tensor (made anew on each backend: no data moves between them). */
function det(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(rng.fillUniform(new Float32Array(n)).map((v) => (2 * v - 1) * scale), shape);
}

/** `f` on one backend; cpu runs tfjs' own kernels (no OpenBLAS/oneDNN), the plainest reference. */
async function on(backend: Backend, f: () => tf.Tensor[]): Promise<Float32Array[]> {
  await selectBackend({ backend, log: () => {}, blas: backend !== "cpu" });
  const outs = tf.tidy(f);
  const values: Float32Array[] = [];
  for (const t of outs) values.push((await t.data()) as Float32Array);
  tf.dispose(outs);
  return values;
}

/** Outputs of `op` and the gradients of <op(xs), c> for each input, c fixed and seeded. */
function withGrads(op: (...xs: tf.Tensor[]) => tf.Tensor, shapes: number[][]): () => tf.Tensor[] {
  return () => {
    const xs = shapes.map((s, i) => det(s, 10 + i));
    const y = op(...xs);
    const c = det(y.shape, 99);
    const grads = tf.grads((...v: tf.Tensor[]) => tf.sum(tf.mul(op(...v), c)))(xs);
    return [y, ...grads];
  };
}

function relErr(a: Float32Array, b: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return err / Math.max(scale, 1e-12);
}

async function parity(name: string, f: () => tf.Tensor[], tol = TOL): Promise<number> {
  const want = await on("cpu", f), got = await on("webgpu", f);
  assert.equal(got.length, want.length);
  let worst = 0;
  want.forEach((w, i) => {
    assert.equal(got[i].length, w.length, `${name} output ${i}: size`);
    const e = relErr(w, got[i]);
    assert.ok(e < tol, `${name} output ${i}: relative error ${e}`);
    worst = Math.max(worst, e);
  });
  return worst;
}

const C = 8; // channels: 2 groups of GroupNorm with the default of defaultGroups
const OPS: [string, (...xs: tf.Tensor[]) => tf.Tensor, number[][]][] = [
  ["matMul", (a, b) => tf.matMul(a, b), [[5, 7], [7, 3]]],
  ["matMul transposed", (a, b) => tf.matMul(a, b, true, true), [[7, 5], [3, 7]]],
  ["conv2d 3x3", (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"), [
    [2, 6, 6, 3],
    [3, 3, 3, 4],
  ]],
  ["conv2d 3x3 stride 2", (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, "same"), [
    [2, 7, 6, 3],
    [3, 3, 3, 4],
  ]],
  ["conv2d 1x1", (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "valid"), [
    [2, 4, 4, 3],
    [1, 1, 3, 5],
  ]],
  [
    "conv2dTranspose",
    (x, w) => tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [2, 8, 8, 3], 2, "same"),
    [
      [2, 4, 4, 5],
      [3, 3, 3, 5],
    ],
  ],
  ["avgPool 2x2", (x) => tf.avgPool(x as tf.Tensor4D, 2, 2, "valid"), [[2, 4, 6, 3]]],
  ["resizeNearest", (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [8, 8]), [[
    2,
    4,
    4,
    2,
  ]]],
  [
    "resizeNearest halfPixelCenters",
    (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [7, 4], false, true),
    [[2, 3, 5, 2]],
  ],
  [
    "resizeNearest alignCorners",
    (x) => tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [6, 10], true),
    [[2, 3, 5, 2]],
  ],
  ["groupNorm", (x, g, b) => groupNorm(x as tf.Tensor4D, { weight: g, bias: b }, { groups: 2 }), [
    [2, 3, 3, C],
    [C],
    [C],
  ]],
  [
    "groupNorm + silu",
    (x, g, b) => groupNorm(x as tf.Tensor4D, { weight: g, bias: b }, { groups: 4, silu: true }),
    [
      [2, 3, 3, C],
      [C],
      [C],
    ],
  ],
  ["silu", (x) => silu(x), [[3, 11]]],
  ["softmax", (x) => tf.softmax(tf.mul(x, 3)), [[4, 9]]],
  ["logSoftmax", (x) => tf.logSoftmax(tf.mul(x, 3)), [[4, 9]]],
  ["selfAttention", (x, w1, b1, w2, b2) =>
    selfAttention(x as tf.Tensor4D, {
      qkv: { weight: w1, bias: b1 },
      proj: { weight: w2, bias: b2 },
    }), [[2, 2, 3, 4], [1, 1, 4, 12], [12], [1, 1, 4, 4], [4]]],
  ["moments", (x) => {
    const { mean, variance } = tf.moments(x, [1, 2], true);
    return tf.add(mean, variance);
  }, [[2, 3, 4, 5]]],
  [
    "exp log tanh sigmoid",
    (x) =>
      tf.add(tf.add(tf.exp(x), tf.log(tf.add(tf.abs(x), 0.5))), tf.mul(tf.tanh(x), tf.sigmoid(x))),
    [
      [3, 7],
    ],
  ],
  ["sqrt rsqrt square pow", (x) => {
    const p = tf.add(tf.abs(x), 0.5);
    return tf.add(tf.add(tf.sqrt(p), tf.rsqrt(p)), tf.add(tf.square(x), tf.pow(p, 1.5)));
  }, [[3, 7]]],
  ["squeeze (reshape, transpose) and concat/slice", (x) => {
    const s = tf.reshape(tf.transpose(tf.reshape(x, [2, 2, 2, 2, 2, 3]), [0, 1, 3, 2, 4, 5]), [
      2,
      2,
      2,
      12,
    ]);
    return tf.concat([tf.slice(s, [0, 0, 0, 6], [2, 2, 2, 6]), tf.mul(s, 2)], 3);
  }, [[2, 4, 4, 3]]],
  ["sum, mean, where, clip", (x) =>
    tf.add(
      tf.sum(tf.where(tf.greater(det(x.shape, 5), 0), x, tf.mul(x, 0.1)), 1),
      tf.mean(tf.clipByValue(x, -0.5, 0.5), 1),
    ), [[4, 6]]],
];

Deno.test({
  ...OPTS,
  name: "webgpu matches cpu on the ops of the U-Net, DDPM and flows, forward and gradient",
  fn: async () => {
    const errors: string[] = [];
    for (const [name, op, shapes] of OPS) {
      errors.push(`${name} ${(await parity(name, withGrads(op, shapes))).toExponential(1)}`);
    }
    const embed = () => [positionalEmbedding(det([5], 3, 2) as tf.Tensor1D, { channels: 8 })];
    errors.push(`positionalEmbedding ${(await parity("embedding", embed)).toExponential(1)}`);
    console.error(`webgpu vs cpu, worst relative error: ${errors.join("; ")}`);
  },
});

const TINY: UNetConfig = {
  imgResolution: 8,
  inChannels: 2,
  outChannels: 2,
  modelChannels: 8,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
};

/** The tiny U-Net with O(1) weights (the zero-initialised output layers would hide errors). */
function tinyParams(): Params {
  const params = initUNetParams(TINY, new Rng(0));
  Object.values(params).forEach((v, i) => {
    const fanIn = v.shape.length > 1 ? v.size / v.shape[v.shape.length - 1] : 1;
    tf.tidy(() => v.assign(tf.add(det(v.shape, 100 + i, 1 / Math.sqrt(fanIn)), 0.5)));
  });
  return params;
}

function unetLossAndGrads(): tf.Tensor[] {
  const params = tinyParams();
  const net = edmPrecond(unetNetwork(TINY, params));
  const x = det([2, 8, 8, 2], 1), sigma = tf.tensor1d([0.3, 2]);
  const { value, grads } = tf.variableGrads(() =>
    tf.mean(tf.square(tf.sub(net(tf.add(x, tf.mul(det([2, 8, 8, 2], 2), 0.5)), sigma), x)))
  );
  const out = [value, ...Object.values(params).map((v) => grads[v.name])];
  disposeParams(params);
  return out;
}

Deno.test({
  ...OPTS,
  name: "webgpu matches cpu on a tiny U-Net's EDM loss and all its parameter gradients",
  fn: async () => {
    const e = await parity("U-Net loss and gradients", unetLossAndGrads, 1e-3);
    console.error(`webgpu vs cpu, U-Net loss and all gradients: worst relative error ${e}`);
  },
});

Deno.test({
  ...OPTS,
  name: "webgpu frees every tensor and GPU buffer of a repeated U-Net training step",
  fn: async () => {
    await selectBackend({ backend: "webgpu", log: () => {} });
    const buffers = () =>
      (tf.backend() as unknown as { bufferManager: { getNumUsedBuffers(): number } })
        .bufferManager.getNumUsedBuffers();
    const counts: [number, number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const outs = tf.tidy(unetLossAndGrads);
      await outs[0].data();
      tf.dispose(outs);
      counts.push([tf.memory().numTensors, buffers(), tf.memory().numBytes]);
    }
    assert.deepEqual(counts[2], counts[1], `tensors, used GPU buffers, bytes: ${counts}`);
  },
});

Deno.test({
  ...OPTS,
  name: "webgpu's Heun sampler run matches cpu's",
  fn: async () => {
    const run = async (backend: Backend) => {
      await selectBackend({ backend, log: () => {}, blas: backend !== "cpu" });
      const params = tinyParams();
      const sigmas = karrasSigmas({ numSteps: 3, sigmaMin: 0.02, sigmaMax: 5, rho: 7 });
      const x0 = tf.mul(det([2, 8, 8, 2], 7), sigmas[0]);
      const { x } = await sampleHeun(edmPrecond(unetNetwork(TINY, params)), x0, { sigmas });
      const values = (await x.data()) as Float32Array;
      tf.dispose([x, x0]);
      disposeParams(params);
      return values;
    };
    const e = relErr(await run("cpu"), await run("webgpu"));
    console.error(`webgpu vs cpu, Heun sampler (3 steps): relative error ${e}`);
    assert.ok(e < 1e-3, `sampler relative error ${e}`);
  },
});

Deno.test({
  ...OPTS,
  name: "a short EDM training run on webgpu has the losses of the same run on wasm",
  fn: async () => {
    const config: EdmTrainConfig = {
      ...EDM_PRESETS.toy,
      data: "toy:eight-gaussians",
      batchSize: 64,
      kimg: 1000,
      checkpointKimg: 1000,
      sampleKimg: 1000,
      gridImages: 4,
      gridSteps: 2,
    };
    const losses = async (backend: Backend) => {
      await selectBackend({ backend, log: () => {} });
      const runDir = await Deno.makeTempDir();
      const out: number[] = [];
      await trainEdm(config, {
        progress: false,
        log: () => {},
        runDir,
        maxSteps: 6,
        onStep: (r) => void out.push(r.loss),
      });
      await Deno.remove(runDir, { recursive: true });
      return out;
    };
    const wasm = await losses("wasm"), gpu = await losses("webgpu");
    console.error(`EDM toy losses, wasm ${wasm.map((l) => l.toFixed(5))}`);
    console.error(`EDM toy losses, webgpu ${gpu.map((l) => l.toFixed(5))}`);
    assert.equal(gpu.length, 6);
    gpu.forEach((l, i) =>
      assert.ok(Math.abs(l / wasm[i] - 1) < 1e-3, `step ${i}: ${l} vs ${wasm[i]}`)
    );
  },
});

Deno.test({
  ...OPTS,
  name: "webgpu refuses a tensor over the binding limit and a synchronous GPU read, in one line",
  fn: async () => {
    await selectBackend({ backend: "webgpu", log: () => {} });
    const limit = (probe as { summary: { maxStorageBufferBindingSize: number } }).summary
      .maxStorageBufferBindingSize;
    const before = tf.memory().numTensors;
    // A fill kernel: the refusal comes before any buffer is allocated.
    assert.throws(
      () => tf.tidy(() => tf.fill([limit / 4 + 1], 1)),
      (e) => e instanceof UserError && /storage-binding limit of \d+ MiB/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, before);
    const y = tf.square(tf.tensor1d([1, 2, 3]));
    assert.throws(() => y.dataSync(), /synchronous read .*await t\.data\(\)/);
    assert.deepEqual(Array.from(await y.data()), [1, 4, 9]);
    y.dispose();
  },
});

/** Runs `body` (TypeScript, inside a task's `runTask`) in a subprocess at the repository root. */
async function runTaskSnippet(body: string, env: Record<string, string> = {}) {
  const code = 'import * as tf from "@tensorflow/tfjs-core";\n' +
    'import { selectBackend } from "./core/engine.ts";\n' +
    'import { runTask } from "./tasks/_main.ts";\n' +
    `await runTask(async () => { ${body} });`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL("..", import.meta.url).pathname,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  ...OPTS,
  name: "a GPU validation error stops the task at the next read, with the GPU's message",
  fn: async () => {
    const r = await runTaskSnippet(
      'await selectBackend({ backend: "webgpu", log: () => {} });' +
        "const device = (tf.backend() as unknown as { device: GPUDevice }).device;" +
        "device.createBuffer({ size: 4, usage: 0 });" + // invalid usage flags
        "console.log(await tf.square(tf.tensor1d([1, 2])).data());",
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: webgpu GPUValidationError: .*usage/m);
    assert.equal(r.stdout, "", "no values read after the error");
  },
});

Deno.test({
  name: "--backend webgpu without an adapter is a one-line error with exit code 2",
  ignore: Deno.build.os !== "linux", // wgpu has no DX12 on Linux: no adapter
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const r = await runTaskSnippet('await selectBackend({ backend: "webgpu" });', {
      DENO_WEBGPU_BACKEND: "dx12",
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: backend "webgpu": no WebGPU adapter found; .* --backend wasm$/m,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  },
});
