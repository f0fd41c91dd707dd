/**
 * Pure functional layers for the networks (EDM, Karras et al. 2022, Appendix B.1 and the DDPM++
 * network of Song et al. 2021 that EDM reuses): 'same' 2-D convolution, linear, GroupNorm, SiLU,
 * the positional (transformer) and random Fourier noise embeddings, single-head self-attention,
 * and 2x average-pool / nearest-neighbour resampling. Every layer is a function of its input and
 * an explicit record of weights, so EMA weights run through the same code.
 *
 * Weight layouts are TensorFlow's: conv filters `[kh, kw, in, out]`, linear weights `[in, out]`
 * (PyTorch stores `[out, in, kh, kw]` and `[out, in]`; a checkpoint converter must transpose).
 *
 * Formulations are chosen for speed on the wasm backend (shared/bench/ENGINE-NOTES.md), where
 * kernels that reduce over leading axes or run without XNNPACK are slow: 1x1 convolutions and
 * attention are matMuls (core/wasm_kernels.ts routes them to XNNPACK, batched and transposed ones
 * included); the q|k|v projection is three products rather than one product and a strided split;
 * and a few layers carry hand-written gradients that the chain rule gives in closed form:
 * GroupNorm (`dx = r (g - mean(g) - x_hat mean(g x_hat))`, `g = gamma dy`, from per-channel sums
 * taken as whole-image average pools),
 * SiLU (`dx = dy (s + y (1 - s))`, four ops instead of autodiff's six), convolutions and linear
 * layers with the bias added inside the kernel (`db` as per-channel sums), 2x average pooling
 * (its gradient is nearest 2x upsampling / 4) and nearest 2x upsampling (its gradient is
 * 4 x 2x2 average pooling).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { GROUP_NORM_GRAD_KERNEL, GROUP_NORM_KERNEL } from "../core/dnnl/group_norm.ts";
import { SILU_GRAD_KERNEL, SILU_KERNEL } from "../core/dnnl/elementwise.ts";
import {
  CHANNEL_SUMS_KERNEL,
  GROUP_NORM_SHIFT_KERNEL,
  POOL_KERNEL,
  SCALED_ADD_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  SOFTMAX_KERNEL,
  UNPOOL_KERNEL,
} from "../core/native/kernels.ts";

/** Weights of a convolution or linear layer; `bias` is optional. */
export interface DenseWeights {
  /** Filter `[kh, kw, in, out]` (conv) or matrix `[in, out]` (linear). */
  weight: tf.Tensor;
  /** Bias `[out]`. */
  bias?: tf.Tensor;
}

/** Affine weights of a normalization layer. */
export interface NormWeights {
  /** Per-channel scale `[C]` (gamma). */
  weight: tf.Tensor;
  /** Per-channel shift `[C]` (beta). */
  bias: tf.Tensor;
}

/**
 * Fully connected layer `x W + b` on `[N, in]` rows.
 *
 * @returns A new `[N, out]` tensor; the caller owns it.
 * @example A linear layer on two rows
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { linear } from "./layers.ts";
 * const y = linear(tf.ones([2, 3]), { weight: tf.ones([3, 4]), bias: tf.zeros([4]) });
 * ```
 */
export function linear(x: tf.Tensor2D, layer: DenseWeights): tf.Tensor2D {
  const w = layer.weight as tf.Tensor2D;
  return layer.bias ? linearBiasOp(x, w, layer.bias) as tf.Tensor2D : tf.matMul(x, w);
}

/**
 * 2-D convolution, stride 1, 'same' zero padding, NHWC, with optional bias. A 1x1 kernel runs as
 * a matMul of the `[N*H*W, C]` pixels (fast forward and gradients on wasm).
 *
 * @param x Input `[N, H, W, in]`.
 * @param layer Filter `[k, k, in, out]` (k odd) and bias `[out]`.
 * @returns A new `[N, H, W, out]` tensor; the caller owns it.
 * @throws {RangeError} When the filter is not square and odd, or its input channels differ.
 * @example A 3x3 convolution keeps the spatial size
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { conv2d } from "./layers.ts";
 * const y = conv2d(tf.ones([1, 4, 4, 2]), { weight: tf.ones([3, 3, 2, 5]) }); // [1, 4, 4, 5]
 * ```
 */
