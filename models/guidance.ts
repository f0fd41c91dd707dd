/**
 * Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6,
 * written for the denoiser as k-diffusion and diffusers do):
 * `D_w(x; sigma, c) = D(x; sigma, null) + w (D(x; sigma, c) - D(x; sigma, null))`.
 * w = 0 is the unconditional denoiser, w = 1 the conditional one (both returned exactly, with one
 * evaluation), w > 1 strengthens the condition. (The paper's eq. 6 writes (1 + w') eps_c - w' eps_u,
 * i.e. w = 1 + w'.) The null condition is the all-zero one-hot label that `--cond-drop` training
 * (`training/label_dropout.ts`) shows the network. It is a {@linkcode Denoiser}, so every
 * sampler takes it; for 0 < w != 1 both branches run in one batched call (2N images).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Conditioning, Denoiser } from "../core/types.ts";

/** Options of {@linkcode guidedDenoiser}. */
export interface GuidanceOptions {
  /** Guidance scale w >= 0 (0: unconditional, 1: conditional). @default 1 */
  scale?: number;
}

/**
 * Wraps a class-conditional denoiser with classifier-free guidance.
 *
 * @param denoiser A denoiser trained with label dropout.
 * @param options The guidance scale.
 * @returns The guided denoiser; calls without class labels pass straight through.
 * @throws {RangeError} For a negative or non-finite scale.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { guidedDenoiser } from "./guidance.ts";
 * const base = (x: tf.Tensor) => tf.zerosLike(x);
 * const guided = guidedDenoiser(base, { scale: 3 });
 * ```
 */
export function guidedDenoiser(denoiser: Denoiser, options: GuidanceOptions = {}): Denoiser {
  const { scale = 1 } = options;
  if (!Number.isFinite(scale) || scale < 0) {
    throw new RangeError(`guidance scale must be a finite number >= 0, got ${scale}`);
  }
  return (x: tf.Tensor, sigma: tf.Tensor1D, cond?: Conditioning): tf.Tensor => {
    const labels = cond?.classLabels;
    if (labels === undefined || scale === 1) return denoiser(x, sigma, cond);
    return tf.tidy(() => {
      const nullLabels = tf.zerosLike(labels);
      if (scale === 0) return denoiser(x, sigma, { ...cond, classLabels: nullLabels });
      const n = x.shape[0];
      const both = denoiser(tf.concat([x, x]), tf.concat([sigma, sigma]) as tf.Tensor1D, {
        ...cond,
        classLabels: tf.concat([labels, nullLabels]) as tf.Tensor2D,
        augmentLabels: cond?.augmentLabels && tf.concat([cond.augmentLabels, cond.augmentLabels]),
      });
      const [c, u] = tf.split(both, [n, n]);
      return tf.add(u, tf.mul(tf.sub(c, u), scale));
    });
  };
}
