/**
 * Bits/dim of a set of 8-bit images under a normalizing flow (exact log-likelihood of the
 * uniformly dequantized images, flows/image_likelihood.ts; Glow Section 5, RealNVP Section 4.1):
 * the batch loop and the pooled mean and standard error, in the shape of `bits_per_dim.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import type { FlowModelSpec } from "../training/flow_model_spec.ts";
import { flowLoss } from "../training/flow_loss.ts";
import type { BitsPerDim } from "./bits_per_dim.ts";

/** Options of {@linkcode flowBitsPerDim}. */
export interface FlowBitsPerDimOptions {
  /** The flow's spec (input map, bins). */
  spec: FlowModelSpec;
  /** Dequantization noise. */
  rng: Rng;
  /** Images per batch. @default 128 */
  batchSize?: number;
  /** Called after each batch with the images done. @default undefined */
  onBatch?: (done: number, total: number) => void;
}

/**
 * Bits/dim of `images` (`[N, ...spec.shape]` row-major in [-1, 1]); nats/dim for point sets.
 *
 * @param model The flow.
 * @param params Its weights.
 * @param images The images.
 * @param options Spec, rng, batch size.
 * @returns Mean, standard error and per-image values.
 * @example
 * ```ts ignore
 * const { mean, stdError } = await flowBitsPerDim(model, params, test.images, { spec, rng: new Rng(0) });
 * ```
 */
export async function flowBitsPerDim(
  model: FlowModel,
  params: Params,
  images: Float32Array,
  options: FlowBitsPerDimOptions,
): Promise<BitsPerDim> {
  const { spec, rng, batchSize = 128, onBatch } = options;
  const per = spec.shape[0] * spec.shape[1] * spec.shape[2];
  const n = images.length / per;
  const perImage: number[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const values = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(start * per, (start + m) * per), [m, ...spec.shape]);
      return flowLoss(model, params, x, { spec, rng });
    });
    perImage.push(...await values.data());
    values.dispose();
    onBatch?.(start + m, n);
    await new Promise((r) => setTimeout(r, 0));
  }
  const mean = perImage.reduce((a, b) => a + b, 0) / perImage.length;
  const variance = perImage.reduce((a, b) => a + (b - mean) ** 2, 0) /
    Math.max(1, perImage.length - 1);
  return { mean, stdError: Math.sqrt(variance / perImage.length), perImage };
}