export function conv2d(x: tf.Tensor4D, layer: DenseWeights): tf.Tensor4D {
  const [kh, kw, ci, co] = layer.weight.shape;
  const [n, h, w, c] = x.shape;
  if (kh !== kw || kh % 2 !== 1 || ci !== c) {
    throw new RangeError(
      `conv2d: filter [${layer.weight.shape}] does not fit input [${x.shape}]: ` +
        `use an odd square kernel with ${c} input channels`,
    );
  }
  return tf.tidy(() => {
    if (kh === 1) {
      const rows = tf.reshape(x, [n * h * w, c]) as tf.Tensor2D;
      const y = linear(rows, { weight: tf.reshape(layer.weight, [ci, co]), bias: layer.bias });
      return tf.reshape(y, [n, h, w, co]) as tf.Tensor4D;
    }
    const filter = layer.weight as tf.Tensor4D;
    return layer.bias
      ? convBiasOp(x, filter, layer.bias) as tf.Tensor4D
      : tf.conv2d(x, filter, 1, "same");
  });
}

/** Options of {@linkcode groupNorm}. */
export interface GroupNormOptions {
  /** Number of groups; must divide the channels. @default min(32, floor(C / 4)) */
  groups?: number;
  /** Added to the variance. @default 1e-5 */
  eps?: number;
  /** Apply SiLU to the result (the norm-then-activation of every U-Net block). @default false */
  silu?: boolean;
  /**
   * `[N, C]`, added to `x` per image and channel before normalizing (the U-Net's embedding
   * shift, {@linkcode addChannelShift}); with the native kernels and no gradient recorded, the
   * sum is never written out. @default none
   */
  shift?: tf.Tensor2D;
}

/**
 * The default group count of EDM's GroupNorm: `min(32, floor(C / 4))` (at least 1).
 *
 * @example Group count for 64 channels
 * ```ts
 * import { defaultGroups } from "./layers.ts";
 * defaultGroups(64); // 16
 * ```
 */
export function defaultGroups(channels: number): number {
  return Math.max(1, Math.min(32, Math.floor(channels / 4)));
}

/**
 * Affine group normalization (Wu and He 2018) of NHWC activations: each image's channels split
 * into `groups` contiguous groups, normalized by their mean and biased variance over H, W and
 * the group's channels, then scaled and shifted per channel, and with `silu` activated.
 *
 * When the native kernels are registered (`core/native/kernels.ts`, else oneDNN's in
 * `core/dnnl/group_norm.ts`) the normalization with its SiLU and their gradient are one kernel
 * call each, of two to six multi-threaded passes instead of eight to fifteen single-threaded ones.
 *
 * @returns A new tensor shaped like `x`; the caller owns it.
 * @throws {RangeError} When `groups` does not divide the channel count.
 * @example Normalize a batch
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { groupNorm } from "./layers.ts";
 * const y = groupNorm(tf.randomNormal([2, 4, 4, 8]), { weight: tf.ones([8]), bias: tf.zeros([8]) });
 * ```
 */
export function groupNorm(
  x: tf.Tensor4D,
  layer: NormWeights,
  options: GroupNormOptions = {},
): tf.Tensor4D {
  const c = x.shape[3];
  const { groups = defaultGroups(c), eps = 1e-5, silu: activate = false } = options;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new RangeError(
      `groupNorm: ${groups} groups do not divide ${c} channels: pick a channel count divisible ` +
        `by min(32, floor(C / 4)) or pass a groups option that divides it`,
    );
  }
  const { shift } = options;
  if (shift !== undefined) {
    const inference = tf.engine().state.gradientDepth === 0;
    if (inference && registered(GROUP_NORM_SHIFT_KERNEL) && x.dtype === "float32") {
      const inputs = { x, shift, gamma: layer.weight, beta: layer.bias };
      return normalizedOnly(GROUP_NORM_SHIFT_KERNEL, inputs, { groups, eps, silu: activate });
    }
    return tf.tidy(() =>
      groupNorm(addChannelShift(x, shift), layer, { ...options, shift: undefined })
    );
  }
  const fused = registered(GROUP_NORM_KERNEL, GROUP_NORM_GRAD_KERNEL);
  if (fused && tf.engine().state.gradientDepth === 0) {
    const inputs = { x, gamma: layer.weight, beta: layer.bias };
    return normalizedOnly(GROUP_NORM_KERNEL, inputs, { groups, eps, silu: activate });
  }
  if (fused) {
    return fusedGroupNormOp(groups, eps, activate)(x, layer.weight, layer.bias) as tf.Tensor4D;
  }
  return tf.tidy(() => {
    const y = groupNormOp(groups, eps)(x, layer.weight, layer.bias) as tf.Tensor4D;
    return activate ? siluOp(y) as tf.Tensor4D : y;
  });
}

