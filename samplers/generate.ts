/**
 * Image generation around any sampler: per-image seeds (EDM's `generate.py`: one seed per image,
 * so an image never depends on the batch it is drawn in), batching, optional class labels, and
 * progress. The latent of image i is `sigma_0 * n_i` with `n_i` from seed i, and the stochastic
 * sampler's churn noise continues from the same per-image generators.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type NoiseSource, perImageNoise } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { sampleEuler } from "./euler.ts";
import { sampleHeun } from "./heun.ts";
import { sampleEdmStochastic } from "./edm_stochastic.ts";
import type { SampleResult } from "./types.ts";
import { pasteKnown } from "./_util.ts";
import { K_SAMPLER_NAMES, type KSamplerName, runKSampler } from "./k_samplers.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Samplers {@linkcode generateSamples} can run: EDM's three and the k-diffusion family. */
export const SAMPLER_NAMES = ["heun", "euler", "stochastic", ...K_SAMPLER_NAMES] as const;
/** One of {@linkcode SAMPLER_NAMES}. */
export type SamplerName = typeof SAMPLER_NAMES[number];

/**
 * A sampler other than the built-in three, e.g. the S2N backward family: how to scale the initial
 * noise, how to run one batch, and how to map its output back to data space.
 */
export interface CustomSampler {
  /** Standard deviation of the initial sample: x_0 = initialScale * n. */
  initialScale: number;
  /** Samples one batch; `context.noise` continues each image's own generator. */
  run(
    denoiser: Denoiser,
    x: tf.Tensor,
    context: { noise: NoiseSource; cond: Conditioning; signal?: AbortSignal },
  ): Promise<SampleResult>;
  /** The final sample is divided by this (z-space samplers end at z = alpha x). @default 1 */
  finalScale?: number;
}

/** Options of {@linkcode generateSamples}. */
export interface GenerateOptions {
  /** One seed per image; their count is the number of images. Required. */
  seeds: readonly number[];
  /** Shape of one image, e.g. [28, 28, 1], or [D] for points. Required. */
  shape: readonly number[];
  /** Noise levels, decreasing, ending in 0 (see `karrasSigmas`); required unless `sampler` is custom. */
  sigmas?: Float64Array;
  /** Which sampler: a built-in name or a {@linkcode CustomSampler}. @default "heun" */
  sampler?: SamplerName | CustomSampler;
  /** Images per batch. @default 64 */
  batchSize?: number;
  /** Stochastic sampler's S_churn. @default 0 */
  sChurn?: number;
  /** Stochastic sampler's S_tmin. @default 0 */
  sTmin?: number;
  /** Stochastic sampler's S_tmax. @default Infinity */
  sTmax?: number;
  /** Stochastic sampler's S_noise (also the k-diffusion samplers' noise scale). @default 1 */
  sNoise?: number;
  /** k-diffusion samplers' eta (see {@linkcode runKSampler} for the defaults). @default undefined */
  eta?: number;
  /** LMS order. @default 4 */
  order?: number;
  /** DPM++ 2M SDE correction. @default "midpoint" */
  solverType?: "midpoint" | "heun";
  /** Adaptive DPM-Solver's relative tolerance. @default 0.05 */
  rtol?: number;
  /** Adaptive DPM-Solver's absolute tolerance. @default 0.0078 */
  atol?: number;
  /** Class label per image (same length as `seeds`) for class-conditional models. @default undefined */
  classLabels?: readonly number[];
  /** Number of classes, required with `classLabels`. @default 0 */
  numClasses?: number;
  /**
   * img2img (SDEdit, Meng et al. 2022): start from these images noised to a lower noise level and
   * run only the last `round(strength N)` of the N steps; strength 0 returns the images unchanged,
   * strength 1 is ordinary sampling (the images are then drowned in sigma_max noise). `images` holds
   * one image of `shape` for all seeds, or one per seed; values in the data range ([-1, 1]).
   * @default undefined
   */
  init?: { images: Float32Array; strength: number };
  /**
   * Inpainting: `images` (one for all seeds, or one per seed) are known where `mask` (one image of
   * `shape`, 1 = known, 0 = generate) is 1; after every step the known pixels are replaced by the
   * known image noised to the step's noise level, and at the end by the known image itself, so
   * known pixels are kept exactly. @default undefined
   */
  inpaint?: { images: Float32Array; mask: Float32Array };
  /** Called after each batch with the images done so far. @default undefined */
  onBatch?: (done: number, total: number) => void;
  /**
   * Receives each finished batch (awaited before the next starts), e.g. to write its images at
   * once: `images` holds `count` images [count, ...shape] starting at seed index `start`; it is
   * the caller's to keep. @default undefined
   */
  onImages?: (batch: { images: Float32Array; start: number; count: number }) => unknown;
  /**
   * Keep every image in the result; `false` returns an empty `images` so memory stays bounded
   * by the batch (use `onImages`). @default true
   */
  collect?: boolean;
  /** Stops between steps. @default undefined */
  signal?: AbortSignal;
}

