/**
 * Discrete-image likelihood of a flow (RealNVP Section 4.1, Glow Section 5; Theis et al. 2016):
 * 8-bit images `k in {0..255}^D` are dequantized with uniform noise, `y = (k' + u) / n_bins` in
 * [0, 1)^D (`k'` the image reduced to `n_bins` levels), mapped to the flow's input space (Glow:
 * `y - 0.5`; RealNVP: the logit pre-transform, with its log-Jacobian), and scored. The discrete
 * log-likelihood bound and bits/dim, per example, are
 *
 *   log P(k) >= log p(y) - D log n_bins,   bits/dim = -(log p(y) - D log n_bins) / (D ln 2),
 *
 * where `p(y)` is the density of y on [0, 1]^D: this is openai/glow's
 * `objective += -log(n_bins) * D` with its `x = k / n_bins - 0.5` input, and chrischute/real-nvp's
 * `bits_per_dim` (which adds the same `log 256` per dimension).
 *
 * Dataset images arrive in [-1, 1] (`k / 127.5 - 1`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import { logitTransform } from "./logit.ts";
import type { FlowModel } from "./multiscale.ts";

/** How dequantized images in [0, 1) enter the flow. */
export type FlowInput = "center" | "logit";

/** Options of the image-likelihood functions. */
export interface ImageLikelihoodOptions {
  /** Quantisation levels per dimension (256 for 8-bit data; Glow's `2^n_bits_x`). @default 256 */
  nBins?: number;
  /** Input map: Glow's `y - 0.5` or RealNVP's logit. @default "center" */
  input?: FlowInput;
  /** Logit margin (only for `input: "logit"`). @default 0.05 */
  alpha?: number;
}

function checkBins(nBins: number): void {
  if (!Number.isInteger(nBins) || nBins < 2 || nBins > 256) {
    throw new RangeError(`nBins must be an integer in 2..256, got ${nBins}`);
  }
}

/**
 * Uniform dequantization: images in [-1, 1] from 8-bit data, plus U[0, 1) noise, to [0, 1).
 *
 * @param images `[N, H, W, C]` in [-1, 1].
 * @param noise Uniform [0, 1) draws of the same shape (injected randomness).
 * @param options The number of bins.
 * @returns `y = (k' + u) / n_bins`.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { dequantize } from "./image_likelihood.ts";
 * const y = dequantize(tf.fill([1, 2, 2, 1], -1), tf.fill([1, 2, 2, 1], 0.5)); // 0.5 / 256
 * ```
 */
export function dequantize(
  images: tf.Tensor4D,
  noise: tf.Tensor4D,
  options: Pick<ImageLikelihoodOptions, "nBins"> = {},
): tf.Tensor4D {
  const { nBins = 256 } = options;
  checkBins(nBins);
  return tf.tidy(() => {
    const k = tf.round(tf.mul(tf.add(images, 1), 127.5));
    const kBins = nBins === 256 ? k : tf.floor(tf.div(k, 256 / nBins));
    return tf.div(tf.add(kBins, noise), nBins) as tf.Tensor4D;
  });
}

/**
 * Dequantized images `y` in [0, 1)^D mapped into the flow's input space, with the map's
 * per-example log-Jacobian (0 for `"center"`).
 *
 * @param y Dequantized images `[N, H, W, C]` (see {@linkcode dequantize}).
 * @param options The input map.
 * @returns The flow input and `log|det|` `[N]`.
 * @example
 * ```ts ignore
 * const { x } = flowInputOf(dequantize(images, noise), { input: "logit" });
 * ```
 */
export function flowInputOf(
  y: tf.Tensor4D,
  options: Pick<ImageLikelihoodOptions, "input" | "alpha"> = {},
): { x: tf.Tensor4D; logdet: tf.Tensor1D } {
  const { input = "center", alpha = 0.05 } = options;
  return tf.tidy(() => {
    if (input === "center") {
      return { x: tf.sub(y, 0.5) as tf.Tensor4D, logdet: tf.zeros([y.shape[0]]) as tf.Tensor1D };
    }
    const pre = logitTransform({
      name: "logit",
      shape: [y.shape[1], y.shape[2], y.shape[3]],
      alpha,
    }).forward({}, y);
    return { x: pre.y, logdet: pre.logdet };
  });
}