/**
 * SiLU (swish) activation `x * sigmoid(x)`.
 *
 * @returns A new tensor; the caller owns it.
 * @example Apply SiLU
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { silu } from "./layers.ts";
 * const y = silu(tf.tensor1d([-1, 0, 1]));
 * ```
 */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => siluOp(x) as T);
}

/**
 * `scale (x + y)` of two float32 tensors of one shape: the U-Net's residual sum
 * `(h + skip) / sqrt(2)`. One multi-threaded pass when the native kernel is registered
 * (`core/native/kernels.ts`), else an add and a multiply; the gradient is `scale dy` for both.
 *
 * @returns A new tensor shaped like `x`; the caller owns it.
 * @example A residual sum
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { scaledAdd } from "./layers.ts";
 * const y = scaledAdd(tf.ones([2, 2]), tf.ones([2, 2]), Math.SQRT1_2); // all sqrt(2)
 * ```
 */
export function scaledAdd<T extends tf.Tensor>(x: T, y: T, scale: number): T {
  const native = registered(SCALED_ADD_KERNEL) &&
    x.dtype === "float32" && y.dtype === "float32" && x.rank === y.rank &&
    x.shape.every((d, i) => d === y.shape[i]);
  if (!native) return tf.tidy(() => tf.mul(tf.add(x, y), scale) as T);
  const op = tf.customGrad((a, b) => ({
    value: tf.engine().runKernel(SCALED_ADD_KERNEL, { x: a as tf.Tensor, y: b as tf.Tensor }, {
      scale,
    }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor) => {
      const g = tf.mul(dy, scale);
      return [g, tf.clone(g)];
    },
  }));
  return op(x, y) as T;
}

/** Options of {@linkcode positionalEmbedding}. */
export interface PositionalEmbeddingOptions {
  /** Output channels (even): half cosines, then half sines. */
  channels: number;
  /** Longest period parameter of the frequencies. @default 10000 */
  maxPositions?: number;
  /**
   * Frequencies `(1 / maxPositions)^(i / (half - 1))` reaching the end point when true (EDM's
   * DDPM++), `(1 / maxPositions)^(i / half)` when false (unet-bench, the transformer's). @default false
   */
  endpoint?: boolean;
}

/**
 * Transformer-style sinusoidal embedding of per-image noise labels (DDPM Appendix B; EDM's
 * `PositionalEmbedding`): `[cos(c f_i), sin(c f_i)]`, `f_i = (1 / maxPositions)^(i / half)`.
 *
 * @param cNoise Noise labels `[N]`.
 * @returns A new `[N, channels]` tensor; the caller owns it.
 * @throws {RangeError} When `channels` is not a positive even integer.
 * @example Embed two noise labels
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { positionalEmbedding } from "./layers.ts";
 * const e = positionalEmbedding(tf.tensor1d([0, 1]), { channels: 8 }); // [2, 8]
 * ```
 */
export function positionalEmbedding(
  cNoise: tf.Tensor1D,
  options: PositionalEmbeddingOptions,
): tf.Tensor2D {
  const { channels, maxPositions = 10000, endpoint = false } = options;
  checkEvenChannels(channels, "positionalEmbedding");
  const half = channels / 2;
  const denom = endpoint ? Math.max(1, half - 1) : half;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.pow(1 / maxPositions, i / denom);
  return sinusoids(cNoise, freqs);
}

/** Options of {@linkcode fourierFrequencies}. */
export interface FourierFrequencyOptions {
  /** Standard deviation of the frequencies (EDM's NCSN++ uses 16). @default 16 */
  scale?: number;
  /** Seed of the generator the frequencies are drawn from. @default 0 */
  seed?: number;
}

