/**
 * The learned top prior of Glow (openai/glow `learntop`: `N(mean, exp(logs)^2)` with a learned,
 * zero-initialised per-channel mean and log-scale), written as the whitening bijector
 * `eps = (z - mean) * exp(-logs)`, `log|det| = -H W sum logs`, so the base of the whole flow is
 * N(0, I).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { type Bijector, flowParam, type FlowResult } from "./bijector.ts";
import { flowVariable, perExample } from "./_vars.ts";

/** Options of {@linkcode topPrior}. */
export interface TopPriorOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of the top latent. */
  shape: [number, number, number];
}

/**
 * A learned per-channel Gaussian prior as a whitening bijector.
 *
 * @param options Name and shape.
 * @returns The bijector (parameters `<name>.mean`, `<name>.logs`).
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { topPrior } from "./top_prior.ts";
 * const top = topPrior({ name: "top", shape: [2, 2, 4] });
 * const { y } = top.forward(top.init(new Rng(0)), tf.ones([1, 2, 2, 4]) as tf.Tensor4D);
 * ```
 */
export function topPrior(options: TopPriorOptions): Bijector {
  const { name, shape } = options;
  const [h, w, c] = shape;
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (): Params => ({
      [`${name}.mean`]: flowVariable([c]),
      [`${name}.logs`]: flowVariable([c]),
    }),
    forward: (params: Params, z: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const logs = flowParam(params, `${name}.logs`);
        const eps = tf.mul(tf.sub(z, flowParam(params, `${name}.mean`)), tf.exp(tf.neg(logs)));
        return {
          y: eps as tf.Tensor4D,
          logdet: perExample(z.shape[0], tf.mul(tf.sum(logs), -h * w)),
        };
      }),
    inverse: (params: Params, eps: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const logs = flowParam(params, `${name}.logs`);
        const z = tf.add(tf.mul(eps, tf.exp(logs)), flowParam(params, `${name}.mean`));
        return {
          y: z as tf.Tensor4D,
          logdet: perExample(eps.shape[0], tf.mul(tf.sum(logs), h * w)),
        };
      }),
  };
}