/**
 * The sampling range of EDM's `generate.py`: the requested [sigmaMin, sigmaMax] (default EDM's
 * 0.002 and 80) clamped to the range the network supports.
 *
 * @example
 * ```ts
 * import { samplingSigmaRange } from "./generate.ts";
 * const r = samplingSigmaRange({ sigmaMin: 0, sigmaMax: Infinity }); // { sigmaMin: 0.002, sigmaMax: 80 }
 * ```
 */
export function samplingSigmaRange(
  supported: { sigmaMin: number; sigmaMax: number },
  requested: { sigmaMin?: number; sigmaMax?: number } = {},
): { sigmaMin: number; sigmaMax: number } {
  const { sigmaMin = 0.002, sigmaMax = 80 } = requested;
  return {
    sigmaMin: Math.max(sigmaMin, supported.sigmaMin),
    sigmaMax: Math.min(sigmaMax, supported.sigmaMax),
  };
}

/** What {@linkcode generateSamples} returns. */
export interface GeneratedSamples {
  /** All images, row-major [N, ...shape] (empty with `collect: false`). */
  images: Float32Array;
  /**
   * The same array as `images` under the name `writeImageGrid` and `writePng` read
   * (`{ data, shape }`), so the result can be passed to them as it is.
   */
  data: Float32Array;
  /** [N, ...shape]. */
  shape: number[];
  /** Denoiser evaluations per image. */
  nfe: number;
}

/**
 * Generates `seeds.length` samples with the chosen sampler.
 *
 * @example Four points from an ideal denoiser of the origin
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { generateSamples } from "./generate.ts";
 * import { karrasSigmas } from "../schedules/karras_steps.ts";
 * import { selectBackend } from "../core/engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const out = await generateSamples((x) => tf.zerosLike(x), {
 *   seeds: [0, 1, 2, 3], shape: [2], sigmas: karrasSigmas({ numSteps: 8 }),
 * });
 * ```
 */
