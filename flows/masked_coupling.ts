/**
 * RealNVP's masked affine coupling (Dinh et al. 2017, Section 3.3-3.4 eq. 8-9): with a binary
 * mask b, `y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x))`, `log|det| = sum (1 - b) * s`.
 * The mask is a spatial checkerboard (`(h + w) % 2`) or channel-wise (first half of the
 * channels), `parity` flipping it between consecutive layers. The log-scale is bounded as
 * chrischute/real-nvp does: `s = scale * tanh(raw)` with a learned per-channel `scale` (start 1).
 * The network is the one of the Glow couplings (zero last layer, so the layer starts as the
 * identity); RealNVP's own ResNet and batch norm are not used (see the module doc of realnvp.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import {
  type Bijector,
  type FlowContext,
  flowParam,
  type FlowResult,
  sumPerExample,
} from "./bijector.ts";
import { couplingNet, initCouplingNet, netInput } from "./_coupling_net.ts";
import { flowVariable } from "./_vars.ts";

/** The two RealNVP mask patterns. */
export type MaskKind = "checkerboard" | "channel";

/** Options of {@linkcode maskedCoupling}. */
export interface MaskedCouplingOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of one example. */
  shape: [number, number, number];
  /** Mask pattern. */
  mask: MaskKind;
  /** Flip the mask (0 or 1). @default 0 */
  parity?: 0 | 1;
  /** Hidden channels of the coupling network. @default 64 */
  hidden?: number;
  /** Channels of the conditioning input (`context.cond`); 0: unconditional. @default 0 */
  condChannels?: number;
}

/**
 * The mask b `[H, W, C]` (1 = passed through and conditioned on).
 *
 * @param kind Checkerboard or channel-wise.
 * @param options The shape and the parity.
 * @returns The mask values, row-major HWC.
 * @example
 * ```ts
 * import { couplingMask } from "./masked_coupling.ts";
 * const b = couplingMask("checkerboard", { shape: [2, 2, 1] }); // 1 0 / 0 1
 * ```
 */
export function couplingMask(
  kind: MaskKind,
  options: { shape: [number, number, number]; parity?: 0 | 1 },
): Float32Array {
  const [h, w, c] = options.shape;
  const parity = options.parity ?? 0;
  const m = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      for (let k = 0; k < c; k++) {
        const on = kind === "checkerboard" ? (i + j) % 2 === 0 : k < Math.floor(c / 2);
        m[(i * w + j) * c + k] = on !== (parity === 1) ? 1 : 0;
      }
    }
  }
  return m;
}

/**
 * A RealNVP masked affine coupling layer.
 *
 * @param options Name, shape, mask, parity and hidden width.
 * @returns The bijector.
 * @throws {RangeError} For a channel mask on a single channel.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { maskedCoupling } from "./masked_coupling.ts";
 * const layer = maskedCoupling({ name: "cb", shape: [4, 4, 1], mask: "checkerboard", hidden: 8 });
 * const { y } = layer.forward(layer.init(new Rng(0)), tf.ones([1, 4, 4, 1]) as tf.Tensor4D);
 * ```
 */
export function maskedCoupling(options: MaskedCouplingOptions): Bijector {
  const { name, shape, mask, parity = 0, hidden = 64, condChannels = 0 } = options;
  const c = shape[2];
  if (mask === "channel" && c < 2) {
    throw new RangeError(
      `maskedCoupling "${name}": a channel mask needs at least 2 channels, got ${c}`,
    );
  }
  const bValues = couplingMask(mask, { shape, parity });
  const net = `${name}.net`;
  const transform =
    (dir: 1 | -1) => (params: Params, x: tf.Tensor4D, context?: FlowContext): FlowResult =>
      tf.tidy(() => {
        const b = tf.tensor3d(bValues, shape);
        const notB = tf.sub(1, b);
        const xa = tf.mul(x, b) as tf.Tensor4D;
        const [raw, t0] = tf.split(couplingNet(params, net, netInput(xa, context?.cond)), 2, 3);
        const s = tf.mul(tf.mul(tf.tanh(raw), flowParam(params, `${name}.scale`)), notB);
        const t = tf.mul(t0, notB);
        const y = dir === 1
          ? tf.add(xa, tf.mul(notB, tf.add(tf.mul(x, tf.exp(s)), t)))
          : tf.add(xa, tf.mul(notB, tf.mul(tf.sub(x, t), tf.exp(tf.neg(s)))));
        return { y: y as tf.Tensor4D, logdet: tf.mul(sumPerExample(s), dir) as tf.Tensor1D };
      });
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (rng: Rng): Params => ({
      ...initCouplingNet(net, { inChannels: c + condChannels, hidden, outChannels: 2 * c }, rng),
      [`${name}.scale`]: flowVariable([c], new Float32Array(c).fill(1)),
    }),
    forward: transform(1),
    inverse: transform(-1),
  };
}
