import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { type HostTensor, writeSafetensors } from "../core/safetensors.ts";
import {
  INCEPTION_V3_BN_EPS,
  INCEPTION_V3_CONVS,
  inceptionV3TensorSpecs,
  randomInceptionV3Weights,
} from "../eval/inception_params.ts";
import { createInceptionV3, type InceptionV3, loadInceptionV3 } from "../eval/inception_v3.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

// Shared by the tests below: building the weights and the network takes a few seconds.
const weights = randomInceptionV3Weights(new Rng(1));
const inputRng = new Rng(2);
const grayData = Float32Array.from({ length: 2 * 28 * 28 }, () => 2 * inputRng.uniform() - 1);
const rgbData = Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => 2 * inputRng.uniform() - 1);

let cachedNet: InceptionV3 | null = null;
let cached: Record<"gray" | "rgb", { features: Float32Array; logits: Float32Array }> | null = null;
function network(): InceptionV3 {
  cachedNet ??= createInceptionV3(weights);
  return cachedNet;
}
// Outputs of the in-memory network for the two test batches, computed once.
function outputs(): NonNullable<typeof cached> {
  if (cached) return cached;
  const run = (data: Float32Array, shape: [number, number, number, number]) =>
    tf.tidy(() => {
      const { features, logits } = network().apply(tf.tensor4d(data, shape));
      assert.deepEqual(features.shape, [2, 2048]);
      assert.deepEqual(logits.shape, [2, 1008]);
      return {
        features: features.dataSync() as Float32Array,
        logits: logits.dataSync() as Float32Array,
      };
    });
  cached = { gray: run(grayData, [2, 28, 28, 1]), rgb: run(rgbData, [2, 32, 32, 3]) };
  return cached;
}

Deno.test("inceptionV3TensorSpecs() lists the FID Inception state dict: names, shapes, counts", () => {
  const specs = inceptionV3TensorSpecs();
  const byName = new Map(specs.map((s) => [s.name, s]));
  assert.equal(byName.size, specs.length, "names are unique");
  // 94 BasicConv2d (stem 5, Mixed_5b-d 3x7, 6a 4, 6b-e 4x10, 7a 6, 7b-c 2x9) x 5 tensors + fc.
  assert.equal(INCEPTION_V3_CONVS.length, 94);
  assert.equal(specs.length, 94 * 5 + 2);
  const expect: [string, number[]][] = [
    ["Conv2d_1a_3x3.conv.weight", [32, 3, 3, 3]],
    ["Conv2d_4a_3x3.conv.weight", [192, 80, 3, 3]],
    ["Mixed_5b.branch1x1.bn.running_mean", [64]],
    ["Mixed_5b.branch_pool.conv.weight", [32, 192, 1, 1]],
    ["Mixed_5d.branch_pool.conv.weight", [64, 288, 1, 1]],
    ["Mixed_6a.branch3x3.conv.weight", [384, 288, 3, 3]],
    ["Mixed_6b.branch7x7_2.conv.weight", [128, 128, 1, 7]],
    ["Mixed_6e.branch7x7dbl_4.conv.weight", [192, 192, 7, 1]],
    ["Mixed_7a.branch3x3_2.conv.weight", [320, 192, 3, 3]],
    ["Mixed_7b.branch1x1.conv.weight", [320, 1280, 1, 1]],
    ["Mixed_7c.branch3x3dbl_3b.conv.weight", [384, 384, 3, 1]],
    ["Mixed_7c.branch_pool.bn.running_var", [192]],
    ["fc.weight", [1008, 2048]],
    ["fc.bias", [1008]],
  ];
  for (const [name, shape] of expect) assert.deepEqual(byName.get(name)?.shape, shape, name);
  // Published counts: torchvision's inception_v3 has 27,161,264 parameters (aux head, 1000
  // classes); its AuxLogits hold 768*128 + 2*128 + 128*768*25 + 2*768 + 768*1000 + 1000 =
  // 3,326,696; 8 more classes add 8*2048 + 8 = 16,392. Keras's InceptionV3 reports 34,432
  // non-trainable BatchNorm moving mean/variance values.
  const learned = specs.filter((s) => s.role === "param").reduce((a, s) => a + size(s.shape), 0);
  const running = specs.filter((s) => s.role === "buffer").reduce((a, s) => a + size(s.shape), 0);
  assert.equal(learned, 27_161_264 - 3_326_696 + 16_392); // 23,850,960
  assert.equal(running, 34_432);
  assert.equal(learned + running, 23_885_392);
});

Deno.test("InceptionV3.apply() gives [2, 2048] features and [2, 1008] logits for 28x28x1 and 32x32x3", () => {
  const out = outputs();
  for (const { features, logits } of [out.gray, out.rgb]) {
    assert.equal(features.length, 2 * 2048);
    assert.equal(logits.length, 2 * 1008);
    assert.ok(features.every(Number.isFinite) && logits.every(Number.isFinite));
  }
});

