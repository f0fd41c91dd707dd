/**
 * Per-image noise for samplers: one seeded generator per image, so an image depends only on its
 * own seed and never on the batch it is drawn in (NVlabs/edm's `StackedRandomGenerator`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "./rng.ts";

/** A source of standard normal noise shaped like a batch of images. */
export interface NoiseSource {
  /** Standard normals with `shape` (first axis: the batch, one generator per image). Caller owns it. */
  randn(shape: number[]): tf.Tensor;
}

/**
 * A noise source with one generator per image, seeded from `seeds`.
 *
 * @param seeds One seed per image in the batch.
 * @returns A {@linkcode NoiseSource} whose draws for image `i` come from `seeds[i]` alone.
 * @example Same seed, same image, whatever the batch
 * ```ts
 * import { perImageNoise } from "./noise.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const a = perImageNoise([7, 8]).randn([2, 4]);
 * const b = perImageNoise([8]).randn([1, 4]);
 * // a[1] equals b[0]
 * ```
 */
export function perImageNoise(seeds: readonly number[]): NoiseSource {
  const gens = seeds.map((s) => new Rng(s));
  return {
    randn(shape: number[]): tf.Tensor {
      if (shape[0] !== gens.length) {
        throw new RangeError(
          `noise source has ${gens.length} seeds but the batch has ${shape[0]} images`,
        );
      }
      const per = shape.slice(1).reduce((a, b) => a * b, 1);
      const out = new Float32Array(per * gens.length);
      gens.forEach((g, i) => g.fillNormal(out.subarray(i * per, (i + 1) * per)));
      return tf.tensor(out, shape, "float32");
    },
  };
}

/**
 * A noise source drawing from a single generator (training, toy data).
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * import { rngNoise } from "./noise.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const eps = rngNoise(new Rng(0)).randn([3, 2]);
 * ```
 */
export function rngNoise(rng: Rng): NoiseSource {
  return {
    randn(shape: number[]): tf.Tensor {
      const n = shape.reduce((a, b) => a * b, 1);
      return tf.tensor(rng.fillNormal(new Float32Array(n)), shape, "float32");
    },
  };
}
