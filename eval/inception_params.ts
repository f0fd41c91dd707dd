/**
 * The layer table and parameter list of the FID Inception-v3: the TensorFlow Inception graph of
 * 2015-12-05 that FID (Heusel et al. 2017) and IS (Salimans et al. 2016) are defined with, as
 * ported to PyTorch by pytorch-fid (`fid_inception_v3`, weights pt_inception-2015-12-05) and
 * loaded by NVlabs/edm's fid.py. The architecture is Szegedy et al. 2016 ("Rethinking the
 * Inception Architecture", Figures 5-7 and Table 1) in torchvision's `Inception3` layout without
 * the auxiliary head, with 1008 output classes.
 *
 * Every convolution is a `BasicConv2d`: conv without bias, BatchNorm (eps 0.001), ReLU. Names and
 * shapes are those of the PyTorch state dict (weights `[out, in, kh, kw]`, fc `[1008, 2048]`), so
 * a file converted from pytorch-fid's `.pth` (recipes/convert_inception.py) maps one to one.
 *
 * @module
 */
import type { HostTensor } from "../core/safetensors.ts";
import type { Rng } from "../core/rng.ts";

/** Width of the pool features (the output of the final average pool). */
export const INCEPTION_V3_FEATURE_DIM = 2048;
/** Classes of the logits (the TF graph's 1008-way softmax, used by the Inception Score). */
export const INCEPTION_V3_NUM_CLASSES = 1008;
/** Side of the square input the graph was trained on; images are resized to it. */
export const INCEPTION_V3_INPUT_SIZE = 299;
/** BatchNorm epsilon of every `BasicConv2d`. */
export const INCEPTION_V3_BN_EPS = 0.001;

/** One `BasicConv2d` (conv + BatchNorm + ReLU) of the network. */
export interface InceptionConvSpec {
  /** Module name, e.g. "Mixed_6b.branch7x7_2"; its tensors are `<name>.conv.weight`, `<name>.bn.*`. */
  name: string;
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Kernel `[kh, kw]`. */
  kernel: [number, number];
  /** Stride (both directions). */
  stride: 1 | 2;
  /**
   * "valid" (no padding) or "same" (PyTorch's symmetric padding `(k - 1) / 2`, which equals
   * TensorFlow's "same" here because every padded conv has stride 1 and odd kernels).
   */
  pad: "valid" | "same";
}

/** Name and PyTorch-layout shape of one tensor of the state dict. */
export interface InceptionTensorSpec {
  /** State-dict name, e.g. "Mixed_5b.branch1x1.bn.running_mean". */
  name: string;
  /** Shape as stored in the file (PyTorch layout). */
  shape: number[];
  /** "param" for learned values (conv and fc weights, BatchNorm weight and bias), "buffer" for running statistics. */
  role: "param" | "buffer";
}

type Conv = InceptionConvSpec;

function conv(
  name: string,
  inChannels: number,
  outChannels: number,
  kernel: number | [number, number],
  options: { stride?: 1 | 2; pad?: "valid" | "same" } = {},
): Conv {
  const k: [number, number] = typeof kernel === "number" ? [kernel, kernel] : kernel;
  const { stride = 1, pad = k[0] === 1 && k[1] === 1 ? "valid" : "same" } = options;
  return { name, inChannels, outChannels, kernel: k, stride, pad };
}

// Inception-A (35x35, Figure 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1. Out 224 + pool.
function blockA(m: string, c: number, pool: number): Conv[] {
  return [
    conv(`${m}.branch1x1`, c, 64, 1),
    conv(`${m}.branch5x5_1`, c, 48, 1),
    conv(`${m}.branch5x5_2`, 48, 64, 5),
    conv(`${m}.branch3x3dbl_1`, c, 64, 1),
    conv(`${m}.branch3x3dbl_2`, 64, 96, 3),
    conv(`${m}.branch3x3dbl_3`, 96, 96, 3),
    conv(`${m}.branch_pool`, c, pool, 1),
  ];
}

