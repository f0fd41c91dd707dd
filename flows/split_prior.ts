/**
 * Split with a learned conditional prior (Glow, openai/glow `split2d`; RealNVP Section 3.6's
 * factoring out): the channels split into `z1` (kept, first half) and `z2` (factored out); a
 * zero-initialised 3x3 conv of `z1` gives the mean and log-scale of a Gaussian for `z2`, and the
 * layer whitens `z2` with it: `eps = (z2 - mean) * exp(-logs)`, output `concat(z1, eps)`,
 * `log|det| = -sum logs`. The multiscale model then scores `eps` under N(0, I), which is the same
 * as scoring `z2` under `N(mean(z1), exp(logs(z1))^2)`; sampling at temperature T draws
 * `eps ~ N(0, T^2)`, i.e. `z2 = mean + T exp(logs) eps'` as Glow does.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { conv2d } from "../models/layers.ts";
import { type Bijector, flowParam, type FlowResult, sumPerExample } from "./bijector.ts";
import { flowVariable } from "./_vars.ts";

/** Options of {@linkcode splitPrior}. */
export interface SplitPriorOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of one example, C even. */
  shape: [number, number, number];
}

/**
 * A split layer with a learned conditional Gaussian prior.
 *
 * @param options Name and shape.
 * @returns The bijector (shape-preserving; the last C/2 channels of its output are the whitened
 *   factored-out half).
 * @throws {RangeError} For an odd channel count.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { splitPrior } from "./split_prior.ts";
 * const split = splitPrior({ name: "split", shape: [2, 2, 4] });
 * const { y } = split.forward(split.init(new Rng(0)), tf.ones([1, 2, 2, 4]) as tf.Tensor4D);
 * ```
 */
export function splitPrior(options: SplitPriorOptions): Bijector {
  const { name, shape } = options;
  const c = shape[2];
  if (c % 2 !== 0) {
    throw new RangeError(`splitPrior "${name}": needs an even channel count, got ${c}`);
  }
  const half = c / 2;
  const prior = (params: Params, z1: tf.Tensor4D) => {
    const h = conv2d(z1, {
      weight: flowParam(params, `${name}.weight`),
      bias: flowParam(params, `${name}.bias`),
    });
    const scaled = tf.mul(h, tf.exp(tf.mul(flowParam(params, `${name}.logs`), 3)));
    const [mean, logs] = tf.split(scaled, 2, 3);
    return { mean, logs };
  };
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (): Params => ({
      [`${name}.weight`]: flowVariable([3, 3, half, c]),
      [`${name}.bias`]: flowVariable([c]),
      [`${name}.logs`]: flowVariable([c]),
    }),
    forward: (params: Params, x: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const [z1, z2] = tf.split(x, 2, 3) as tf.Tensor4D[];
        const { mean, logs } = prior(params, z1);
        const eps = tf.mul(tf.sub(z2, mean), tf.exp(tf.neg(logs)));
        return { y: tf.concat([z1, eps], 3) as tf.Tensor4D, logdet: tf.neg(sumPerExample(logs)) };
      }),
    inverse: (params: Params, y: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const [z1, eps] = tf.split(y, 2, 3) as tf.Tensor4D[];
        const { mean, logs } = prior(params, z1);
        const z2 = tf.add(mean, tf.mul(eps, tf.exp(logs)));
        return { y: tf.concat([z1, z2], 3) as tf.Tensor4D, logdet: sumPerExample(logs) };
      }),
  };
}
