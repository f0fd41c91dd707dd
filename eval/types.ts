/**
 * Contracts of the evaluation modules: a feature network (Inception-v3 for FID/IS, the built-in
 * MNIST classifier for FD and classifier IS) and feature statistics.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";

/** A network that maps images to features (and, for IS, class logits). */
export interface FeatureNetwork {
  /** Short name used in reports and statistics files, e.g. "inception-v3", "mnist-classifier". */
  readonly name: string;
  /** Width of the feature vectors. */
  readonly featureDim: number;
  /** Number of classes of `logits`, or 0 when the network has none. */
  readonly numClasses: number;
  /**
   * Features of a batch of images [N, H, W, C] in [-1, 1] (the toolkit's image range); the network
   * resizes and rescales as it needs. Returns [N, featureDim] (caller owns it) and logits [N,
   * numClasses] when `numClasses > 0`.
   */
  apply(images: tf.Tensor4D): { features: tf.Tensor2D; logits?: tf.Tensor2D };
}

/** Mean and covariance of a feature set, float64, with the count they came from. */
export interface FeatureStats {
  /** Feature network name the statistics belong to. */
  network: string;
  /** Number of feature vectors. */
  count: number;
  /** Mean, length D. */
  mu: Float64Array;
  /** Covariance, row-major D x D (unbiased, divided by count - 1). */
  sigma: Float64Array;
}
