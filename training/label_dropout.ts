/**
 * Label dropout for classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion
 * Guidance", Algorithm 1): each training image's condition is replaced by the null condition with
 * probability p, so one network learns both the conditional and the unconditional denoiser. The
 * null condition here is the all-zero one-hot vector (`models/guidance.ts` uses the same).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";

/**
 * Zeroes each row of `labels` with probability `p`, one uniform draw per row from `rng`.
 * Call inside `tf.tidy`; with p = 0 it returns `labels` itself and draws nothing.
 *
 * @param labels One-hot labels [N, numClasses].
 * @param p Drop probability in [0, 1).
 * @param rng The run's generator.
 * @returns The labels with dropped rows all zero.
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { dropLabels } from "./label_dropout.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const labels = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2], "int32"), 3), "float32") as tf.Tensor2D;
 * const dropped = dropLabels(labels, 0.5, new Rng(0));
 * ```
 */
export function dropLabels(labels: tf.Tensor2D, p: number, rng: Rng): tf.Tensor2D {
  if (!(p >= 0 && p < 1)) throw new RangeError(`label dropout p must be in [0, 1), got ${p}`);
  if (p === 0) return labels;
  const n = labels.shape[0];
  const keep = Float32Array.from({ length: n }, () => (rng.uniform() < p ? 0 : 1));
  return tf.mul(labels, tf.tensor2d(keep, [n, 1])) as tf.Tensor2D;
}