/**
 * The fixed random frequencies of a Fourier embedding: `channels / 2` draws of `N(0, scale^2)`
 * from `new Rng(seed)`, so they are recomputed exactly from the seed and never stored.
 *
 * @returns A new Float32Array of length `channels / 2`.
 * @example Draw frequencies from a seed
 * ```ts
 * import { fourierFrequencies } from "./layers.ts";
 * const f = fourierFrequencies(32, { seed: 1 });
 * ```
 */
export function fourierFrequencies(
  channels: number,
  options: FourierFrequencyOptions = {},
): Float32Array {
  const { scale = 16, seed = 0 } = options;
  checkEvenChannels(channels, "fourierFrequencies");
  const rng = new Rng(seed);
  const f = new Float32Array(channels / 2);
  for (let i = 0; i < f.length; i++) f[i] = scale * rng.normal();
  return f;
}

/**
 * Random Fourier feature embedding (NCSN++; EDM's `FourierEmbedding`):
 * `[cos(2 pi f_i c), sin(2 pi f_i c)]` with fixed frequencies `f` from {@linkcode fourierFrequencies}.
 *
 * @param cNoise Noise labels `[N]`.
 * @param freqs Frequencies `f_i` (length `channels / 2`).
 * @returns A new `[N, 2 * freqs.length]` tensor; the caller owns it.
 * @example Embed one noise label
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { fourierEmbedding, fourierFrequencies } from "./layers.ts";
 * const e = fourierEmbedding(tf.tensor1d([0.5]), fourierFrequencies(16)); // [1, 16]
 * ```
 */
export function fourierEmbedding(cNoise: tf.Tensor1D, freqs: Float32Array): tf.Tensor2D {
  return sinusoids(cNoise, freqs.map((f) => 2 * Math.PI * f));
}

/** Weights of a single-head self-attention layer (its norm and residual are the caller's). */
export interface AttentionWeights {
  /** 1x1 projection to q|k|v: weight `[1, 1, C, 3C]` and bias `[3C]`. */
  qkv: DenseWeights;
  /** 1x1 output projection: weight `[1, 1, C, C]` and bias `[C]`. */
  proj: DenseWeights;
}

/**
 * Single-head self-attention over the `H*W` positions of each image (DDPM++ / EDM's attention
 * block without its norm and residual): `q|k|v = qkv(x)` split along channels,
 * `a = softmax(q k^T / sqrt(C)) v`, output `proj(a)`.
 *
 * @returns A new `[N, H, W, C]` tensor; the caller owns it.
 * @example Attend over a 2x2 image
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selfAttention } from "./layers.ts";
 * const c = 4;
 * const y = selfAttention(tf.randomNormal([1, 2, 2, c]), {
 *   qkv: { weight: tf.randomNormal([1, 1, c, 3 * c]) },
 *   proj: { weight: tf.randomNormal([1, 1, c, c]) },
 * });
 * ```
 */
export function selfAttention(x: tf.Tensor4D, layer: AttentionWeights): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const hw = h * w;
  return tf.tidy(() => {
    const rows = tf.reshape(x, [n * hw, c]) as tf.Tensor2D;
    const wqkv = tf.reshape(layer.qkv.weight, [c, 3 * c]);
    const bqkv = layer.qkv.bias;
    // Three products on column blocks of the small weight, instead of one product and a strided
    // split of the large result.
    const project = (i: number) =>
      tf.reshape(
        linear(rows, {
          weight: tf.slice(wqkv, [0, i * c], [c, c]),
          bias: bqkv && tf.slice(bqkv, [i * c], [c]),
        }),
        [n, hw, c],
      ) as tf.Tensor3D;
    const scale = 1 / Math.sqrt(c), k = project(1), v = project(2);
    // The fused kernel scales the logits for free; else scaling q (HW x C) is cheaper than
    // scaling the HW x HW logits.
    const weights = registered(SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL)
      ? scaledSoftmax(tf.matMul(project(0), k, false, true), scale)
      : tf.softmax(tf.matMul(tf.mul(project(0), scale), k, false, true));
    const a = tf.reshape(tf.matMul(weights, v), [n, h, w, c]) as tf.Tensor4D;
    return conv2d(a, layer.proj);
  });
}

/**
 * `softmax(scale x)` along the last axis, value and gradient each one pass of the native kernels
 * (`core/native/kernels.ts`; the caller checks they are registered). The gradient is
 * `scale y (dy - sum(dy y))` from the saved output `y`.
 */
