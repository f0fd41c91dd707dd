/**
 * Inception-v3 as the standard FID network: the TensorFlow Inception graph of 2015-12-05 with which
 * FID (Heusel et al. 2017, eq. 6 on its 2048-d pool features) and IS (Salimans et al. 2016, on its
 * 1008-way softmax) are defined, in the layout of pytorch-fid's `fid_inception_v3` (which NVlabs/
 * edm's fid.py loads as the same graph). Architecture: Szegedy et al. 2016, "Rethinking the
 * Inception Architecture", Table 1 and Figures 5-7; the layer table is in `inception_params.ts`.
 *
 * What makes it the FID graph rather than torchvision's Inception-v3:
 * - the average pools inside the mixed blocks (Mixed_5b-d, 6b-e, 7b) ignore the zero padding
 *   (TensorFlow's "same" average pool, PyTorch's `count_include_pad=False`);
 * - the last block (Mixed_7c) max-pools its pool branch instead of average-pooling it;
 * - 1008 classes (fc 2048 -> 1008), no auxiliary head.
 *
 * Input: images in [-1, 1] (the toolkit's range, which is what pytorch-fid's `normalize_input`
 * maps [0, 1] to), grayscale repeated to 3 channels, resized to 299x299 bilinearly with half-pixel
 * centres (PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`, as pytorch-fid does).
 * Each `BasicConv2d` is conv (no bias) + BatchNorm (eps 0.001) + ReLU; BatchNorm is folded into
 * the conv at load time (`w' = w * gamma / sqrt(var + eps)`, `b' = beta - mean * gamma / sqrt(var
 * + eps)`), so the forward pass is 94 biased convolutions.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { UserError } from "../core/errors.ts";
import { type HostTensor, readSafetensors, SafetensorsError } from "../core/safetensors.ts";
import type { FeatureNetwork } from "./types.ts";
import {
  INCEPTION_V3_BN_EPS,
  INCEPTION_V3_CONVS,
  INCEPTION_V3_FEATURE_DIM,
  INCEPTION_V3_INPUT_SIZE,
  INCEPTION_V3_NUM_CLASSES,
  inceptionV3TensorSpecs,
} from "./inception_params.ts";

/** A loaded Inception-v3: a {@linkcode FeatureNetwork} that owns its weights until disposed. */
export interface InceptionV3 extends FeatureNetwork {
  /**
   * Pool features [N, 2048] (non-negative) and logits [N, 1008] of images [N, H, W, C] in [-1, 1]
   * with C = 1 or 3. The caller owns both results; `images` is neither disposed nor changed.
   */
  apply(images: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D };
  /** Frees the weights; `apply` throws afterwards. */
  dispose(): void;
}

/** Options of {@linkcode createInceptionV3}. */
export interface CreateInceptionV3Options {
  /** Where the weights came from, named in error messages. @default "(in-memory weights)" */
  source?: string;
}

interface FoldedConv {
  filter: tf.Tensor4D;
  bias: tf.Tensor1D;
  strides: number;
  pad: "valid" | "same";
}

const CONVERT_HINT = "convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with " +
  "recipes/convert_inception.py";

/**
 * Builds the network from PyTorch-layout weights (the state-dict names and shapes of
 * `inceptionV3TensorSpecs()`; extra tensors such as `num_batches_tracked` are ignored). Conv
 * weights `[out, in, kh, kw]` become `[kh, kw, in, out]` with BatchNorm folded in; fc `[1008,
 * 2048]` becomes `[2048, 1008]`.
 *
 * @param weights Host tensors by name; read, not kept.
 * @param options See {@linkcode CreateInceptionV3Options}.
 * @returns The network; the caller owns it and must call `dispose()`.
 * @throws {UserError} When a tensor is missing, not floating point, or has the wrong shape (the
 *   message names the tensor, the shapes and the source).
 * @example Random weights (the real ones come from {@linkcode loadInceptionV3})
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { Rng } from "../core/rng.ts";
 * import { randomInceptionV3Weights } from "./inception_params.ts";
 * import { createInceptionV3 } from "./inception_v3.ts";
 * await selectBackend({ log: () => {} });
 * const net = createInceptionV3(randomInceptionV3Weights(new Rng(0)));
 * const images = tf.zeros([1, 28, 28, 1]) as tf.Tensor4D;
 * const { features, logits } = net.apply(images); // [1, 2048], [1, 1008]
 * tf.dispose([images, features, logits]);
 * net.dispose();
 * ```
 */
