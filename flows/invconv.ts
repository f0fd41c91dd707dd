/**
 * The invertible 1x1 convolution (Glow, Kingma & Dhariwal 2018, Section 3.2, Table 1 row 2):
 * every pixel's channel vector is multiplied by a learned `C x C` matrix W, `y = W x`, with
 * `log|det| = H * W_img * log|det W|`. W starts as a random rotation (log-det 0).
 *
 * Precision: `log|det W|` and `W^-1` are computed on the host in float64 (pivoted LU); the
 * gradient of `log|det W|`, `W^-T`, too. The pixel products themselves are float32 matMuls. The
 * inverse is not differentiable in W (sampling needs none); use {@linkcode invConvLu} for a
 * log-det that stays on the device.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import { type Bijector, flowParam, type FlowResult } from "./bijector.ts";
import { inverse, logAbsDet, randomOrthogonal } from "./_matrix64.ts";
import { flowVariable, perExample, pixelMatMulT } from "./_vars.ts";

/** Options of {@linkcode invConv}. */
export interface InvConvOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of one example. */
  shape: [number, number, number];
}

/**
 * `log|det w|` of a square matrix, in float64 on the host, with gradient `w^-T` (also float64).
 *
 * @param w A `[C, C]` matrix.
 * @returns The scalar log-determinant.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { logAbsDeterminant } from "./invconv.ts";
 * const d = logAbsDeterminant(tf.tensor2d([[2, 0], [0, 3]])); // log 6
 * ```
 */
export function logAbsDeterminant(w: tf.Tensor2D): tf.Scalar {
  const op = tf.customGrad((wIn, save) => {
    const m = wIn as tf.Tensor;
    (save as tf.GradSaveFunc)([m]);
    const c = m.shape[0];
    return {
      value: tf.scalar(logAbsDet(m.dataSync(), c)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const inv = inverse(saved[0].dataSync(), c);
        return tf.mul(dy, tf.transpose(tf.tensor2d(Float32Array.from(inv), [c, c])));
      },
    };
  });
  return op(w) as tf.Scalar;
}

/**
 * A plain invertible 1x1 convolution.
 *
 * @param options Its name and shape.
 * @returns The bijector (parameter `<name>.weight`, `[C, C]`).
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { invConv } from "./invconv.ts";
 * const conv = invConv({ name: "conv", shape: [4, 4, 3] });
 * const params = conv.init(new Rng(0));
 * const { y, logdet } = conv.forward(params, tf.randomNormal([2, 4, 4, 3]) as tf.Tensor4D);
 * ```
 */
export function invConv(options: InvConvOptions): Bijector {
  const { name, shape } = options;
  const [h, w, c] = shape;
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (rng: Rng): Params => ({
      [`${name}.weight`]: flowVariable([c, c], randomOrthogonal(c, rng)),
    }),
    forward: (params: Params, x: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const weight = flowParam(params, `${name}.weight`) as tf.Variable<tf.Rank.R2>;
        const logdet = perExample(x.shape[0], tf.mul(logAbsDeterminant(weight), h * w));
        return { y: pixelMatMulT(x, weight), logdet };
      }),
    inverse: (params: Params, y: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const data = flowParam(params, `${name}.weight`).dataSync();
        const inv = tf.tensor2d(Float32Array.from(inverse(data, c)), [c, c]);
        const logdet = perExample(y.shape[0], tf.scalar(-h * w * logAbsDet(data, c)));
        return { y: pixelMatMulT(y, inv), logdet };
      }),
  };
}