// Grid reduction 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2. Out 384 + 96 + c.
function blockB(m: string, c: number): Conv[] {
  return [
    conv(`${m}.branch3x3`, c, 384, 3, { stride: 2, pad: "valid" }),
    conv(`${m}.branch3x3dbl_1`, c, 64, 1),
    conv(`${m}.branch3x3dbl_2`, 64, 96, 3),
    conv(`${m}.branch3x3dbl_3`, 96, 96, 3, { stride: 2, pad: "valid" }),
  ];
}

// Inception-C (17x17, Figure 6, n = 7 factorized into 1x7 and 7x1). Out 4 x 192.
function blockC(m: string, c: number, c7: number): Conv[] {
  return [
    conv(`${m}.branch1x1`, c, 192, 1),
    conv(`${m}.branch7x7_1`, c, c7, 1),
    conv(`${m}.branch7x7_2`, c7, c7, [1, 7]),
    conv(`${m}.branch7x7_3`, c7, 192, [7, 1]),
    conv(`${m}.branch7x7dbl_1`, c, c7, 1),
    conv(`${m}.branch7x7dbl_2`, c7, c7, [7, 1]),
    conv(`${m}.branch7x7dbl_3`, c7, c7, [1, 7]),
    conv(`${m}.branch7x7dbl_4`, c7, c7, [7, 1]),
    conv(`${m}.branch7x7dbl_5`, c7, 192, [1, 7]),
    conv(`${m}.branch_pool`, c, 192, 1),
  ];
}

// Grid reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2. Out 320 + 192 + c.
function blockD(m: string, c: number): Conv[] {
  return [
    conv(`${m}.branch3x3_1`, c, 192, 1),
    conv(`${m}.branch3x3_2`, 192, 320, 3, { stride: 2, pad: "valid" }),
    conv(`${m}.branch7x7x3_1`, c, 192, 1),
    conv(`${m}.branch7x7x3_2`, 192, 192, [1, 7]),
    conv(`${m}.branch7x7x3_3`, 192, 192, [7, 1]),
    conv(`${m}.branch7x7x3_4`, 192, 192, 3, { stride: 2, pad: "valid" }),
  ];
}

// Inception-E (8x8, Figure 7, expanded filter banks). Out 320 + 768 + 768 + 192 = 2048.
function blockE(m: string, c: number): Conv[] {
  return [
    conv(`${m}.branch1x1`, c, 320, 1),
    conv(`${m}.branch3x3_1`, c, 384, 1),
    conv(`${m}.branch3x3_2a`, 384, 384, [1, 3]),
    conv(`${m}.branch3x3_2b`, 384, 384, [3, 1]),
    conv(`${m}.branch3x3dbl_1`, c, 448, 1),
    conv(`${m}.branch3x3dbl_2`, 448, 384, 3),
    conv(`${m}.branch3x3dbl_3a`, 384, 384, [1, 3]),
    conv(`${m}.branch3x3dbl_3b`, 384, 384, [3, 1]),
    conv(`${m}.branch_pool`, c, 192, 1),
  ];
}

/**
 * The 94 `BasicConv2d` layers in state-dict order: the stem (Conv2d_1a .. Conv2d_4a), then the
 * mixed blocks Mixed_5b .. Mixed_7c. Channel counts follow torchvision's `Inception3` with the FID
 * variants (Mixed_5b pool features 32, 5c/5d 64; Mixed_6b..6e with 128, 160, 160, 192 channels
 * in the 7x7 branches).
 *
 * @example Look up a layer
 * ```ts
 * import { INCEPTION_V3_CONVS } from "./inception_params.ts";
 * const stem = INCEPTION_V3_CONVS.find((c) => c.name === "Conv2d_1a_3x3"); // 3 -> 32, 3x3/2
 * ```
 */
export const INCEPTION_V3_CONVS: readonly InceptionConvSpec[] = Object.freeze([
  conv("Conv2d_1a_3x3", 3, 32, 3, { stride: 2, pad: "valid" }),
  conv("Conv2d_2a_3x3", 32, 32, 3, { pad: "valid" }),
  conv("Conv2d_2b_3x3", 32, 64, 3),
  conv("Conv2d_3b_1x1", 64, 80, 1),
  conv("Conv2d_4a_3x3", 80, 192, 3, { pad: "valid" }),
  ...blockA("Mixed_5b", 192, 32),
  ...blockA("Mixed_5c", 256, 64),
  ...blockA("Mixed_5d", 288, 64),
  ...blockB("Mixed_6a", 288),
  ...blockC("Mixed_6b", 768, 128),
  ...blockC("Mixed_6c", 768, 160),
  ...blockC("Mixed_6d", 768, 160),
  ...blockC("Mixed_6e", 768, 192),
  ...blockD("Mixed_7a", 768),
  ...blockE("Mixed_7b", 1280),
  ...blockE("Mixed_7c", 2048),
].map((c) => Object.freeze(c)));