export async function generateSamples(
  denoiser: Denoiser,
  options: GenerateOptions,
): Promise<GeneratedSamples> {
  requireBackend("generateSamples");
  const {
    seeds,
    shape,
    sigmas,
    sampler = "heun",
    batchSize = 64,
    classLabels,
    numClasses = 0,
    onBatch,
    onImages,
    collect = true,
    signal,
  } = options;
  const custom = typeof sampler === "object" ? sampler : null;
  if (!custom && !(SAMPLER_NAMES as readonly string[]).includes(sampler as string)) {
    throw new RangeError(`unknown sampler "${sampler}": use one of ${SAMPLER_NAMES.join(", ")}`);
  }
  if (!custom && !sigmas) {
    throw new TypeError("generateSamples needs `sigmas` for a built-in sampler");
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (classLabels && (classLabels.length !== seeds.length || numClasses < 1)) {
    throw new RangeError("classLabels needs one label per seed and numClasses >= 1");
  }
  const per = shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(collect ? seeds.length * per : 0);
  const { init, inpaint } = options;
  if ((init || inpaint) && custom) {
    throw new TypeError("init and inpaint work with the built-in samplers only");
  }
  const perSeed = (data: Float32Array, what: string) => {
    if (data.length !== per && data.length !== per * seeds.length) {
      throw new RangeError(
        `${what} has ${data.length} values; need one image of shape [${shape}] (${per} values) ` +
          `or one per seed (${per * seeds.length})`,
      );
    }
    return (start: number, n: number) =>
      tf.tidy(() =>
        data.length === per
          ? tf.tile(tf.tensor(data, [1, ...shape]), [n, ...shape.map(() => 1)])
          : tf.tensor(data.subarray(start * per, (start + n) * per), [n, ...shape])
      );
  };
  const initBatch = init && perSeed(init.images, "init.images");
  const knownBatch = inpaint && perSeed(inpaint.images, "inpaint.images");
  if (inpaint && inpaint.mask.length !== per) {
    throw new RangeError(
      `inpaint.mask has ${inpaint.mask.length} values; need ${per} (shape [${shape}])`,
    );
  }
  if (init && !(init.strength >= 0 && init.strength <= 1)) {
    throw new RangeError(`init.strength must be in [0, 1], got ${init.strength}`);
  }
  let runSigmas = sigmas;
  if (init && sigmas) {
    const total = sigmas.length - 1, k = Math.round(init.strength * total);
    runSigmas = k === 0 ? undefined : sigmas.slice(total - k);
  }
  let nfe = 0;
  for (let start = 0; start < seeds.length; start += batchSize) {
    const batchSeeds = seeds.slice(start, start + batchSize);
    const n = batchSeeds.length;
    if (init && !runSigmas) {
      // strength 0: nothing to do, the input is the output.
      const x = initBatch!(start, n);
      images.set(await x.data() as Float32Array, start * per);
      x.dispose();
      onBatch?.(start + n, seeds.length);
      continue;
    }
    const noise = perImageNoise(batchSeeds);
    const scale = custom ? custom.initialScale : runSigmas![0];
    const latent = tf.tidy(() => {
      const z = tf.mul(noise.randn([n, ...shape]), scale);
      if (!initBatch) return z;
      const start0 = initBatch(start, n);
      return tf.add(start0, z);
    });
    const known = knownBatch
      ? {
        image: knownBatch(start, n),
        mask: tf.tensor(inpaint!.mask, [1, ...shape]),
        noise,
      }
      : undefined;
    const cond: Conditioning = {};
    if (classLabels) {
      const labels = classLabels.slice(start, start + n);
      cond.classLabels = tf.tidy(() =>
        tf.cast(tf.oneHot(tf.tensor1d(labels as number[], "int32"), numClasses), "float32")
      ) as tf.Tensor2D;
    }
    try {
      const result = custom
        ? await custom.run(denoiser, latent, { noise, cond, signal })
        : sampler === "heun"
        ? await sampleHeun(denoiser, latent, { sigmas: runSigmas, cond, signal, known })
        : sampler === "euler"
        ? await sampleEuler(denoiser, latent, { sigmas: runSigmas, cond, signal, known })
        : sampler !== "stochastic"
        ? await runKSampler(sampler as KSamplerName, denoiser, latent, {
          sigmas: runSigmas!,
          known,
          cond,
          signal,
          noise,
          eta: options.eta,
          sNoise: options.sNoise,
          order: options.order,
          solverType: options.solverType,
          rtol: options.rtol,
          atol: options.atol,
        })
        : await sampleEdmStochastic(denoiser, latent, {
          sigmas: runSigmas!,
          known,
          cond,
          signal,
          noise,
          sChurn: options.sChurn,
          sTmin: options.sTmin,
          sTmax: options.sTmax,
          sNoise: options.sNoise,
        });
      const finalScale = custom?.finalScale ?? 1;
      if (known) {
        // Known pixels exactly, whatever noise level the sampler stopped at.
        const pasted = pasteKnown(result.x, known, 0);
        result.x.dispose();
        result.x = pasted;
      }
      const data = await result.x.data() as Float32Array;
      if (finalScale !== 1) { for (let i = 0; i < data.length; i++) data[i] /= finalScale; }
      if (collect) images.set(data, start * per);
      result.x.dispose();
      nfe = result.nfe;
      await onImages?.({ images: data, start, count: n });
    } finally {
      latent.dispose();
      cond.classLabels?.dispose();
      if (known) tf.dispose([known.image, known.mask]);
    }
    onBatch?.(start + n, seeds.length);
  }
  return { images, data: images, shape: [seeds.length, ...shape], nfe };
}
