/**
 * Private helpers of the DDPM modules: per-step coefficients from a chain's float64 tables, for
 * one step shared by the batch or one step per image, and their use on tensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DdpmProcess } from "../schedules/ddpm.ts";

/** [N, 1, ..., 1]: per-image values that broadcast over x's other axes. */
export function perImageShape(x: tf.Tensor): number[] {
  return [x.shape[0], ...x.shape.slice(1).map(() => 1)];
}

/** Per-step values for a batch: one value when t is a number, else one per image. */
export function stepValues(
  process: DdpmProcess,
  t: number | ArrayLike<number>,
  x: tf.Tensor,
  name: string,
  value: (k: number) => number,
  minStep = 1,
): number[] {
  const check = (k: number, where: string) => {
    if (!Number.isInteger(k) || k < minStep || k > process.T) {
      throw new RangeError(
        `${name}${where} = ${k}: steps must be integers in ${minStep}..${process.T}`,
      );
    }
  };
  if (typeof t === "number") {
    check(t, "");
    return [value(t)];
  }
  if (t.length !== x.shape[0]) {
    throw new RangeError(
      `${name} has ${t.length} steps for a batch of ${x.shape[0]}; give one step or one per image`,
    );
  }
  return Array.from(t, (k, i) => {
    check(k, `[${i}]`);
    return value(k);
  });
}

/** a * x + b * y with per-image (or shared) float64 coefficients; a new tensor. */
export function combine(x: tf.Tensor, y: tf.Tensor, a: number[], b: number[]): tf.Tensor {
  if (!tf.util.arraysEqual(x.shape, y.shape)) {
    throw new RangeError(`tensor shapes differ: [${x.shape}] and [${y.shape}]`);
  }
  return tf.tidy(() => {
    if (a.length === 1) return tf.add(tf.mul(x, a[0]), tf.mul(y, b[0]));
    const shape = perImageShape(x);
    return tf.add(
      tf.mul(x, tf.tensor(Float32Array.from(a), shape)),
      tf.mul(y, tf.tensor(Float32Array.from(b), shape)),
    );
  });
}