/**
 * Every tensor of the FID Inception-v3 state dict (without BatchNorm's `num_batches_tracked`
 * counters, which the forward pass never reads): per conv layer `conv.weight [out, in, kh, kw]`,
 * `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var` `[out]`; then `fc.weight
 * [1008, 2048]` and `fc.bias [1008]`.
 *
 * @returns A fresh list (472 entries) the caller may keep.
 * @example Count the learned parameters
 * ```ts
 * import { inceptionV3TensorSpecs } from "./inception_params.ts";
 * const n = inceptionV3TensorSpecs()
 *   .filter((s) => s.role === "param")
 *   .reduce((a, s) => a + s.shape.reduce((p, d) => p * d, 1), 0); // 23,850,960
 * ```
 */
export function inceptionV3TensorSpecs(): InceptionTensorSpec[] {
  const specs: InceptionTensorSpec[] = [];
  for (const c of INCEPTION_V3_CONVS) {
    const o = c.outChannels;
    specs.push(
      { name: `${c.name}.conv.weight`, shape: [o, c.inChannels, ...c.kernel], role: "param" },
      { name: `${c.name}.bn.weight`, shape: [o], role: "param" },
      { name: `${c.name}.bn.bias`, shape: [o], role: "param" },
      { name: `${c.name}.bn.running_mean`, shape: [o], role: "buffer" },
      { name: `${c.name}.bn.running_var`, shape: [o], role: "buffer" },
    );
  }
  const [d, k] = [INCEPTION_V3_FEATURE_DIM, INCEPTION_V3_NUM_CLASSES];
  specs.push(
    { name: "fc.weight", shape: [k, d], role: "param" },
    { name: "fc.bias", shape: [k], role: "param" },
  );
  return specs;
}

/**
 * Random weights in PyTorch layout, for tests and benchmarks (the real ones come from pytorch-fid's
 * file): He-normal conv weights (std `sqrt(2 / fanIn)`, so activations keep their scale through
 * the ReLU stack), BatchNorm weight in [0.5, 1.5), bias N(0, 0.1^2), running mean N(0, 0.1^2),
 * running variance in [0.5, 1.5); fc weight N(0, 1 / 2048), zero fc bias.
 *
 * @param rng Source of every draw; the same seed gives the same weights.
 * @returns Host tensors by state-dict name; the caller owns them.
 * @example Random weights for a test network
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { randomInceptionV3Weights } from "./inception_params.ts";
 * const weights = randomInceptionV3Weights(new Rng(0));
 * console.assert(weights["fc.weight"].shape[0] === 1008);
 * ```
 */
export function randomInceptionV3Weights(rng: Rng): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const { name, shape } of inceptionV3TensorSpecs()) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const field = name.slice(name.lastIndexOf(".") + 1);
    if (name === "fc.bias") {
      // zeros
    } else if (name === "fc.weight") {
      scaleNormals(rng.fillNormal(data), 1 / Math.sqrt(INCEPTION_V3_FEATURE_DIM), 0);
    } else if (field === "weight" && shape.length === 4) {
      const fanIn = shape[1] * shape[2] * shape[3];
      scaleNormals(rng.fillNormal(data), Math.sqrt(2 / fanIn), 0);
    } else if (field === "weight" || field === "running_var") {
      for (let i = 0; i < data.length; i++) data[i] = 0.5 + rng.uniform();
    } else {
      scaleNormals(rng.fillNormal(data), 0.1, 0); // bn.bias, bn.running_mean
    }
    out[name] = { data, shape: [...shape] };
  }
  return out;
}

function scaleNormals(data: Float32Array, std: number, mean: number): void {
  for (let i = 0; i < data.length; i++) data[i] = mean + std * data[i];
}
