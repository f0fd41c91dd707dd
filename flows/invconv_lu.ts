/**
 * The LU-decomposed invertible 1x1 convolution (Glow, Kingma & Dhariwal 2018, Section 3.2 eq. 10):
 * `W = P L (U + diag(sign * exp(log_s)))` with P a fixed permutation, L unit lower-triangular, U
 * strictly upper-triangular, and `log|det| = H * W_img * sum(log_s)`: the log-determinant costs
 * O(C) and is computed on the device, differentiably. Initialised from the LU factors of a random
 * rotation, as Glow does. P and sign are non-trainable parameters (`<name>.perm`, `<name>.sign`),
 * saved in checkpoints; L and U are stored as full `[C, C]` matrices, masked when used.
 *
 * Precision: the inverse assembles W on the host in float64 and inverts it there (pivoted LU).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import { type Bijector, flowParam, type FlowResult } from "./bijector.ts";
import { inverse, luDecompose, matMul, randomOrthogonal } from "./_matrix64.ts";
import { flowVariable, perExample, pixelMatMulT } from "./_vars.ts";
import type { InvConvOptions } from "./invconv.ts";

/**
 * An LU-decomposed invertible 1x1 convolution.
 *
 * @param options Its name and shape.
 * @returns The bijector (parameters `<name>.perm|sign|lower|upper|log_s`).
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { invConvLu } from "./invconv_lu.ts";
 * const conv = invConvLu({ name: "conv", shape: [4, 4, 3] });
 * const params = conv.init(new Rng(0));
 * const { y, logdet } = conv.forward(params, tf.randomNormal([2, 4, 4, 3]) as tf.Tensor4D);
 * ```
 */
export function invConvLu(options: InvConvOptions): Bijector {
  const { name, shape } = options;
  const [h, w, c] = shape;
  const lowerMask = new Float32Array(c * c), upperMask = new Float32Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      lowerMask[i * c + j] = j < i ? 1 : 0;
      upperMask[i * c + j] = j > i ? 1 : 0;
    }
  }
  const weight = (params: Params): tf.Tensor2D =>
    tf.tidy(() => {
      const p = flowParam(params, `${name}.perm`);
      const l = tf.add(
        tf.mul(flowParam(params, `${name}.lower`), tf.tensor2d(lowerMask, [c, c])),
        tf.eye(c),
      );
      const diag = tf.mul(
        flowParam(params, `${name}.sign`),
        tf.exp(flowParam(params, `${name}.log_s`)),
      );
      const u = tf.add(
        tf.mul(flowParam(params, `${name}.upper`), tf.tensor2d(upperMask, [c, c])),
        tf.mul(tf.eye(c), diag),
      );
      return tf.matMul(p as tf.Tensor2D, tf.matMul(l as tf.Tensor2D, u as tf.Tensor2D));
    });
  return {
    name,
    inShape: shape,
    outShape: shape,
    init(rng: Rng): Params {
      const { perm, lu } = luDecompose(randomOrthogonal(c, rng), c);
      const p = new Float32Array(c * c),
        lower = new Float32Array(c * c),
        upper = new Float32Array(c * c);
      const sign = new Float32Array(c), logS = new Float32Array(c);
      for (let i = 0; i < c; i++) {
        p[perm[i] * c + i] = 1;
        for (let j = 0; j < c; j++) {
          if (j < i) lower[i * c + j] = lu[i * c + j];
          if (j > i) upper[i * c + j] = lu[i * c + j];
        }
        sign[i] = Math.sign(lu[i * c + i]);
        logS[i] = Math.log(Math.abs(lu[i * c + i]));
      }
      return {
        [`${name}.perm`]: flowVariable([c, c], p, false),
        [`${name}.sign`]: flowVariable([c], sign, false),
        [`${name}.lower`]: flowVariable([c, c], lower),
        [`${name}.upper`]: flowVariable([c, c], upper),
        [`${name}.log_s`]: flowVariable([c], logS),
      };
    },
    forward: (params: Params, x: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const logdet = perExample(
          x.shape[0],
          tf.mul(tf.sum(flowParam(params, `${name}.log_s`)), h * w),
        );
        return { y: pixelMatMulT(x, weight(params)), logdet };
      }),
    inverse: (params: Params, y: tf.Tensor4D): FlowResult =>
      tf.tidy(() => {
        const inv = tf.tensor2d(Float32Array.from(inverse(luWeight(params, options), c)), [c, c]);
        const logdet = perExample(
          y.shape[0],
          tf.mul(tf.sum(flowParam(params, `${name}.log_s`)), -h * w),
        );
        return { y: pixelMatMulT(y, inv), logdet };
      }),
  };
}

/**
 * The matrix W of an LU 1x1 convolution's parameters, assembled in float64 (for tests and export).
 *
 * @param params The parameters.
 * @param options The layer's name and shape.
 * @returns W, `[C, C]` row-major.
 * @example
 * ```ts ignore
 * const w = luWeight(params, { name: "conv", shape: [4, 4, 3] });
 * ```
 */
export function luWeight(params: Params, options: InvConvOptions): Float64Array {
  const c = options.shape[2];
  const get = (k: string) =>
    Float64Array.from(flowParam(params, `${options.name}.${k}`).dataSync());
  const [p, lower, upper, sign, logS] = ["perm", "lower", "upper", "sign", "log_s"].map(get);
  const l = new Float64Array(c * c), u = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      l[i * c + j] = j < i ? lower[i * c + j] : i === j ? 1 : 0;
      u[i * c + j] = j > i ? upper[i * c + j] : i === j ? sign[i] * Math.exp(logS[i]) : 0;
    }
  }
  return matMul(p, matMul(l, u, c), c);
}