/**
 * log p(y) per example of dequantized images `y` in [0, 1)^D, through the input map.
 *
 * @param model The flow.
 * @param params Its parameters.
 * @param y Dequantized images `[N, H, W, C]` (see {@linkcode dequantize}).
 * @param options The input map.
 * @returns `[N]` nats, differentiable in `params`.
 * @example
 * ```ts ignore
 * const logp = imageLogDensity(glow, params, dequantize(x, u));
 * ```
 */
export function imageLogDensity(
  model: FlowModel,
  params: Params,
  y: tf.Tensor4D,
  options: ImageLikelihoodOptions = {},
): tf.Tensor1D {
  return tf.tidy(() => {
    const { x, logdet } = flowInputOf(y, options);
    return tf.add(model.logProb(params, x), logdet) as tf.Tensor1D;
  });
}

/**
 * Bits per dimension of the discrete data from `log p(y)` of its dequantized version.
 *
 * @param logDensity log p(y) per example `[N]` (nats, density on [0, 1)^D).
 * @param options Dimensions D and bins.
 * @returns `(-log p(y) + D log n_bins) / (D ln 2)` per example.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { bitsPerDimFromLogDensity } from "./image_likelihood.ts";
 * const bpd = bitsPerDimFromLogDensity(tf.zeros([1]), { dims: 784 }); // 8 (uniform on [0, 1))
 * ```
 */
export function bitsPerDimFromLogDensity(
  logDensity: tf.Tensor1D,
  options: { dims: number; nBins?: number },
): tf.Tensor1D {
  const { dims, nBins = 256 } = options;
  checkBins(nBins);
  return tf.tidy(() =>
    tf.div(tf.add(tf.neg(logDensity), dims * Math.log(nBins)), dims * Math.LN2) as tf.Tensor1D
  );
}

/**
 * Bits/dim per example of images in [-1, 1], dequantized with noise from `rng`.
 *
 * @param model The flow.
 * @param params Its parameters.
 * @param images `[N, H, W, C]` in [-1, 1].
 * @param options The rng for the dequantization noise, bins and input map.
 * @returns `[N]` bits/dim, differentiable in `params` (the training loss is its mean).
 * @example
 * ```ts ignore
 * const bpd = imageBitsPerDim(glow, params, x, { rng });
 * ```
 */
export function imageBitsPerDim(
  model: FlowModel,
  params: Params,
  images: tf.Tensor4D,
  options: ImageLikelihoodOptions & { rng: Rng },
): tf.Tensor1D {
  const { rng, nBins = 256 } = options;
  return tf.tidy(() => {
    const noise = tf.tensor(
      rng.fillUniform(new Float32Array(images.size)),
      images.shape,
    ) as tf.Tensor4D;
    const y = dequantize(images, noise, { nBins });
    const dims = images.shape[1] * images.shape[2] * images.shape[3];
    return bitsPerDimFromLogDensity(imageLogDensity(model, params, y, options), { dims, nBins });
  });
}

/**
 * Flow-space samples back to images in [-1, 1] (the inverse input map, clipped to [0, 1] first).
 *
 * @param x Flow-space tensor `[N, H, W, C]`.
 * @param options The input map.
 * @returns Images in [-1, 1].
 * @example
 * ```ts ignore
 * const images = flowToImages(glow.sample(params, 16, { rng, temperature: 0.7 }));
 * ```
 */
export function flowToImages(
  x: tf.Tensor4D,
  options: Pick<ImageLikelihoodOptions, "input" | "alpha"> = {},
): tf.Tensor4D {
  const { input = "center", alpha = 0.05 } = options;
  return tf.tidy(() => {
    const y = input === "center"
      ? tf.add(x, 0.5)
      : logitTransform({ name: "logit", shape: [x.shape[1], x.shape[2], x.shape[3]], alpha })
        .inverse({}, x).y;
    return tf.sub(tf.mul(tf.clipByValue(y, 0, 1), 2), 1) as tf.Tensor4D;
  });
}
