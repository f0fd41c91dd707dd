/**
 * Parameter trees: a flat map from dotted names ("enc.32x32_block0.conv0.weight") to
 * tf.Variable, applied by pure functions and saved as safetensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "./rng.ts";

/** Named trainable parameters. */
export type Params = Record<string, tf.Variable>;

/** Total number of scalars in `params`. */
export function countParams(params: Params): number {
  return Object.values(params).reduce((n, v) => n + v.size, 0);
}

/**
 * A tf.Variable filled with `N(0, std^2)` draws from `rng` (or zeros when std is 0).
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { normalVariable } from "./params.ts";
 * const w = normalVariable([3, 3, 1, 8], 0.1, new Rng(0), "conv.weight");
 * ```
 */
export function normalVariable(
  shape: number[],
  std: number,
  rng: Rng,
  name?: string,
): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (std !== 0) { for (let i = 0; i < n; i++) data[i] = std * rng.normal(); }
  return tf.variable(tf.tensor(data, shape, "float32"), true, uniqueName(name));
}

/** A tf.Variable filled with `U(-bound, bound)` draws from `rng`. */
export function uniformVariable(
  shape: number[],
  bound: number,
  rng: Rng,
  name?: string,
): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = bound * (2 * rng.uniform() - 1);
  return tf.variable(tf.tensor(data, shape, "float32"), true, uniqueName(name));
}

/** A tf.Variable of constant value. */
export function constantVariable(shape: number[], value: number, name?: string): tf.Variable {
  return tf.variable(tf.fill(shape, value, "float32"), true, uniqueName(name));
}

/** Disposes every variable in `params`. */
export function disposeParams(params: Params): void {
  for (const v of Object.values(params)) v.dispose();
}

/** Copies values of `src` into the same-named variables of `dst` (shapes must match). */
export function assignParams(dst: Params, src: Record<string, tf.Tensor>): void {
  for (const [k, v] of Object.entries(dst)) {
    const s = src[k];
    if (!s) throw new RangeError(`missing parameter ${k}`);
    v.assign(s);
  }
}

let counter = 0;
// tf variable names must be unique in the engine; the dotted name stays the map key.
function uniqueName(name?: string): string {
  return `${name ?? "param"}__${counter++}`;
}