const scaledSoftmax = (x: tf.Tensor, scale: number): tf.Tensor =>
  tf.customGrad((logits, save) => {
    const y = tf.engine().runKernel(SOFTMAX_KERNEL, { x: logits as tf.Tensor }, { scale });
    (save as tf.GradSaveFunc)([y as tf.Tensor]);
    return {
      value: y as tf.Tensor,
      gradFunc: (dy: tf.Tensor, [yS]: tf.Tensor[]) =>
        tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y: yS, dy }, { scale }) as tf.Tensor,
    };
  })(x);

/**
 * 2x2 average pooling with stride 2 (DDPM++'s `[1, 1]` resample filter).
 *
 * @returns A new `[N, H/2, W/2, C]` tensor; the caller owns it.
 * @throws {RangeError} When H or W is odd.
 * @example Halve the resolution
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { downsample } from "./layers.ts";
 * const y = downsample(tf.ones([1, 4, 4, 1])); // [1, 2, 2, 1]
 * ```
 */
export function downsample(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new RangeError(
      `downsample: spatial size ${h}x${w} is odd: the image resolution must divide by 2^(levels-1)`,
    );
  }
  return poolOp(x) as tf.Tensor4D;
}

/**
 * Nearest-neighbour 2x upsampling (DDPM++'s `[1, 1]` transposed resample filter).
 *
 * @returns A new `[N, 2H, 2W, C]` tensor; the caller owns it.
 * @example Double the resolution
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { upsample } from "./layers.ts";
 * const y = upsample(tf.ones([1, 2, 2, 1])); // [1, 4, 4, 1]
 * ```
 */
export function upsample(x: tf.Tensor4D): tf.Tensor4D {
  return unpoolOp(x) as tf.Tensor4D;
}

/** Options of {@linkcode dropout}. */
export interface DropoutOptions {
  /** Probability of zeroing an activation, in [0, 1). */
  rate: number;
  /** Uniform [0, 1) draws of a given shape; this function disposes them. */
  uniform: (shape: number[]) => tf.Tensor;
}

/**
 * Inverted dropout: keeps each activation where its uniform draw is `>= rate` and scales the
 * kept ones by `1 / (1 - rate)`. Randomness comes only from `options.uniform`.
 *
 * @returns A new tensor shaped like `x` (a copy when rate is 0); the caller owns it.
 * @throws {RangeError} When `rate` is outside [0, 1).
 * @example Drop half the activations
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { dropout } from "./layers.ts";
 * const rng = new Rng(0);
 * const uniform = (s: number[]) => tf.tensor(rng.fillUniform(new Float32Array(s.reduce((a, b) => a * b))), s);
 * const y = dropout(tf.ones([2, 8]), { rate: 0.5, uniform });
 * ```
 */
export function dropout<T extends tf.Tensor>(x: T, options: DropoutOptions): T {
  const { rate, uniform } = options;
  if (!(rate >= 0 && rate < 1)) {
    throw new RangeError(`dropout rate ${rate} is outside [0, 1): pass e.g. 0.1`);
  }
  return tf.tidy(() => {
    if (rate === 0) return tf.clone(x);
    const keep = tf.cast(tf.greaterEqual(uniform(x.shape), rate), "float32");
    return tf.mul(x, tf.mul(keep, 1 / (1 - rate)));
  });
}

// ---------------------------------------------------------------------------------------------

function sinusoids(cNoise: tf.Tensor1D, freqs: Float32Array): tf.Tensor2D {
  return tf.tidy(() => {
    const arg = tf.mul(
      tf.reshape(tf.cast(cNoise, "float32"), [-1, 1]),
      tf.tensor2d(freqs, [1, freqs.length]),
    );
    return tf.concat([tf.cos(arg), tf.sin(arg)], 1) as tf.Tensor2D;
  });
}

function checkEvenChannels(channels: number, where: string): void {
  if (!Number.isInteger(channels) || channels < 2 || channels % 2 !== 0) {
    throw new RangeError(`${where}: channels ${channels} must be a positive even integer`);
  }
}

// Whether the current backend has every named kernel (the native ones are registered by
// core/blas/register.ts when their libraries load).
function registered(...names: string[]): boolean {
  const backend = tf.getBackend();
  return names.every((n) => tf.getKernel(n, backend) !== undefined);
}

// Hand-written gradients (see the module doc). Each is the exact derivative of its forward.

