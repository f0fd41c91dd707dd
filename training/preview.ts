/**
 * Sample previews during training: a PNG grid of images (or an SVG scatter of 2-D samples over
 * the data) drawn with Heun's sampler (EDM Algorithm 1) from fixed seeds 0..n-1, so successive
 * grids show the same latents as training proceeds.
 *
 * @module
 */
import type { Preconditioned } from "../models/precond.ts";
import type { Dataset } from "../data/dataset.ts";
import { writeImageGrid } from "../data/png.ts";
import { scatterSvg } from "../data/svg_scatter.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { type CustomSampler, generateSamples, samplingSigmaRange } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";

/** Options of {@linkcode writePreview}. */
export interface PreviewOptions {
  /** The run's settings (number of images, steps, conditioning). */
  config: { gridImages: number; gridSteps: number; classConditional: boolean };
  /** The training data (shape; for 2-D sets, drawn beside the samples). */
  dataset: Dataset;
  /** Output path; `.png` for images, replaced by `.svg` for 2-D data. */
  path: string;
  /** Another sampler (e.g. DDPM's ancestral one, `ddpmSampler`) instead of Heun. @default undefined */
  sampler?: CustomSampler;
}

/**
 * Samples `config.gridImages` images and writes them; returns the path written.
 *
 * @example
 * ```ts ignore
 * await writePreview(emaDenoiser, { config, dataset, path: "runs/x/samples.png" });
 * ```
 */
export async function writePreview(
  denoiser: Preconditioned,
  options: PreviewOptions,
): Promise<string> {
  const { config, dataset } = options;
  const n = config.gridImages;
  const seeds = Array.from({ length: n }, (_, i) => i);
  const conditional = config.classConditional && dataset.numClasses > 0;
  const out = await generateSamples(denoiser, {
    seeds,
    shape: dataset.shape,
    sigmas: options.sampler
      ? undefined
      : karrasSigmas({ numSteps: config.gridSteps, ...samplingSigmaRange(denoiser) }),
    sampler: options.sampler,
    classLabels: conditional ? seeds.map((i) => i % dataset.numClasses) : undefined,
    numClasses: dataset.numClasses,
    batchSize: dataset.shape.length === 1 ? 1024 : 64,
  });
  if (dataset.shape.length === 1) {
    return await writeScatterPreview(options.path, dataset, out.images);
  }
  const columns = conditional ? dataset.numClasses : Math.ceil(Math.sqrt(n));
  await writeImageGrid(options.path, { data: out.images, shape: out.shape }, { columns });
  return options.path;
}

/**
 * The preview of 2-D data: an SVG scatter of the first 2000 data points (blue) and `samples`
 * (red), written next to `pngPath` with the extension `.svg`; returns the path written.
 *
 * @param pngPath The preview's `.png` path.
 * @param dataset The training data (2-D points).
 * @param samples The samples, `[x0, y0, x1, y1, ...]`.
 * @returns The `.svg` path written.
 * @example
 * ```ts ignore
 * const path = await writeScatterPreview("runs/toy/samples-000010.png", dataset, out.images);
 * ```
 */
export async function writeScatterPreview(
  pngPath: string,
  dataset: Dataset,
  samples: Float32Array,
): Promise<string> {
  const path = pngPath.replace(/\.png$/, ".svg");
  const data = dataset.images.subarray(0, Math.min(dataset.images.length, 2 * 2000));
  await writeFileAtomic(path, scatterSvg([data, samples], { title: "data (blue), samples (red)" }));
  return path;
}
