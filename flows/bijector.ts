/**
 * The Bijector contract of the flows (Dinh et al. 2017, RealNVP eq. 2-3; Kingma & Dhariwal 2018,
 * Glow Table 1): an invertible map whose forward direction goes from data to latent and whose
 * inverse goes back, each returning its output and the per-example `log|det J|` of the map it
 * applied, so that `log p(x) = log p(z) + log|det dz/dx|`. Tensors are NHWC float32; parameters are
 * a flat {@linkcode Params} map with dotted names (`"level0.step3.actnorm.bias"`) and each
 * bijector only reads its own names, so any number of them share one map. {@linkcode chain}
 * composes them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";

/** The output of a bijector and the per-example `log|det J|` of the map applied. */
export interface FlowResult {
  /** The transformed tensor `[N, H, W, C]` (the caller owns it). */
  y: tf.Tensor4D;
  /** `log|det J|` per example `[N]` (the caller owns it). */
  logdet: tf.Tensor1D;
}

/** Per-call context of a bijector. */
export interface FlowContext {
  /** Conditioning input `[N, H, W, Cc]` at the bijector's resolution, for conditional couplings. @default undefined */
  cond?: tf.Tensor4D;
  /**
   * Data-dependent initialisation pass: ActNorm layers whose init flag is 0 set their parameters
   * from this batch (and raise the flag). Reads values on the host; not for use under a gradient
   * tape. @default false
   */
  init?: boolean;
}

/** An invertible map with a tractable Jacobian log-determinant. */
export interface Bijector {
  /** Dotted prefix of this bijector's parameter names. */
  readonly name: string;
  /** Shape `[H, W, C]` of one input example. */
  readonly inShape: [number, number, number];
  /** Shape `[H, W, C]` of one output example. */
  readonly outShape: [number, number, number];
  /** Fresh parameters (names start with `name + "."`); empty for parameter-free maps. */
  init(rng: Rng): Params;
  /** Data to latent: `y = f(x)` and `log|det df/dx|` per example. Differentiable in `params`. */
  forward(params: Params, x: tf.Tensor4D, context?: FlowContext): FlowResult;
  /** Latent to data: `x = f^-1(y)` and `log|det df^-1/dy|` (= minus the forward one at x). */
  inverse(params: Params, y: tf.Tensor4D, context?: FlowContext): FlowResult;
}

/**
 * The composition `f_n o ... o f_1` of `bijectors` (forward runs them in order, inverse in reverse
 * order), its log-determinant the sum of theirs.
 *
 * @param name Prefix naming the chain (its parts keep their own names).
 * @param bijectors The maps, in forward order; each one's outShape must be the next one's inShape.
 * @returns The composed bijector.
 * @throws {RangeError} For an empty list or shapes that do not connect.
 * @example
 * ```ts ignore
 * const step = chain("step0", [actNorm({ name: "step0.an", shape }), squeeze({ name: "sq", shape })]);
 * ```
 */
export function chain(name: string, bijectors: Bijector[]): Bijector {
  if (bijectors.length === 0) throw new RangeError(`chain "${name}": pass at least one bijector`);
  for (let i = 1; i < bijectors.length; i++) {
    const a = bijectors[i - 1].outShape, b = bijectors[i].inShape;
    if (a.join() !== b.join()) {
      throw new RangeError(
        `chain "${name}": ${bijectors[i - 1].name} outputs [${a}] but ${
          bijectors[i].name
        } takes [${b}]`,
      );
    }
  }
  const run =
    (order: Bijector[], dir: "forward" | "inverse") =>
    (params: Params, x: tf.Tensor4D, context?: FlowContext): FlowResult =>
      tf.tidy(() => {
        let y = x;
        let logdet = tf.zeros([x.shape[0]]) as tf.Tensor1D;
        for (const b of order) {
          const r = b[dir](params, y, context);
          y = r.y;
          logdet = tf.add(logdet, r.logdet);
        }
        return { y, logdet };
      });
  return {
    name,
    inShape: bijectors[0].inShape,
    outShape: bijectors[bijectors.length - 1].outShape,
    init(rng: Rng): Params {
      return Object.assign({}, ...bijectors.map((b) => b.init(rng)));
    },
    forward: run(bijectors, "forward"),
    inverse: run([...bijectors].reverse(), "inverse"),
  };
}

/**
 * A parameter of `params` by its full name, or a RangeError naming the missing key.
 *
 * @param params The parameter map.
 * @param key The dotted name.
 * @returns The variable.
 * @example
 * ```ts ignore
 * const bias = flowParam(params, "step0.actnorm.bias");
 * ```
 */
export function flowParam(params: Params, key: string): tf.Variable {
  const v = params[key];
  if (!v) {
    throw new RangeError(`flow parameter "${key}" is missing: build params with the flow's init()`);
  }
  return v;
}

/**
 * Sum over all but the first axis: the per-example reduction of element-wise log-Jacobians.
 *
 * @param x A tensor `[N, ...]`.
 * @returns `[N]`.
 * @example
 * ```ts ignore
 * const logdet = sumPerExample(tf.log(scale));
 * ```
 */
export function sumPerExample(x: tf.Tensor): tf.Tensor1D {
  return tf.sum(tf.reshape(x, [x.shape[0], -1]), 1) as tf.Tensor1D;
}
