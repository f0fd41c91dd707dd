/**
 * Glow's affine coupling layer (Kingma & Dhariwal 2018, Section 3.3, Table 1 row 3): split the
 * channels into `x_a` (first half) and `x_b`; `(shift, h) = NN(x_a)`, `scale = sigmoid(h + 2)`,
 * `y_b = (x_b + shift) * scale`, `y = concat(x_a, y_b)`, `log|det| = sum log scale`. The sigmoid
 * bounds the scale in (0, 1), which is what keeps Glow's training from the NaNs of an unbounded
 * `exp` (the paper writes `exp(log s)`; openai/glow's code uses `sigmoid(h + 2)`, followed here).
 * The last conv of NN is zero-initialised, so the layer starts as a pure shift of zero: scale
 * `sigmoid(2) = 0.88`, not the identity exactly, as in the reference code.
 *
 * With `additive: true` it is the additive coupling of NICE/Glow: `y_b = x_b + NN(x_a)`,
 * `log|det| = 0`.
 *
 * Conditioning channels given in the context are appended to NN's input.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import { type Bijector, type FlowContext, type FlowResult, sumPerExample } from "./bijector.ts";
import { logSigmoid } from "./_vars.ts";
import { couplingNet, initCouplingNet, netInput } from "./_coupling_net.ts";

/** Options of {@linkcode affineCoupling}. */
export interface AffineCouplingOptions {
  /** Parameter-name prefix. */
  name: string;
  /** Shape `[H, W, C]` of one example; C at least 2. */
  shape: [number, number, number];
  /** Hidden channels of the coupling network. @default 512 */
  hidden?: number;
  /** Additive coupling (`y_b = x_b + NN(x_a)`, log-det 0) instead of affine. @default false */
  additive?: boolean;
  /** Channels of the conditioning input (`context.cond`); 0: unconditional. @default 0 */
  condChannels?: number;
}

/**
 * An affine (or additive) coupling layer.
 *
 * @param options Name, shape, hidden width and kind.
 * @returns The bijector.
 * @throws {RangeError} For fewer than 2 channels.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { affineCoupling } from "./affine_coupling.ts";
 * const coupling = affineCoupling({ name: "cp", shape: [4, 4, 4], hidden: 8 });
 * const params = coupling.init(new Rng(0));
 * const { y, logdet } = coupling.forward(params, tf.randomNormal([2, 4, 4, 4]) as tf.Tensor4D);
 * ```
 */
export function affineCoupling(options: AffineCouplingOptions): Bijector {
  const { name, shape, hidden = 512, additive = false, condChannels = 0 } = options;
  const c = shape[2];
  if (c < 2) throw new RangeError(`affineCoupling "${name}": needs at least 2 channels, got ${c}`);
  const ca = Math.floor(c / 2), cb = c - ca;
  const net = `${name}.net`;
  const transform =
    (dir: 1 | -1) => (params: Params, x: tf.Tensor4D, context?: FlowContext): FlowResult =>
      tf.tidy(() => {
        const [xa, xb] = tf.split(x, [ca, cb], 3) as tf.Tensor4D[];
        const h = couplingNet(params, net, netInput(xa, context?.cond));
        if (additive) {
          const yb = dir === 1 ? tf.add(xb, h) : tf.sub(xb, h);
          return {
            y: tf.concat([xa, yb], 3) as tf.Tensor4D,
            logdet: tf.zeros([x.shape[0]]) as tf.Tensor1D,
          };
        }
        const [shift, raw] = tf.split(h, 2, 3);
        const logScale = logSigmoid(tf.add(raw, 2));
        const yb = dir === 1
          ? tf.mul(tf.add(xb, shift), tf.exp(logScale))
          : tf.sub(tf.mul(xb, tf.exp(tf.neg(logScale))), shift);
        const logdet = tf.mul(sumPerExample(logScale), dir) as tf.Tensor1D;
        return { y: tf.concat([xa, yb], 3) as tf.Tensor4D, logdet };
      });
  return {
    name,
    inShape: shape,
    outShape: shape,
    init: (rng: Rng): Params =>
      initCouplingNet(net, {
        inChannels: ca + condChannels,
        hidden,
        outChannels: additive ? cb : 2 * cb,
      }, rng),
    forward: transform(1),
    inverse: transform(-1),
  };
}
