/**
 * The contracts every paper's module shares (DESIGN.md "Core interfaces").
 *
 * A {@linkcode Denoiser} follows EDM's convention (EDM eq. 2-3): `D(x; sigma) ~ E[y | x]` for
 * `x = y + sigma * n` in unscaled space. A {@linkcode Network} is the raw trainable function `F`
 * that a preconditioner wraps (EDM eq. 7). Samplers, losses and metrics see only a Denoiser.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";

/** Optional conditioning inputs, one row per image. */
export interface Conditioning {
  /** One-hot class labels, shape [N, numClasses]. */
  classLabels?: tf.Tensor2D;
  /** Augmentation parameters of EDM's non-leaky augmentation, shape [N, augmentDim]. */
  augmentLabels?: tf.Tensor2D;
}

/** Extra switches a network reads while training. */
export interface ApplyOptions {
  /** Training mode turns on dropout. @default false */
  training?: boolean;
  /** Uniform [0, 1) draws for dropout masks, when training. */
  uniform?: (shape: number[]) => tf.Tensor;
}

/**
 * A denoiser: given noisy `x` (NHWC or [N, D]) and per-image `sigma` [N], returns the estimate
 * of the clean data, same shape as `x`. It creates new tensors and never disposes its inputs.
 */
export type Denoiser = (
  x: tf.Tensor,
  sigma: tf.Tensor1D,
  cond?: Conditioning,
  opts?: ApplyOptions,
) => tf.Tensor;

/** A raw network `F(x_in; c_noise)`, wrapped by a preconditioner into a {@linkcode Denoiser}. */
export type Network = (
  x: tf.Tensor,
  cNoise: tf.Tensor1D,
  cond?: Conditioning,
  opts?: ApplyOptions,
) => tf.Tensor;