/**
 * Sums of `dy` over every axis but the last, `[C]`: the gradient of a bias. On all threads when
 * the native kernel is registered (`core/native/kernels.ts`), else a ones-row matMul (which, unlike
 * a Sum over leading axes, is fast on wasm).
 */
function biasGradient(dy: tf.Tensor): tf.Tensor1D {
  const c = dy.shape[dy.rank - 1];
  const rows = tf.reshape(dy, [-1, c]) as tf.Tensor2D;
  if (registered(CHANNEL_SUMS_KERNEL) && dy.dtype === "float32") {
    return tf.engine().runKernel(CHANNEL_SUMS_KERNEL, { x: rows }) as tf.Tensor1D;
  }
  return tf.reshape(tf.matMul(tf.ones([1, rows.shape[0]]) as tf.Tensor2D, rows), [c]);
}

/**
 * `x W + b` with the bias added inside the product (one pass less over the output than a product
 * and an add; tfjs's own gradient of the fused product sums the bias on one thread), and the
 * closed-form gradients `dy W^T`, `x^T dy` and {@linkcode biasGradient}.
 */
const linearBiasOp = tf.customGrad((x, w, bias, save) => {
  const xt = x as tf.Tensor2D, wt = w as tf.Tensor2D;
  (save as tf.GradSaveFunc)([xt, wt]);
  return {
    value: tf.fused.matMul({ a: xt, b: wt, bias: bias as tf.Tensor }),
    gradFunc: (dy: tf.Tensor, [xS, wS]: tf.Tensor[]) => {
      const g = dy as tf.Tensor2D;
      return [
        tf.matMul(g, wS as tf.Tensor2D, false, true),
        tf.matMul(xS as tf.Tensor2D, g, true, false),
        biasGradient(g),
      ];
    },
  };
});

/**
 * 'Same' convolution with its bias added inside the convolution kernel (one pass less over the
 * output than a convolution and an add), and the closed-form gradients: the two convolution
 * gradient kernels and {@linkcode biasGradient}.
 */
const convBiasOp = tf.customGrad((x, filter, bias, save) => {
  const xt = x as tf.Tensor4D, ft = filter as tf.Tensor4D;
  (save as tf.GradSaveFunc)([xt, ft]);
  return {
    value: tf.fused.conv2d({ x: xt, filter: ft, strides: 1, pad: "same", bias: bias as tf.Tensor }),
    gradFunc: (dy: tf.Tensor, [xS, fS]: tf.Tensor[]) => {
      const attrs = {
        strides: [1, 1],
        pad: "same",
        dataFormat: "NHWC",
        dimRoundingMode: undefined,
      };
      const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: fS }, {
        ...attrs,
        inputShape: xS.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      const df = tf.engine().runKernel("Conv2DBackpropFilter", { x: xS, dy }, {
        ...attrs,
        filterShape: fS.shape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return [dx, df, biasGradient(dy)];
    },
  };
});

/**
 * `h + shift` with a per-image, per-channel `shift` `[N, C]` broadcast over H and W (the U-Net's
 * noise-embedding input to each residual block); its gradient is `dy` and the per-image channel
 * sums of `dy`, on all threads with the native kernel, else a Sum over H and W.
 *
 * @returns A new tensor shaped like `h`; the caller owns it.
 * @example Shift two images by their own per-channel amounts
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { addChannelShift } from "./layers.ts";
 * const y = addChannelShift(tf.zeros([2, 3, 3, 4]), tf.ones([2, 4])); // all ones
 * ```
 */
export function addChannelShift(h: tf.Tensor4D, shift: tf.Tensor2D): tf.Tensor4D {
  const [n, , , c] = h.shape;
  const op = tf.customGrad((a, b) => ({
    value: tf.add(a as tf.Tensor4D, tf.reshape(b as tf.Tensor2D, [n, 1, 1, c])),
    gradFunc: (dy: tf.Tensor) => {
      const native = registered(CHANNEL_SUMS_KERNEL) && dy.dtype === "float32";
      const ds = native
        ? tf.engine().runKernel(CHANNEL_SUMS_KERNEL, { x: dy }) as tf.Tensor
        : tf.reshape(tf.sum(dy, [1, 2]), [n, c]);
      return [tf.clone(dy), ds];
    },
  }));
  return op(h, shift) as tf.Tensor4D;
}

/**
 * SiLU `y = x s`, `s = sigmoid(x)`, with the gradient `dx = dy (s + y (1 - s))`: four full-size
 * ops, where automatic differentiation of the product and the sigmoid takes six. With oneDNN's
 * kernels registered (`core/dnnl/elementwise.ts`) the value and the gradient are one pass each.
 */
function siluOp(x: tf.Tensor): tf.Tensor {
  return registered(SILU_KERNEL, SILU_GRAD_KERNEL) ? fusedSiluOp(x) : composedSiluOp(x);
}

const composedSiluOp = tf.customGrad((x, save) => {
  const s = tf.sigmoid(x as tf.Tensor);
  const y = tf.mul(x as tf.Tensor, s);
  (save as tf.GradSaveFunc)([s, y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, [sS, yS]: tf.Tensor[]) =>
      tf.mul(dy, tf.add(sS, tf.mul(yS, tf.sub(1, sS)))),
  };
});

const fusedSiluOp = tf.customGrad((x, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor]);
  return {
    value: tf.engine().runKernel(SILU_KERNEL, { x: x as tf.Tensor }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, [xS]: tf.Tensor[]) =>
      tf.engine().runKernel(SILU_GRAD_KERNEL, { x: xS, dy }) as tf.Tensor,
  };
});

