/**
 * Data transformations F(x, t) of Neural Diffusion Models (NDM paper, Section 3, eq. 7:
 * `q(z_t | x) = N(alpha_t F(x, t), sigma_t^2 I)`), with time t in [0, 1] (0 the data end):
 *
 * - {@linkcode identityTransform}: `F(x, t) = x`, DDPM/DDIM (Table 1, first row).
 * - {@linkcode scaleTransform}: a fixed linear map `F(x, t) = exp(rate t) x` (a time-dependent
 *   scale, Table 1's `C_t x` with `C_t` a multiple of I), with its closed-form derivative.
 * - {@linkcode learnedTransform}: the learned `F_phi(x, t) = x + t NN_phi(x, t)`, NN a network of
 *   the toolkit's family (U-Net or MLP) with its own weights, fed `c_noise = 1000 t` (the scale of
 *   the DDPM step that the denoiser's time embedding sees). `F_phi(x, 0) = x` for any phi, so the
 *   decoder and z_0 stay tied to the data; and since the U-Net's output layer starts near zero,
 *   a fresh F_phi is the identity up to 1e-5, so NDM training starts from DDPM.
 *
 * dF/dt ({@linkcode transformTimeDerivative}), needed by the continuous objective (eq. 11), is
 * the closed form where a transform has one, else a central difference in t with step
 * h = 5e-3 (one-sided second-order differences within h of the ends). tfjs has no forward-mode
 * autodiff; a central difference costs two F calls, stays differentiable in phi, and in float32
 * its error is about `h^2 |F'''| / 6 + eps_32 |F| / h`, smallest near `h = (3 eps_32)^(1/3) ~ 6e-3`
 * (tested against the closed form of {@linkcode scaleTransform}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Network } from "../core/types.ts";
import { perImageShape } from "./_ddpm_steps.ts";

/** What kind of transformation: DDPM's identity, a fixed linear map, or a learned network. */
export type NdmTransformKind = "identity" | "linear" | "learned";

/**
 * A transformation F(x, t). `apply` takes x [N, ...] and one time per image in [0, 1] ([N]) and
 * returns a new tensor shaped like x; it never disposes its inputs.
 */
export interface NdmTransform {
  /** Which kind; the NDM objective and sampler reduce to DDPM's code for "identity". */
  readonly kind: NdmTransformKind;
  /** F(x, t). */
  apply(x: tf.Tensor, t: tf.Tensor1D, opts?: ApplyOptions): tf.Tensor;
  /** dF/dt in closed form, where known. @default undefined (central difference) */
  timeDerivative?(x: tf.Tensor, t: tf.Tensor1D, opts?: ApplyOptions): tf.Tensor;
}

/**
 * The identity `F(x, t) = x`: NDM with it is DDPM/DDIM (NDM Table 1).
 *
 * @returns The transform.
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { identityTransform } from "./ndm_transform.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const y = identityTransform().apply(tf.ones([2, 3]), tf.tensor1d([0.1, 0.9])); // ones
 * ```
 */
export function identityTransform(): NdmTransform {
  return {
    kind: "identity",
    apply: (x) => tf.clone(x),
    timeDerivative: (x) => tf.zerosLike(x),
  };
}

/** Options of {@linkcode scaleTransform}. */
export interface ScaleTransformOptions {
  /** The rate k of `F(x, t) = exp(k t) x`. @default -1 */
  rate?: number;
}

/**
 * A fixed linear transformation, a time-dependent scale: `F(x, t) = exp(k t) x`, with
 * `dF/dt = k F`. Useful as an analytic case (every NDM quantity is closed-form for it).
 *
 * @param options The rate k.
 * @returns The transform.
 * @throws {RangeError} For a rate that is not finite.
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { scaleTransform } from "./ndm_transform.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const y = scaleTransform({ rate: -1 }).apply(tf.ones([1, 2]), tf.tensor1d([1])); // e^-1
 * ```
 */
export function scaleTransform(options: ScaleTransformOptions = {}): NdmTransform {
  const { rate = -1 } = options;
  if (!Number.isFinite(rate)) throw new RangeError(`rate must be a finite number, got ${rate}`);
  const scale = (x: tf.Tensor, t: tf.Tensor1D) =>
    tf.reshape(tf.exp(tf.mul(t, rate)), perImageShape(x));
  return {
    kind: "linear",
    apply: (x, t) => tf.tidy(() => tf.mul(x, scale(x, t))),
    timeDerivative: (x, t) => tf.tidy(() => tf.mul(x, tf.mul(scale(x, t), rate))),
  };
}

/** Time scale of the learned transform's network input: `c_noise = NETWORK_TIME_SCALE t`. */
export const NETWORK_TIME_SCALE = 1000;

