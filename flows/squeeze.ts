/**
 * Squeeze (RealNVP, Dinh et al. 2017, Section 3.6; Glow Section 3): space-to-depth, each 2x2
 * block of pixels becomes one pixel with 4x the channels, `[H, W, C] -> [H/2, W/2, 4C]`; a
 * permutation, so `log|det| = 0`. The channel order is openai/glow's `squeeze2d`
 * (channel-major: out channel `4c + 2a + b` holds in channel c at block offset (a, b)).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Bijector, FlowResult } from "./bijector.ts";

/** Options of {@linkcode squeeze}. */
export interface SqueezeOptions {
  /** Name (no parameters). */
  name: string;
  /** Input shape `[H, W, C]`, H and W even. */
  shape: [number, number, number];
}

/**
 * A squeeze layer.
 *
 * @param options Name and input shape.
 * @returns The bijector, outShape `[H/2, W/2, 4C]`.
 * @throws {RangeError} For an odd height or width.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { squeeze } from "./squeeze.ts";
 * const sq = squeeze({ name: "sq", shape: [4, 4, 1] });
 * const { y } = sq.forward({}, tf.zeros([1, 4, 4, 1]) as tf.Tensor4D); // [1, 2, 2, 4]
 * ```
 */
export function squeeze(options: SqueezeOptions): Bijector {
  const { name, shape } = options;
  const [h, w, c] = shape;
  if (h % 2 !== 0 || w % 2 !== 0) {
    throw new RangeError(
      `squeeze "${name}": height and width must be even, got [${shape}]; pad or crop the images`,
    );
  }
  const out: [number, number, number] = [h / 2, w / 2, 4 * c];
  return {
    name,
    inShape: shape,
    outShape: out,
    init: (): Params => ({}),
    forward: (_params: Params, x: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const n = x.shape[0];
        const t = tf.transpose(tf.reshape(x, [n, h / 2, 2, w / 2, 2, c]), [0, 1, 3, 5, 2, 4]);
        return {
          y: tf.reshape(t, [n, ...out]) as tf.Tensor4D,
          logdet: tf.zeros([n]) as tf.Tensor1D,
        };
      }),
    inverse: (_params: Params, y: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const n = y.shape[0];
        const t = tf.transpose(tf.reshape(y, [n, h / 2, w / 2, c, 2, 2]), [0, 1, 4, 2, 5, 3]);
        return {
          y: tf.reshape(t, [n, h, w, c]) as tf.Tensor4D,
          logdet: tf.zeros([n]) as tf.Tensor1D,
        };
      }),
  };
}
