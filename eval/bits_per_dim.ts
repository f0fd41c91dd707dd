/**
 * Bits/dim of a set of 8-bit images under a denoiser, in batches, through the probability-flow
 * ODE likelihood of `likelihood.ts` (EDM eq. 3 integrated with RK45, Hutchinson divergence,
 * uniform dequantization): the batch loop and the pooled mean and standard error.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import type { Rng } from "../core/rng.ts";
import { type LikelihoodOptions, pfOdeLikelihood } from "./likelihood.ts";

/** Options of {@linkcode bitsPerDimOf}. */
export interface BitsPerDimOptions extends Omit<LikelihoodOptions, "rng"> {
  /** Dequantization noise and probes. */
  rng: Rng;
  /** Images per ODE solve. @default 64 */
  batchSize?: number;
  /** Called after each batch with the images done. @default undefined */
  onBatch?: (done: number, total: number) => void;
}

/** Pooled bits/dim. */
export interface BitsPerDim {
  /** Mean over images. */
  mean: number;
  /** Standard error of the mean. */
  stdError: number;
  /** Per image. */
  perImage: number[];
}

/**
 * Bits/dim of `images` ([N, ...shape] row-major in [-1, 1]).
 *
 * @example
 * ```ts ignore
 * const { mean } = await bitsPerDimOf(denoiser, images, [64, 28, 28, 1], { rng: new Rng(0) });
 * ```
 */
export async function bitsPerDimOf(
  denoiser: Denoiser,
  images: Float32Array,
  shape: readonly number[],
  options: BitsPerDimOptions,
): Promise<BitsPerDim> {
  const { batchSize = 64, onBatch, ...likelihood } = options;
  const [n, ...one] = shape;
  const per = one.reduce((a, b) => a * b, 1);
  const perImage: number[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const x = tf.tensor(images.subarray(start * per, (start + m) * per), [m, ...one]);
    try {
      const r = await pfOdeLikelihood(denoiser, x, likelihood);
      perImage.push(...r.bitsPerDim);
    } finally {
      x.dispose();
    }
    onBatch?.(start + m, n);
  }
  const mean = perImage.reduce((a, b) => a + b, 0) / perImage.length;
  const variance = perImage.reduce((a, b) => a + (b - mean) ** 2, 0) /
    Math.max(1, perImage.length - 1);
  return { mean, stdError: Math.sqrt(variance / perImage.length), perImage };
}