/** 2x2 average pooling; its gradient spreads `dy / 4` over each 2x2 window. */
const poolOp = (x: tf.Tensor4D): tf.Tensor =>
  nativeResample(x) ? fusedResample(x, POOL_KERNEL, UNPOOL_KERNEL, 0.25) : composedPoolOp(x);

const composedPoolOp = tf.customGrad((x) => {
  const xt = x as tf.Tensor4D;
  return {
    value: tf.avgPool(xt, 2, 2, "valid"),
    gradFunc: (dy: tf.Tensor) => {
      const [, h, w] = xt.shape;
      return tf.mul(tf.image.resizeNearestNeighbor(dy as tf.Tensor4D, [h, w]), 0.25);
    },
  };
});

/** Nearest 2x upsampling; its gradient sums `dy` over each 2x2 window. */
const unpoolOp = (x: tf.Tensor4D): tf.Tensor =>
  nativeResample(x) ? fusedResample(x, UNPOOL_KERNEL, POOL_KERNEL, 1) : composedUnpoolOp(x);

const composedUnpoolOp = tf.customGrad((x) => {
  const xt = x as tf.Tensor4D;
  const [, h, w] = xt.shape;
  return {
    value: tf.image.resizeNearestNeighbor(xt, [2 * h, 2 * w]),
    gradFunc: (dy: tf.Tensor) => tf.mul(tf.avgPool(dy as tf.Tensor4D, 2, 2, "valid"), 4),
  };
});

const nativeResample = (x: tf.Tensor): boolean =>
  registered(POOL_KERNEL, UNPOOL_KERNEL) && x.dtype === "float32";

// Pooling and upsampling are each other's gradient up to the scale (1/4 for the average), so
// one pass each way on the native kernels, the scale included.
const fusedResample = (x: tf.Tensor, forward: string, backward: string, scale: number) =>
  tf.customGrad((t) => ({
    value: tf.engine().runKernel(forward, { x: t as tf.Tensor }, { scale }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(backward, { x: dy }, { scale }) as tf.Tensor,
  }))(x);

// A GroupNorm kernel's output without its statistics (no gradient will need them).
function normalizedOnly(
  kernel: string,
  inputs: tf.NamedTensorMap,
  attrs: { groups: number; eps: number; silu: boolean },
): tf.Tensor4D {
  const [y, mean, rstd] = tf.engine().runKernel(kernel, inputs, attrs) as tf.Tensor[];
  tf.dispose([mean, rstd]);
  return y as tf.Tensor4D;
}

/**
 * GroupNorm (+ SiLU) as one forward and one gradient kernel (`core/native/kernels.ts` or
 * `core/dnnl/group_norm.ts`); with `silu` the gradient kernel recomputes the activation's input
 * from `x` and the statistics, so the tape keeps `x` alone.
 */
function fusedGroupNormOp(groups: number, eps: number, silu: boolean) {
  return tf.customGrad((x, gamma, beta, save) => {
    const inputs = { x: x as tf.Tensor, gamma: gamma as tf.Tensor, beta: beta as tf.Tensor };
    const [y, mean, rstd] = tf.engine().runKernel(GROUP_NORM_KERNEL, inputs, {
      groups,
      eps,
      silu,
    }) as tf.Tensor[];
    (save as tf.GradSaveFunc)([inputs.x, inputs.gamma, inputs.beta, mean, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xS, gammaS, betaS, meanS, rstdS]: tf.Tensor[]) =>
        tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, {
          dy,
          x: xS,
          gamma: gammaS,
          mean: meanS,
          rstd: rstdS,
          ...(silu ? { beta: betaS } : {}),
        }, { groups, silu }) as tf.Tensor[],
    };
  });
}

