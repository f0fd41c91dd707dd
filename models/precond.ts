/**
 * The preconditioning contract shared by the EDM, VP, VE and iDDPM wrappers (EDM eq. 7, Table 1):
 * `D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma))`.
 *
 * A preconditioner is a {@linkcode Denoiser} function with extra read-only properties
 * ({@linkcode Preconditioned}), like NVlabs/edm's callable precond modules: it can be handed to
 * any sampler or loss as-is, and samplers that need it also find `sigmaMin`, `sigmaMax` and
 * `roundSigma`. Only the four coefficient lines differ between the wrappers.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ApplyOptions, Conditioning, Network } from "../core/types.ts";

/** The four Table 1 preconditioning coefficients at one noise level. */
export interface PrecondCoefficients {
  /** Skip scaling c_skip(sigma). */
  cSkip: number;
  /** Output scaling c_out(sigma). */
  cOut: number;
  /** Input scaling c_in(sigma). */
  cIn: number;
  /** Noise conditioning c_noise(sigma), the network's noise input. */
  cNoise: number;
}

/** Per-image coefficients as tensors of shape [N]; `cSkip: 1` means "no skip scaling". */
export interface TensorCoefficients {
  /** c_skip, shape [N], or the number 1. */
  cSkip: tf.Tensor1D | 1;
  /** c_out, shape [N]. */
  cOut: tf.Tensor1D;
  /** c_in, shape [N]. */
  cIn: tf.Tensor1D;
  /** c_noise, shape [N], float32. */
  cNoise: tf.Tensor1D;
}

/**
 * A preconditioned network: callable as a {@linkcode Denoiser} `(x, sigma, cond?, opts?)`, with
 * the range of noise levels it supports and its rounding to them. Calling it returns a new
 * tensor owned by the caller; `x`, `sigma` and `cond` are never disposed or changed.
 */
export interface Preconditioned {
  (x: tf.Tensor, sigma: tf.Tensor1D, cond?: Conditioning, opts?: ApplyOptions): tf.Tensor;
  /** Which Table 1 column: "edm", "vp", "ve" or "iddpm". */
  readonly kind: string;
  /** Smallest supported noise level (samplers clamp their schedule to it). */
  readonly sigmaMin: number;
  /** Largest supported noise level. */
  readonly sigmaMax: number;
  /** Rounds a noise level to one the network supports (identity except for iDDPM). */
  roundSigma(sigma: number): number;
  /** The four coefficients at a scalar noise level. */
  coefficients(sigma: number): PrecondCoefficients;
  /** The wrapped raw network F. */
  readonly network: Network;
}

/** What a Table 1 column supplies to {@linkcode precondition}. */
export interface PrecondParts {
  /** Which Table 1 column. */
  kind: string;
  /** Tensor coefficients from per-image sigma [N] (called inside a tidy). */
  tensorCoefficients: (sigma: tf.Tensor1D) => TensorCoefficients;
  /** Scalar coefficients. */
  coefficients: (sigma: number) => PrecondCoefficients;
  /** Smallest supported noise level. */
  sigmaMin: number;
  /** Largest supported noise level. */
  sigmaMax: number;
  /** Rounding to supported levels. @default identity */
  roundSigma?: (sigma: number) => number;
}

/**
 * Wraps a raw network with given coefficients into a {@linkcode Preconditioned} denoiser. The
 * per-image coefficients broadcast over all axes of `x` after the first ([N,H,W,C] or [N,D]);
 * conditioning and apply options pass through to the network unchanged.
 *
 * @param network The raw network F.
 * @param parts The column's coefficients and sigma range.
 * @returns The denoiser; each call throws RangeError when sigma's length is not x's batch size.
 * @example A custom column: identity preconditioning
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { precondition } from "./precond.ts";
 * const d = precondition((x) => tf.zerosLike(x), {
 *   kind: "none",
 *   tensorCoefficients: (s) => ({
 *     cSkip: 1,
 *     cOut: tf.onesLike(s),
 *     cIn: tf.onesLike(s),
 *     cNoise: s,
 *   }),
 *   coefficients: (s) => ({ cSkip: 1, cOut: 1, cIn: 1, cNoise: s }),
 *   sigmaMin: 0,
 *   sigmaMax: Infinity,
 * });
 * ```
 */
export function precondition(network: Network, parts: PrecondParts): Preconditioned {
  const denoise = (
    x: tf.Tensor,
    sigma: tf.Tensor1D,
    cond?: Conditioning,
    opts?: ApplyOptions,
  ): tf.Tensor => {
    if (sigma.rank !== 1 || x.rank < 2 || sigma.shape[0] !== x.shape[0]) {
      throw new RangeError(
        `sigma must have shape [N] with N = x.shape[0]; got sigma [${sigma.shape}] for x ` +
          `[${x.shape}]; pass one noise level per image`,
      );
    }
    return tf.tidy(() => {
      const s = sigma.dtype === "float32" ? sigma : tf.cast(sigma, "float32");
      const c = parts.tensorCoefficients(s as tf.Tensor1D);
      const perImage = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
      const f = network(tf.mul(x, tf.reshape(c.cIn, perImage)), c.cNoise, cond, opts);
      const out = tf.mul(f, tf.reshape(c.cOut, perImage));
      return c.cSkip === 1 ? tf.add(x, out) : tf.add(tf.mul(x, tf.reshape(c.cSkip, perImage)), out);
    });
  };
  return Object.assign(denoise, {
    kind: parts.kind,
    sigmaMin: parts.sigmaMin,
    sigmaMax: parts.sigmaMax,
    roundSigma: parts.roundSigma ?? ((sigma: number) => sigma),
    coefficients: parts.coefficients,
    network,
  });
}
