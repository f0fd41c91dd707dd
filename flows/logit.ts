/**
 * RealNVP's logit pre-transform (Dinh et al. 2017, Section 4.1): data `x` in [0, 1] is mapped to
 * `y = logit(alpha + (1 - 2 alpha) x)`, with `log|det| = sum [log(1 - 2 alpha) - log p - log(1 - p)]`,
 * `p = alpha + (1 - 2 alpha) x`. The paper writes `alpha + (1 - alpha) x`; chrischute/real-nvp
 * uses the symmetric `alpha + (1 - 2 alpha) x` (its `data_constraint = 0.9`, alpha = 0.05),
 * which keeps p away from both 0 and 1; the code's form is followed.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { type Bijector, type FlowResult, sumPerExample } from "./bijector.ts";
import { logSigmoid } from "./_vars.ts";

/** Options of {@linkcode logitTransform}. */
export interface LogitOptions {
  /** Name (no parameters). */
  name: string;
  /** Shape `[H, W, C]` of one example. */
  shape: [number, number, number];
  /** Margin alpha in [0, 0.5). @default 0.05 */
  alpha?: number;
}

/**
 * The logit pre-transform as a bijector.
 *
 * @param options Name, shape and alpha.
 * @returns The bijector.
 * @throws {RangeError} For alpha outside [0, 0.5).
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { logitTransform } from "./logit.ts";
 * const logit = logitTransform({ name: "logit", shape: [2, 2, 1] });
 * const { y } = logit.forward({}, tf.fill([1, 2, 2, 1], 0.5) as tf.Tensor4D); // zeros
 * ```
 */
export function logitTransform(options: LogitOptions): Bijector {
  const { name, shape, alpha = 0.05 } = options;
  if (!(alpha >= 0 && alpha < 0.5)) {
    throw new RangeError(`logitTransform: alpha must be in [0, 0.5), got ${alpha}`);
  }
  const logRange = Math.log(1 - 2 * alpha);
  // log p + log(1 - p) of p = sigmoid(y).
  const logPQ = (y: tf.Tensor) => tf.add(logSigmoid(y), logSigmoid(tf.neg(y)));
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (): Params => ({}),
    forward: (_params: Params, x: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const p = tf.add(tf.mul(x, 1 - 2 * alpha), alpha);
        const y = tf.sub(tf.log(p), tf.log1p(tf.neg(p))) as tf.Tensor4D;
        return { y, logdet: sumPerExample(tf.sub(logRange, logPQ(y))) };
      }),
    inverse: (_params: Params, y: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const x = tf.div(tf.sub(tf.sigmoid(y), alpha), 1 - 2 * alpha) as tf.Tensor4D;
        return { y: x, logdet: sumPerExample(tf.sub(logPQ(y), logRange)) };
      }),
  };
}