export function createInceptionV3(
  weights: Record<string, HostTensor>,
  options: CreateInceptionV3Options = {},
): InceptionV3 {
  const { source = "(in-memory weights)" } = options;
  checkWeights(weights, source);
  const convs = new Map<string, FoldedConv>();
  let fcWeight: tf.Tensor2D | null = null;
  let fcBias: tf.Tensor1D | null = null;
  try {
    for (const c of INCEPTION_V3_CONVS) {
      const { filter, bias } = foldConv(c.name, weights);
      // Kept, so a network built inside a caller's tf.tidy outlives it.
      convs.set(c.name, {
        filter: tf.keep(
          tf.tensor4d(filter, [c.kernel[0], c.kernel[1], c.inChannels, c.outChannels]),
        ),
        bias: tf.keep(tf.tensor1d(bias)),
        strides: c.stride,
        pad: c.pad,
      });
    }
    const [k, d] = [INCEPTION_V3_NUM_CLASSES, INCEPTION_V3_FEATURE_DIM];
    fcWeight = tf.keep(tf.tensor2d(transpose2d(weights["fc.weight"].data, k, d), [d, k]));
    fcBias = tf.keep(tf.tensor1d(Float32Array.from(weights["fc.bias"].data)));
  } catch (e) {
    for (const c of convs.values()) tf.dispose([c.filter, c.bias]);
    tf.dispose([fcWeight, fcBias].filter((t) => t !== null));
    throw e;
  }
  const fc = { weight: fcWeight, bias: fcBias };
  let disposed = false;
  return {
    name: "inception-v3",
    featureDim: INCEPTION_V3_FEATURE_DIM,
    numClasses: INCEPTION_V3_NUM_CLASSES,
    apply(images: tf.Tensor4D): { features: tf.Tensor2D; logits: tf.Tensor2D } {
      if (disposed) throw new Error("InceptionV3.apply: the network was disposed");
      checkImages(images);
      return tf.tidy(() => {
        const features = forward(convs, prepare(images));
        const logits = tf.fused.matMul({ a: features, b: fc.weight, bias: fc.bias });
        return { features, logits: logits as tf.Tensor2D };
      });
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      for (const c of convs.values()) tf.dispose([c.filter, c.bias]);
      tf.dispose([fc.weight, fc.bias]);
    },
  };
}

/**
 * Loads the FID Inception-v3 from a safetensors file in PyTorch layout, as written by
 * `recipes/convert_inception.py` from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`.
 *
 * @param path The `.safetensors` file.
 * @returns The network; the caller owns it and must call `dispose()`.
 * @throws {UserError} When the file is missing, corrupt, or lacks a tensor or has one of the
 *   wrong shape (the message names it and how to make a good file).
 * @example Features for FID
 * ```ts ignore
 * const net = await loadInceptionV3("weights/pt_inception-2015-12-05.safetensors");
 * const { features } = net.apply(images); // [N, 2048]
 * ```
 */
