/**
 * The maximum-likelihood loss of a flow, per example: bits/dim of dequantized images
 * (flows/image_likelihood.ts, Glow's objective) or, for continuous point sets, the negative
 * log-density per dimension in nats.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import { imageBitsPerDim } from "../flows/image_likelihood.ts";
import type { FlowModelSpec } from "./flow_model_spec.ts";

/**
 * Per-example loss of `x` (images in [-1, 1] or points, shaped `[N, ...spec.shape]`).
 *
 * @param model The flow.
 * @param params Its parameters.
 * @param x The batch.
 * @param options The spec and the generator of the dequantization noise.
 * @returns `[N]`: bits/dim (images) or nats/dim (points), differentiable in `params`.
 * @example
 * ```ts ignore
 * const loss = tf.mean(flowLoss(model, params, x, { spec, rng }));
 * ```
 */
export function flowLoss(
  model: FlowModel,
  params: Params,
  x: tf.Tensor4D,
  options: { spec: FlowModelSpec; rng: Rng },
): tf.Tensor1D {
  const { spec, rng } = options;
  if (spec.input !== "none") {
    return imageBitsPerDim(model, params, x, { rng, nBins: spec.nBins, input: spec.input });
  }
  return tf.tidy(() =>
    tf.div(tf.neg(model.logProb(params, x)), x.size / x.shape[0]) as tf.Tensor1D
  );
}
