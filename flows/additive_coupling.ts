/**
 * The additive coupling layer (NICE, Dinh et al. 2015, eq. 4; Glow's `flow_coupling=0`):
 * `y_b = x_b + NN(x_a)`, `y = concat(x_a, y_b)`, volume-preserving (`log|det| = 0`). The same layer
 * as {@linkcode affineCoupling} with `additive: true`, named here for discoverability.
 *
 * @module
 */
import { affineCoupling, type AffineCouplingOptions } from "./affine_coupling.ts";
import type { Bijector } from "./bijector.ts";

/**
 * An additive coupling layer.
 *
 * @param options Name, shape and hidden width (`additive` is forced on).
 * @returns The bijector.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { additiveCoupling } from "./additive_coupling.ts";
 * const coupling = additiveCoupling({ name: "add", shape: [4, 4, 4], hidden: 8 });
 * const { y } = coupling.forward(coupling.init(new Rng(0)), tf.ones([1, 4, 4, 4]) as tf.Tensor4D);
 * ```
 */
export function additiveCoupling(options: Omit<AffineCouplingOptions, "additive">): Bijector {
  return affineCoupling({ ...options, additive: true });
}
