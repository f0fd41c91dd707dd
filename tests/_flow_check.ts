// Brute-force checks shared by the flow tests: Jacobians row by row with tf.grad, their float64
// log-determinants, and random perturbation of a flow's parameters.
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import { logAbsDet } from "../flows/_matrix64.ts";

/** log|det J| of `f` at each example of `x`, J built row by row with tf.grad (float64 det). */
export function bruteLogDet(f: (x: tf.Tensor4D) => tf.Tensor4D, x: tf.Tensor4D): number[] {
  const n = x.shape[0];
  const d = x.size / n;
  const outShape = tf.tidy(() => f(x).shape);
  const jac = Array.from({ length: n }, () => new Float64Array(d * d));
  for (let i = 0; i < d; i++) {
    const g = tf.tidy(() => {
      const pick = tf.reshape(tf.oneHot(tf.fill([n], i, "int32") as tf.Tensor1D, d), outShape);
      return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v as tf.Tensor4D), pick)))(x).dataSync();
    });
    for (let e = 0; e < n; e++) for (let j = 0; j < d; j++) jac[e][i * d + j] = g[e * d + j];
  }
  return jac.map((m) => logAbsDet(m, d));
}

/** Adds N(0, scale^2) to every trainable parameter (so zero-initialised layers do something). */
export function perturb(params: Params, scale: number, seed = 1): void {
  const rng = new Rng(seed);
  for (const v of Object.values(params)) {
    if (!v.trainable) continue;
    tf.tidy(() =>
      v.assign(
        tf.add(v, tf.mul(tf.tensor(rng.fillNormal(new Float32Array(v.size)), v.shape), scale)),
      )
    );
  }
}

/** Largest absolute difference of two tensors. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Largest absolute difference of two tensors. */
export function maxAbs(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]);
}

/** A seeded normal tensor. */
export function randn(shape: number[], seed: number, scale = 1): tf.Tensor4D {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor4d(
    rng.fillNormal(new Float32Array(n)).map((v) => v * scale),
    shape as [number, number, number, number],
  );
}
