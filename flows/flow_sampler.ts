/**
 * A flow as a sampler of the toolkit's sampling path (`generateSamples`, `sampleToFiles`): the
 * per-seed N(0, 1) noise of shape `[n, H, W, C]` times the temperature T is cut into the flow's
 * latents (same total size, in `latentShapes` order) and decoded, then mapped back to images in
 * [-1, 1] (or left as is for point sets). One latent draw per image, so an image depends only on
 * its seed (Glow's temperature sampling, Kingma & Dhariwal 2018, Section 5).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Denoiser } from "../core/types.ts";
import type { CustomSampler } from "../samplers/generate.ts";
import type { FlowModel } from "./multiscale.ts";
import { type FlowInput, flowToImages } from "./image_likelihood.ts";

/** Options of {@linkcode flowSampler}. */
export interface FlowSamplerOptions {
  /** Temperature T >= 0. @default 1 */
  temperature?: number;
  /** The image input map, or `"none"` for point sets (samples returned as they are). @default "center" */
  input?: FlowInput | "none";
}

/**
 * Cuts `[n, H, W, C]` noise into the model's latents.
 *
 * @param model The flow.
 * @param z Noise with as many values per example as the data.
 * @returns The latents (the caller owns them).
 * @example
 * ```ts ignore
 * const latents = splitLatents(glow, tf.randomNormal([4, 28, 28, 1]) as tf.Tensor4D);
 * ```
 */
export function splitLatents(model: FlowModel, z: tf.Tensor): tf.Tensor4D[] {
  return tf.tidy(() => {
    const n = z.shape[0];
    const sizes = model.latentShapes.map((s) => s[0] * s[1] * s[2]);
    const rows = tf.reshape(z, [n, -1]);
    if (rows.shape[1] !== sizes.reduce((a, b) => a + b, 0)) {
      throw new RangeError(
        `splitLatents: ${rows.shape[1]} values per example, the flow needs ${
          sizes.reduce((a, b) => a + b, 0)
        }`,
      );
    }
    return tf.split(rows, sizes, 1).map((part, i) =>
      tf.reshape(part, [n, ...model.latentShapes[i]]) as tf.Tensor4D
    );
  });
}

/**
 * The flow as a {@linkcode CustomSampler} (its denoiser argument is ignored).
 *
 * @param model The flow.
 * @param params Its parameters.
 * @param options Temperature and input map.
 * @returns The sampler; `nfe` is 1 (one inverse pass).
 * @example
 * ```ts ignore
 * await sampleToFiles(FLOW_DENOISER, { seeds, shape, sampler: flowSampler(glow, params, { temperature: 0.7 }) }, { out });
 * ```
 */
export function flowSampler(
  model: FlowModel,
  params: Params,
  options: FlowSamplerOptions = {},
): CustomSampler {
  const { temperature = 1, input = "center" } = options;
  if (!(temperature >= 0 && Number.isFinite(temperature))) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  return {
    initialScale: temperature,
    run: (_denoiser, x) =>
      Promise.resolve({
        nfe: 1,
        x: tf.tidy(() => {
          const out = model.decode(params, splitLatents(model, x));
          const images = input === "none" ? out : flowToImages(out, { input });
          return tf.reshape(images, x.shape);
        }),
      }),
  };
}

/**
 * A placeholder denoiser for {@linkcode flowSampler} runs, which never call it.
 *
 * @example
 * ```ts ignore
 * await generateSamples(FLOW_DENOISER, { seeds, shape, sampler: flowSampler(glow, params) });
 * ```
 */
export const FLOW_DENOISER: Denoiser = () => {
  throw new Error("a flow sampler does not evaluate a denoiser");
};