/**
 * The learned transformation `F_phi(x, t) = x + t NN_phi(x, 1000 t)`.
 *
 * @param network The raw network NN_phi (e.g. `buildModel(spec).network(params)`); its output
 *   has the shape of x.
 * @returns The transform (no closed-form derivative: dF/dt is a central difference).
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { learnedTransform } from "./ndm_transform.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const f = learnedTransform((x) => tf.sin(x));
 * const y = f.apply(tf.ones([1, 2]), tf.tensor1d([0.5])); // 1 + 0.5 sin(1)
 * ```
 */
export function learnedTransform(network: Network): NdmTransform {
  return {
    kind: "learned",
    apply: (x, t, opts) =>
      tf.tidy(() => {
        const out = network(x, tf.mul(t, NETWORK_TIME_SCALE) as tf.Tensor1D, undefined, opts);
        return tf.add(x, tf.mul(out, tf.reshape(t, perImageShape(x))));
      }),
  };
}

/** Options of {@linkcode transformTimeDerivative}. */
export interface TimeDerivativeOptions {
  /** Step h of the central difference in t. @default 5e-3 */
  h?: number;
  /** Use the central difference even where a closed form exists (for tests). @default false */
  forceDifference?: boolean;
  /** Apply options passed to F. @default undefined */
  opts?: ApplyOptions;
}

/**
 * dF/dt at (x, t): the transform's closed form, or a central difference
 * `(F(x, t + h) - F(x, t - h)) / 2h`; within h of 0 or 1 the second-order one-sided
 * difference `(-3 F(t) + 4 F(t + h) - F(t + 2h)) / 2h` (mirrored at 1), so F is only evaluated on
 * [0, 1]. Differentiable in the transform's parameters. Call inside `tf.tidy` or dispose.
 *
 * @param transform F.
 * @param x Points [N, ...].
 * @param t One time per image in [0, 1], as plain numbers (the stencil is chosen per image).
 * @param options Step and switches.
 * @returns dF/dt, shaped like x.
 * @throws {RangeError} For h outside (0, 0.25] or t outside [0, 1].
 * @example
 * ```ts
 * import { selectBackend } from "../core/engine.ts";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { scaleTransform, transformTimeDerivative } from "./ndm_transform.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const d = transformTimeDerivative(scaleTransform({ rate: 2 }), tf.ones([1, 1]), [0.5], {
 *   forceDifference: true,
 * }); // ~ 2 e
 * ```
 */
export function transformTimeDerivative(
  transform: NdmTransform,
  x: tf.Tensor,
  t: ArrayLike<number>,
  options: TimeDerivativeOptions = {},
): tf.Tensor {
  const { h = 5e-3, forceDifference = false, opts } = options;
  if (!(h > 0 && h <= 0.25)) throw new RangeError(`h must be in (0, 0.25], got ${h}`);
  const n = x.shape[0];
  if (t.length !== n) throw new RangeError(`t has ${t.length} times for a batch of ${n}`);
  for (let i = 0; i < n; i++) {
    if (!(t[i] >= 0 && t[i] <= 1)) throw new RangeError(`t[${i}] = ${t[i]} is outside [0, 1]`);
  }
  if (transform.timeDerivative && !forceDifference) {
    return tf.tidy(() => transform.timeDerivative!(x, tf.tensor1d(Float32Array.from(t)), opts));
  }
  // Three stencil points per image, c0 F(a) + c1 F(b) + c2 F(c): one batched call of F on 3N.
  const times = new Float32Array(3 * n);
  const coef = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    const ti = t[i];
    if (ti - h >= 0 && ti + h <= 1) {
      [times[i], times[n + i], times[2 * n + i]] = [ti - h, ti + h, ti];
      [coef[0][i], coef[1][i], coef[2][i]] = [-1 / (2 * h), 1 / (2 * h), 0];
    } else {
      const s = ti + 2 * h <= 1 ? 1 : -1;
      [times[i], times[n + i], times[2 * n + i]] = [ti, ti + s * h, ti + 2 * s * h];
      [coef[0][i], coef[1][i], coef[2][i]] = [-3 * s / (2 * h), 4 * s / (2 * h), -s / (2 * h)];
    }
  }
  return tf.tidy(() => {
    const stacked = tf.concat([x, x, x], 0);
    const f = transform.apply(stacked, tf.tensor1d(times), opts);
    const parts = tf.split(f, 3, 0);
    const shape = perImageShape(x);
    return parts
      .map((p, j) => tf.mul(p, tf.tensor(coef[j], shape)))
      .reduce((a, b) => tf.add(a, b));
  });
}
