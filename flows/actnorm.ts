/**
 * ActNorm (Glow, Kingma & Dhariwal 2018, Section 3.1 and Table 1 row 1): a per-channel affine map
 * `y = (x + b) * exp(logs)`, `log|det| = H * W * sum(logs)`, whose bias and scale are set from the
 * first batch so that its output has zero mean and unit variance per channel
 * (data-dependent initialisation), then trained as ordinary parameters.
 *
 * The init flag is a non-trainable parameter (`<name>.initialized`, 0 or 1) of the flat map, so it
 * is saved in checkpoints and a resumed run does not re-initialise. A channel that is constant on
 * the init batch (standard deviation below 1e-6) gets scale 1 instead of Glow's `1 / (std + 1e-6)`
 * (which would be 1e6 and blow up on the next batch); its mean is still removed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { type Bijector, type FlowContext, flowParam, type FlowResult } from "./bijector.ts";
import { flowVariable, perExample } from "./_vars.ts";

/** Options of {@linkcode actNorm}. */
export interface ActNormOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of one example. */
  shape: [number, number, number];
}

/** Below this per-channel standard deviation a channel counts as constant (scale 1). */
export const ACTNORM_MIN_STD = 1e-6;

/**
 * An ActNorm layer.
 *
 * @param options Its name and shape.
 * @returns The bijector; run `forward(params, x, { init: true })` once on a first batch.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { actNorm } from "./actnorm.ts";
 * const an = actNorm({ name: "an", shape: [4, 4, 3] });
 * const params = an.init(new Rng(0));
 * const x = tf.randomNormal([8, 4, 4, 3], 5, 2) as tf.Tensor4D;
 * const { y, logdet } = an.forward(params, x, { init: true }); // y: zero mean, unit variance
 * ```
 */
export function actNorm(options: ActNormOptions): Bijector {
  const { name, shape } = options;
  const [h, w, c] = shape;
  const forward = (params: Params, x: tf.Tensor4D, context?: FlowContext): FlowResult => {
    if (context?.init) initialize(params, x);
    return tf.tidy(() => {
      const logs = flowParam(params, `${name}.logs`);
      const y = tf.mul(tf.add(x, flowParam(params, `${name}.bias`)), tf.exp(logs)) as tf.Tensor4D;
      const logdet = perExample(x.shape[0], tf.mul(tf.sum(logs), h * w));
      return { y, logdet };
    });
  };
  const inverse = (params: Params, y: tf.Tensor4D): FlowResult =>
    tf.tidy(() => {
      const logs = flowParam(params, `${name}.logs`);
      const x = tf.sub(
        tf.mul(y, tf.exp(tf.neg(logs))),
        flowParam(params, `${name}.bias`),
      ) as tf.Tensor4D;
      const logdet = perExample(y.shape[0], tf.mul(tf.sum(logs), -h * w));
      return { y: x, logdet };
    });
  function initialize(params: Params, x: tf.Tensor4D): void {
    const flag = flowParam(params, `${name}.initialized`);
    if (flag.dataSync()[0] !== 0) return;
    tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const std = tf.sqrt(variance).dataSync();
      const logs = Float32Array.from(std, (s) => (s > ACTNORM_MIN_STD ? -Math.log(s) : 0));
      flowParam(params, `${name}.bias`).assign(tf.neg(mean));
      flowParam(params, `${name}.logs`).assign(tf.tensor1d(logs));
      flag.assign(tf.scalar(1));
    });
  }
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (): Params => ({
      [`${name}.bias`]: flowVariable([c]),
      [`${name}.logs`]: flowVariable([c]),
      [`${name}.initialized`]: flowVariable([], undefined, false),
    }),
    forward,
    inverse,
  };
}