export async function loadInceptionV3(path: string): Promise<InceptionV3> {
  let tensors: Record<string, HostTensor>;
  try {
    ({ tensors } = await readSafetensors(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(`no Inception-v3 weights at ${path}: ${CONVERT_HINT}`, { cause: e });
    }
    if (e instanceof SafetensorsError) {
      throw new UserError(`${e.message}; ${CONVERT_HINT}`, { cause: e });
    }
    throw e;
  }
  return createInceptionV3(tensors, { source: path });
}

function checkWeights(weights: Record<string, HostTensor>, source: string): void {
  if (weights === null || typeof weights !== "object") {
    throw new TypeError(`createInceptionV3 needs a record of host tensors, got ${weights}`);
  }
  for (const { name, shape } of inceptionV3TensorSpecs()) {
    const t = weights[name];
    const where = `Inception-v3 weights ${source}`;
    if (t === undefined) {
      throw new UserError(`${where}: tensor "${name}" is missing; ${CONVERT_HINT}`);
    }
    if (!(t.data instanceof Float32Array)) {
      throw new UserError(`${where}: tensor "${name}" is not floating point; ${CONVERT_HINT}`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (
      t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) ||
      t.data.length !== count
    ) {
      throw new UserError(
        `${where}: tensor "${name}" has shape [${t.shape}] but the FID Inception-v3 needs ` +
          `[${shape}] (PyTorch layout); ${CONVERT_HINT}`,
      );
    }
  }
}

// OIHW conv weight times the BatchNorm scale per output channel, laid out HWIO; the bias is the
// BatchNorm shift. Float64 for the scale so folding adds no error beyond the final rounding.
function foldConv(
  name: string,
  weights: Record<string, HostTensor>,
): { filter: Float32Array; bias: Float32Array } {
  const w = weights[`${name}.conv.weight`];
  const [o, ci, kh, kw] = w.shape;
  const gamma = weights[`${name}.bn.weight`].data;
  const beta = weights[`${name}.bn.bias`].data;
  const mean = weights[`${name}.bn.running_mean`].data;
  const variance = weights[`${name}.bn.running_var`].data;
  const filter = new Float32Array(w.data.length);
  const bias = new Float32Array(o);
  for (let oc = 0; oc < o; oc++) {
    const scale = gamma[oc] / Math.sqrt(variance[oc] + INCEPTION_V3_BN_EPS);
    bias[oc] = beta[oc] - mean[oc] * scale;
    for (let ic = 0; ic < ci; ic++) {
      for (let h = 0; h < kh; h++) {
        for (let x = 0; x < kw; x++) {
          filter[((h * kw + x) * ci + ic) * o + oc] = w.data[((oc * ci + ic) * kh + h) * kw + x] *
            scale;
        }
      }
    }
  }
  return { filter, bias };
}

function transpose2d(data: Float32Array | Int32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

function checkImages(images: tf.Tensor4D): void {
  if (!(images instanceof tf.Tensor) || images.rank !== 4) {
    throw new TypeError(
      `InceptionV3.apply needs images [N, H, W, C], got ${
        images instanceof tf.Tensor ? `shape [${images.shape}]` : typeof images
      }`,
    );
  }
  const [n, h, w, c] = images.shape;
  if (c !== 1 && c !== 3) {
    throw new RangeError(
      `InceptionV3.apply: images have ${c} channels; pass grayscale (1) or RGB (3) images`,
    );
  }
  if (n < 1 || h < 1 || w < 1) {
    throw new RangeError(`InceptionV3.apply: empty batch or image, shape [${images.shape}]`);
  }
  if (images.dtype !== "float32") {
    throw new TypeError(`InceptionV3.apply needs float32 images in [-1, 1], got ${images.dtype}`);
  }
}

// [N, H, W, 1 | 3] in [-1, 1] -> [N, 299, 299, 3]. Resizing is affine-invariant (the weights sum
// to one), so resizing [-1, 1] images equals pytorch-fid's resize of [0, 1] images then 2x - 1.
function prepare(images: tf.Tensor4D): tf.Tensor4D {
  const s = INCEPTION_V3_INPUT_SIZE;
  const [, h, w, c] = images.shape;
  const rgb = c === 1 ? tf.tile(images, [1, 1, 1, 3]) : images;
  if (h === s && w === s) return rgb;
  return tf.image.resizeBilinear(rgb, [s, s], false, true);
}

type Layer = (name: string, x: tf.Tensor4D) => tf.Tensor4D;

// The whole trunk; each block runs in its own tidy so a block's intermediates are freed as soon
// as its output exists (peak memory is a few blocks, not the whole graph).
function forward(convs: Map<string, FoldedConv>, x: tf.Tensor4D): tf.Tensor2D {
  const layer: Layer = (name, input) => {
    const c = convs.get(name)!;
    return tf.relu(
      tf.fused.conv2d({ x: input, filter: c.filter, bias: c.bias, strides: c.strides, pad: c.pad }),
    );
  };
  const block = (f: (x: tf.Tensor4D) => tf.Tensor4D) => (input: tf.Tensor4D) =>
    tf.tidy(() => f(input));
  const stem = block((y) => {
    y = layer("Conv2d_1a_3x3", y); // 149
    y = layer("Conv2d_2a_3x3", y); // 147
    y = layer("Conv2d_2b_3x3", y);
    y = tf.maxPool(y, 3, 2, "valid"); // 73
    y = layer("Conv2d_3b_1x1", y);
    y = layer("Conv2d_4a_3x3", y); // 71
    return tf.maxPool(y, 3, 2, "valid"); // 35
  });
  const steps: ((x: tf.Tensor4D) => tf.Tensor4D)[] = [
    stem,
    ...["Mixed_5b", "Mixed_5c", "Mixed_5d"].map((m) => block((y) => mixedA(layer, m, y))),
    block((y) => mixedB(layer, "Mixed_6a", y)), // 17
    ...["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"].map((m) =>
      block((y) => mixedC(layer, m, y))
    ),
    block((y) => mixedD(layer, "Mixed_7a", y)), // 8
    block((y) => mixedE(layer, "Mixed_7b", y, "avg")),
    block((y) => mixedE(layer, "Mixed_7c", y, "max")),
  ];
  let y = x;
  for (const step of steps) {
    const next = step(y);
    if (y !== x) y.dispose();
    y = next;
  }
  return tf.mean(y, [1, 2]) as tf.Tensor2D;
}

// TensorFlow's stride-1 "same" average pool divides by the number of real (unpadded) pixels:
// PyTorch's count_include_pad=False, the FID graph's choice.
function poolSame(x: tf.Tensor4D, kind: "avg" | "max"): tf.Tensor4D {
  return kind === "avg" ? tf.avgPool(x, 3, 1, "same") : tf.maxPool(x, 3, 1, "same");
}

function mixedA(layer: Layer, m: string, x: tf.Tensor4D): tf.Tensor4D {
  const b1 = layer(`${m}.branch1x1`, x);
  const b5 = layer(`${m}.branch5x5_2`, layer(`${m}.branch5x5_1`, x));
  let b3 = layer(`${m}.branch3x3dbl_1`, x);
  b3 = layer(`${m}.branch3x3dbl_3`, layer(`${m}.branch3x3dbl_2`, b3));
  const bp = layer(`${m}.branch_pool`, poolSame(x, "avg"));
  return tf.concat([b1, b5, b3, bp], 3);
}

function mixedB(layer: Layer, m: string, x: tf.Tensor4D): tf.Tensor4D {
  const b3 = layer(`${m}.branch3x3`, x);
  let bd = layer(`${m}.branch3x3dbl_1`, x);
  bd = layer(`${m}.branch3x3dbl_3`, layer(`${m}.branch3x3dbl_2`, bd));
  return tf.concat([b3, bd, tf.maxPool(x, 3, 2, "valid")], 3);
}

function mixedC(layer: Layer, m: string, x: tf.Tensor4D): tf.Tensor4D {
  const b1 = layer(`${m}.branch1x1`, x);
  let b7 = layer(`${m}.branch7x7_1`, x);
  b7 = layer(`${m}.branch7x7_3`, layer(`${m}.branch7x7_2`, b7));
  let bd = layer(`${m}.branch7x7dbl_1`, x);
  for (const i of [2, 3, 4, 5]) bd = layer(`${m}.branch7x7dbl_${i}`, bd);
  const bp = layer(`${m}.branch_pool`, poolSame(x, "avg"));
  return tf.concat([b1, b7, bd, bp], 3);
}

function mixedD(layer: Layer, m: string, x: tf.Tensor4D): tf.Tensor4D {
  const b3 = layer(`${m}.branch3x3_2`, layer(`${m}.branch3x3_1`, x));
  let b7 = layer(`${m}.branch7x7x3_1`, x);
  for (const i of [2, 3, 4]) b7 = layer(`${m}.branch7x7x3_${i}`, b7);
  return tf.concat([b3, b7, tf.maxPool(x, 3, 2, "valid")], 3);
}

function mixedE(layer: Layer, m: string, x: tf.Tensor4D, pool: "avg" | "max"): tf.Tensor4D {
  const b1 = layer(`${m}.branch1x1`, x);
  const s = layer(`${m}.branch3x3_1`, x);
  const b3 = [layer(`${m}.branch3x3_2a`, s), layer(`${m}.branch3x3_2b`, s)];
  let d = layer(`${m}.branch3x3dbl_1`, x);
  d = layer(`${m}.branch3x3dbl_2`, d);
  const bd = [layer(`${m}.branch3x3dbl_3a`, d), layer(`${m}.branch3x3dbl_3b`, d)];
  const bp = layer(`${m}.branch_pool`, poolSame(x, pool));
  return tf.concat([b1, ...b3, ...bd, bp], 3);
}
