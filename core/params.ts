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

/**
 * Total number of scalars in `params`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { countParams } from "./params.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const n = countParams({ w: tf.variable(tf.zeros([3, 4])) }); // 12
 * ```
 */
export function countParams(params: Params): number {
  return Object.values(params).reduce((n, v) => n + v.size, 0);
}

/**
 * A tf.Variable filled with `U(-bound, bound)` draws from `rng`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "./rng.ts";
 * import { uniformVariable } from "./params.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const w = uniformVariable([3, 3, 1, 8], 0.1, new Rng(0), "conv.weight");
 * ```
 */
export function uniformVariable(
  shape: number[],
  bound: number,
  rng: Rng,
  name?: string,
): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = bound * (2 * rng.uniform() - 1);
  // tidy frees the initial tensor; the variable keeps its own reference to the data.
  return tf.tidy(() => tf.variable(tf.tensor(data, shape, "float32"), true, uniqueName(name)));
}

/**
 * A tf.Variable of constant value.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { constantVariable } from "./params.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const b = constantVariable([8], 0, "conv.bias");
 * ```
 */
export function constantVariable(shape: number[], value: number, name?: string): tf.Variable {
  return tf.tidy(() => tf.variable(tf.fill(shape, value, "float32"), true, uniqueName(name)));
}

/**
 * Disposes every variable in `params`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { disposeParams } from "./params.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * disposeParams({ w: tf.variable(tf.zeros([2])) });
 * ```
 */
export function disposeParams(params: Params): void {
  for (const v of Object.values(params)) v.dispose();
}

let counter = 0;
// tf variable names must be unique in the engine; the dotted name stays the map key.
function uniqueName(name?: string): string {
  return `${name ?? "param"}__${counter++}`;
}
