/**
 * The network inside a coupling layer (Glow's `NN()`, Section 3.3; as rosinality/glow-pytorch
 * builds it): 3x3 conv + ReLU, 1x1 conv + ReLU, then a zero-initialised 3x3 conv whose output is
 * scaled per channel by `exp(3 * logs)` (Glow's `conv2d_zeros`), so each coupling starts as the
 * identity. Hidden convs start from N(0, 0.05^2) weights and zero biases.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import { conv2d } from "../models/layers.ts";
import { flowParam } from "./bijector.ts";
import { flowVariable } from "./_vars.ts";

/** Sizes of a coupling network. */
export interface CouplingNetSize {
  /** Input channels. */
  inChannels: number;
  /** Hidden channels. */
  hidden: number;
  /** Output channels. */
  outChannels: number;
}

/** Fresh parameters of a coupling network under `name`. */
export function initCouplingNet(name: string, size: CouplingNetSize, rng: Rng): Params {
  const { inChannels: ci, hidden, outChannels: co } = size;
  const normal = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return flowVariable(shape, rng.fillNormal(new Float32Array(n)).map((v) => 0.05 * v));
  };
  return {
    [`${name}.conv0.weight`]: normal([3, 3, ci, hidden]),
    [`${name}.conv0.bias`]: flowVariable([hidden]),
    [`${name}.conv1.weight`]: normal([1, 1, hidden, hidden]),
    [`${name}.conv1.bias`]: flowVariable([hidden]),
    [`${name}.out.weight`]: flowVariable([3, 3, hidden, co]),
    [`${name}.out.bias`]: flowVariable([co]),
    [`${name}.out.logs`]: flowVariable([co]),
  };
}

/** The coupling network's output for `x` `[N, H, W, inChannels]`. */
export function couplingNet(params: Params, name: string, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const layer = (k: string) => ({
      weight: flowParam(params, `${name}.${k}.weight`),
      bias: flowParam(params, `${name}.${k}.bias`),
    });
    const h0 = tf.relu(conv2d(x, layer("conv0")));
    const h1 = tf.relu(conv2d(h0, layer("conv1")));
    const out = conv2d(h1, layer("out"));
    return tf.mul(out, tf.exp(tf.mul(flowParam(params, `${name}.out.logs`), 3))) as tf.Tensor4D;
  });
}

/** The network's input: the conditioning half, with the context's conditioning channels appended. */
export function netInput(xa: tf.Tensor4D, cond: tf.Tensor4D | undefined): tf.Tensor4D {
  return cond ? tf.concat([xa, cond], 3) : xa;
}