Deno.test("InceptionV3 features are non-negative (average pool of ReLU outputs) and not all zero", () => {
  const { gray, rgb } = outputs();
  for (const f of [gray.features, rgb.features]) {
    assert.ok(f.every((v) => v >= 0), "a feature is negative");
    assert.ok(f.filter((v) => v > 0).length > 1000, "most features are zero");
  }
});

Deno.test("InceptionV3 logits are features @ fc.weight^T + fc.bias (PyTorch [out, in] layout)", () => {
  const { features } = outputs().rgb;
  const { logits } = outputs().rgb;
  const w = weights["fc.weight"].data, b = weights["fc.bias"].data;
  for (let n = 0; n < 2; n++) {
    for (const k of [0, 1, 500, 1007]) {
      let expected = b[k];
      for (let i = 0; i < 2048; i++) expected += features[n * 2048 + i] * w[k * 2048 + i];
      assert.ok(Math.abs(logits[n * 1008 + k] - expected) < 1e-4 * (1 + Math.abs(expected)));
    }
  }
});

Deno.test("InceptionV3 matches an independent NCHW float64 reference of pytorch-fid's graph", () => {
  // From a separate NumPy implementation of pytorch-fid's forward in PyTorch conventions (NCHW,
  // explicit padding, count_include_pad=False average pools, max pool in Mixed_7c, bilinear
  // resize with align_corners=False of [0, 1] images then 2x - 1), run in float64 on these same
  // weights (Rng(1)) and inputs (Rng(2)). Using include-pad average pools there moves the
  // features by 6 %, an average pool in Mixed_7c by 22 %; float32 here agrees to ~4e-7.
  const reference = {
    gray: {
      sums: [10178.329512834081, 9918.99295966007],
      at: [
        [14.699893549940269, 0.17972642250718301, 5.943069205289721, 5.045779566159406],
        [14.453873497397975, 0.21139799101224419, 5.598233549430308, 4.939756783348239],
      ],
      rest: [
        [0.5368428693920847, 34.36612291738378, 0.004465767903351094],
        [0.49391277264000616, 32.89218891379881, 0.0],
      ],
      logits: [[10.111672013000438, -5.247053812563638], [10.054081901208203, -5.070053006667923]],
    },
    rgb: {
      sums: [11770.460342897204, 11546.147284359016],
      at: [
        [16.662905862203868, 0.16175590768347228, 6.438183262982502, 5.807461806801399],
        [16.619975839076336, 0.21620438216722593, 5.837813384136183, 5.743467105839153],
      ],
      rest: [
        [0.5940971870344548, 39.80360758671507, 0.0],
        [0.6327602781247863, 38.54109216187124, 0.0],
      ],
      logits: [[11.779273507606014, -5.949730015220515], [11.48754374057106, -6.051026237651941]],
    },
  };
  // First channel of each Mixed_7c branch (1x1, 3x3_2a, 3x3_2b, dbl_3a, dbl_3b, pool) and the last.
  const index = [0, 320, 704, 1088, 1472, 1856, 2047];
  const close = (got: number, want: number, what: string) =>
    assert.ok(Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want)), `${what}: ${got} vs ${want}`);
  for (const key of ["gray", "rgb"] as const) {
    const { features, logits } = outputs()[key];
    const ref = reference[key];
    for (let n = 0; n < 2; n++) {
      const row = features.subarray(n * 2048, (n + 1) * 2048);
      close(row.reduce((a, v) => a + v, 0), ref.sums[n], `${key} feature sum ${n}`);
      const want = [...ref.at[n], ...ref.rest[n]];
      index.forEach((i, j) => close(row[i], want[j], `${key} feature [${n}, ${i}]`));
      close(logits[n * 1008], ref.logits[n][0], `${key} logit [${n}, 0]`);
      close(logits[n * 1008 + 1007], ref.logits[n][1], `${key} logit [${n}, 1007]`);
    }
  }
});

Deno.test("InceptionV3 repeats grayscale to 3 channels", () => {
  const { gray } = outputs();
  const features = tf.tidy(() => {
    const image = tf.tensor4d(grayData.subarray(0, 28 * 28), [1, 28, 28, 1]);
    const r = network().apply(tf.tile(image, [1, 1, 1, 3]));
    return r.features.dataSync();
  });
  // Batch 1 against batch 2: the products are blocked differently, so equal up to rounding.
  features.forEach((v, i) => assert.ok(Math.abs(v - gray.features[i]) <= 1e-5 * (1 + v), `${i}`));
});