/**
 * Affine GroupNorm on `[N, H, W, C]` with a closed-form gradient. Per image and group, with
 * `xc = x - mean`, `r = 1 / sqrt(var + eps)`, `x_hat = xc r`, `M = H W C/G`, and per-channel sums
 * over pixels `s1 = sum dy`, `s2 = sum dy xc`:
 * `dx = dy (r gamma) - xc (r^3 sum_c gamma s2 / M) - r sum_c gamma s1 / M`,
 * `dgamma = sum_n r s2`, `dbeta = sum_n s1`.
 *
 * Per-channel means over pixels are an average pool over the whole image (`HW s / M` is their
 * mean over a group's channels), and every per-group factor is spread to `[N, 1, 1, C]` before it
 * meets a full-size tensor: on the wasm backend a reduction over a middle axis, or a broadcast
 * over a short last axis (`[N, HW, G, C/G]` against `[N, 1, G, 1]`), is many times slower.
 */
function groupNormOp(groups: number, eps: number) {
  return tf.customGrad((x, gamma, beta, save) => {
    const [n, h, w, c] = (x as tf.Tensor4D).shape;
    const hw = h * w, cg = c / groups;
    // Means over pixels, per image and channel: [N, H, W, C] -> [N, G, C/G].
    const pixelMeans = (t: tf.Tensor) =>
      tf.reshape(tf.avgPool(t as tf.Tensor4D, [h, w], [h, w], "valid"), [n, groups, cg]);
    // A per-group factor [N, G, 1] repeated over the group's channels: [N, 1, 1, C].
    // (A broadcast product with ones: wasm's Tile takes ~0.5 ms even on tiny tensors.)
    const perChannel = (t: tf.Tensor) => tf.reshape(tf.mul(t, tf.ones([1, 1, cg])), [n, 1, 1, c]);
    const groupMean = (t: tf.Tensor) => tf.mean(t, 2, true); // [N, G, C/G] -> [N, G, 1]
    const xc = tf.sub(x as tf.Tensor, perChannel(groupMean(pixelMeans(x as tf.Tensor))));
    const r = tf.rsqrt(tf.add(groupMean(pixelMeans(tf.square(xc))), eps)); // [N, G, 1]
    const gC = tf.reshape(gamma as tf.Tensor, [1, 1, 1, c]);
    // gamma folds into the small [N, 1, 1, C] factor: one mul and one add at full size.
    const y = tf.add(
      tf.mul(xc, tf.mul(perChannel(r), gC)),
      tf.reshape(beta as tf.Tensor, [1, 1, 1, c]),
    );
    (save as tf.GradSaveFunc)([xc, r]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xcS, rS] = saved;
        const g = tf.reshape(gamma as tf.Tensor, [1, groups, cg]);
        const p1 = pixelMeans(dy); // s1 / HW, [N, G, C/G]
        const p2 = pixelMeans(tf.mul(dy, xcS)); // s2 / HW
        const m1 = groupMean(tf.mul(p1, g)); // mean of g = gamma dy; [N, G, 1]
        const m2 = groupMean(tf.mul(p2, g)); // mean of g xc
        const dx = tf.sub(
          tf.sub(
            tf.mul(dy, tf.mul(perChannel(rS), tf.reshape(g, [1, 1, 1, c]))),
            tf.mul(xcS, perChannel(tf.mul(tf.pow(rS, 3), m2))),
          ),
          perChannel(tf.mul(rS, m1)),
        );
        return [
          dx,
          tf.reshape(tf.mul(tf.sum(tf.mul(p2, rS), 0), hw), [c]),
          tf.reshape(tf.mul(tf.sum(p1, 0), hw), [c]),
        ];
      },
    };
  });
}
