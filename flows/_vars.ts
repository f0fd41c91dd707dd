/**
 * Variable constructors of the flow layers (tidy, so the initial tensor is not left behind).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** A variable holding `values` (or zeros) of `shape`; `trainable` false for flags and fixed matrices. */
export function flowVariable(
  shape: number[],
  values?: ArrayLike<number>,
  trainable = true,
): tf.Variable {
  return tf.tidy(() =>
    tf.variable(values ? tf.tensor(Float32Array.from(values), shape) : tf.zeros(shape), trainable)
  );
}

/** Rows `[N*H*W, C]` times `m^T` (a `[C, C]` matrix), back to `[N, H, W, C]`: a 1x1 convolution. */
export function pixelMatMulT(x: tf.Tensor4D, m: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const rows = tf.reshape(x, [n * h * w, c]) as tf.Tensor2D;
    return tf.reshape(tf.matMul(rows, m, false, true), [n, h, w, c]) as tf.Tensor4D;
  });
}

/** A `[N]` tensor filled with the scalar tensor `value` (a per-example log-det shared by all). */
export function perExample(n: number, value: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.mul(tf.ones([n]), value) as tf.Tensor1D);
}

/** `log sigmoid(z) = -softplus(-z)`, from kernels with gradients (tf.logSigmoid's custom gradient fails inside a tidy under a tape). */
export function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(z)));
}