Deno.test("InceptionV3 with zero conv weights: features are relu(BatchNorm shift) of Mixed_7c, in concat order", () => {
  const zeroed: Record<string, HostTensor> = { ...weights };
  for (const c of INCEPTION_V3_CONVS) {
    const w = weights[`${c.name}.conv.weight`];
    zeroed[`${c.name}.conv.weight`] = { data: new Float32Array(w.data.length), shape: w.shape };
  }
  const expected: number[] = [];
  const order = ["branch1x1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_3a", "branch3x3dbl_3b"];
  for (const layer of [...order, "branch_pool"]) {
    const at = (field: string) => weights[`Mixed_7c.${layer}.bn.${field}`].data;
    const [g, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map(at);
    for (let i = 0; i < g.length; i++) {
      expected.push(Math.max(0, b[i] - (m[i] * g[i]) / Math.sqrt(v[i] + INCEPTION_V3_BN_EPS)));
    }
  }
  assert.equal(expected.length, 2048);
  const net = createInceptionV3(zeroed);
  try {
    const features = tf.tidy(() => net.apply(tf.zeros([1, 8, 8, 3])).features.dataSync());
    for (let i = 0; i < 2048; i++) {
      assert.ok(Math.abs(features[i] - expected[i]) < 1e-5, `feature ${i}: ${features[i]}`);
    }
  } finally {
    net.dispose();
  }
});

Deno.test("loadInceptionV3() of a PyTorch-layout safetensors file gives the in-memory outputs", async () => {
  const dir = await Deno.makeTempDir();
  const net0 = tf.memory().numTensors;
  try {
    const path = `${dir}/inception.safetensors`;
    await writeSafetensors(path, weights);
    const net = await loadInceptionV3(path);
    try {
      const features = tf.tidy(() =>
        net.apply(tf.tensor4d(grayData, [2, 28, 28, 1])).features.dataSync()
      );
      assert.deepEqual(Array.from(features), Array.from(outputs().gray.features));
    } finally {
      net.dispose();
    }
    assert.equal(tf.memory().numTensors, net0, "dispose() frees every weight");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadInceptionV3() names a missing or wrongly shaped tensor, and a missing file", async () => {
  const dir = await Deno.makeTempDir();
  const before = tf.memory().numTensors;
  try {
    const missing = "Mixed_6c.branch7x7dbl_3.bn.running_var";
    const partial = { ...weights };
    delete partial[missing];
    await writeSafetensors(`${dir}/partial.safetensors`, partial);
    await assert.rejects(
      () => loadInceptionV3(`${dir}/partial.safetensors`),
      (e: Error) =>
        e instanceof UserError && e.message.includes(`"${missing}" is missing`) &&
        e.message.includes(`${dir}/partial.safetensors`) &&
        e.message.includes("convert_inception.py"),
    );
    // A conv weight already in HWIO layout (a natural slip when converting by hand).
    const name = "Mixed_5b.branch5x5_2.conv.weight";
    const hwio = { ...weights, [name]: { data: weights[name].data, shape: [5, 5, 48, 64] } };
    assert.throws(
      () => createInceptionV3(hwio),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes(
          `"${name}" has shape [5,5,48,64] but the FID Inception-v3 needs [64,48,5,5]`,
        ),
    );
    await assert.rejects(
      () => loadInceptionV3(`${dir}/none.safetensors`),
      (e: Error) => e instanceof UserError && e.message.includes("no Inception-v3 weights at"),
    );
    assert.equal(tf.memory().numTensors, before, "failed loads leave no tensors");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("InceptionV3.apply() leaks no tensors, keeps the caller's images, rejects bad input", () => {
  const net = network();
  const images = tf.tensor4d(rgbData.subarray(0, 32 * 32 * 3), [1, 32, 32, 3]);
  const before = tf.memory().numTensors;
  const { features, logits } = net.apply(images);
  assert.equal(tf.memory().numTensors, before + 2, "only the two results remain");
  tf.dispose([features, logits]);
  assert.equal(images.isDisposed, false);
  const twoChannels = tf.zeros([1, 8, 8, 2]) as tf.Tensor4D;
  const rank3 = tf.zeros([8, 8, 3]) as unknown as tf.Tensor4D;
  assert.throws(() => net.apply(twoChannels), RangeError);
  assert.throws(() => net.apply(rank3), TypeError);
  tf.dispose([images, twoChannels, rank3]);
  assert.equal(tf.memory().numTensors, before - 1);
});

Deno.test("InceptionV3.dispose() frees its weights and later apply() throws", () => {
  const base = tf.memory().numTensors;
  const net = createInceptionV3(weights);
  assert.equal(tf.memory().numTensors, base + 94 * 2 + 2);
  net.dispose();
  assert.equal(tf.memory().numTensors, base);
  const images = tf.zeros([1, 8, 8, 3]) as tf.Tensor4D;
  assert.throws(() => net.apply(images), /disposed/);
  images.dispose();
  cachedNet?.dispose();
  cachedNet = null;
});
