/**
 * Generating and writing samples the way every sampling task does: a progress bar over the
 * images, then a PNG grid (an SVG scatter for 2-D data) and, on request, one PNG per image named
 * after its seed.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { writeImageGrid, writePng } from "../data/png.ts";
import { scatterSvg } from "../data/svg_scatter.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import {
  type GeneratedSamples,
  type GenerateOptions,
  generateSamples,
} from "../samplers/generate.ts";
import type { Denoiser } from "../core/types.ts";
import { createProgress } from "../core/progress.ts";

/** Options of {@linkcode writeSamples}. */
export interface WriteSamplesOptions {
  /** Grid path (".png"; ".svg" is used for 2-D data). */
  out: string;
  /** Seeds of the images, in order. */
  seeds: readonly number[];
  /** Grid columns. @default ceil(sqrt(n)) */
  columns?: number;
  /** Folder for one PNG per image. @default undefined */
  imagesDir?: string;
}

/**
 * Creates the folders `writeSamples` will write into, so that a typo'd or new output folder
 * costs nothing: called before sampling, not after minutes of it.
 *
 * @example
 * ```ts ignore
 * await prepareSampleOutputs({ out: "runs/x/fd/samples.png", imagesDir: "runs/x/fd/images" });
 * ```
 */
export async function prepareSampleOutputs(
  options: Pick<WriteSamplesOptions, "out" | "imagesDir">,
): Promise<void> {
  await Deno.mkdir(dirname(options.out), { recursive: true });
  if (options.imagesDir) await Deno.mkdir(options.imagesDir, { recursive: true });
}

/**
 * Writes `samples` and prints one line per file written.
 *
 * @example
 * ```ts ignore
 * await writeSamples(samples, { out: "samples.png", seeds: [0, 1, 2, 3] });
 * ```
 */
export async function writeSamples(
  samples: GeneratedSamples,
  options: WriteSamplesOptions,
): Promise<void> {
  const { seeds, imagesDir } = options;
  await prepareSampleOutputs(options);
  const shape = samples.shape.slice(1);
  const what = `${seeds.length} ${shape.length === 1 ? "points" : "images"}, ` +
    `${samples.nfe} evaluations each`;
  if (shape.length === 1) {
    const path = options.out.replace(/\.png$/, ".svg");
    await writeFileAtomic(path, scatterSvg([samples.images], { title: `${seeds.length} samples` }));
    console.log(`wrote ${path} (${what})`);
    return;
  }
  const columns = options.columns ?? Math.ceil(Math.sqrt(seeds.length));
  await writeImageGrid(options.out, { data: samples.images, shape: samples.shape }, { columns });
  console.log(`wrote ${options.out} (${what})`);
  if (!imagesDir) return;
  const per = shape.reduce((a, b) => a * b, 1);
  for (let i = 0; i < seeds.length; i++) {
    const data = samples.images.subarray(i * per, (i + 1) * per);
    await writePng(join(imagesDir, `seed${String(seeds[i]).padStart(6, "0")}.png`), {
      data,
      shape,
    });
  }
  console.log(`wrote ${seeds.length} PNGs to ${imagesDir}`);
}

/**
 * Generates `generate.seeds.length` images with a progress bar and writes them as
 * {@linkcode writeSamples} does.
 *
 * @example
 * ```ts ignore
 * await sampleToFiles(denoiser, { seeds, shape, sigmas }, { out: "samples.png" });
 * ```
 */
export async function sampleToFiles(
  denoiser: Denoiser,
  generate: Omit<GenerateOptions, "onBatch">,
  write: Omit<WriteSamplesOptions, "seeds">,
): Promise<void> {
  const { seeds } = generate;
  const bar = createProgress({ total: seeds.length, label: "sample", unit: "img" });
  const out = await generateSamples(denoiser, { ...generate, onBatch: (done) => bar.update(done) });
  bar.finish({ nfe: out.nfe });
  await writeSamples(out, { ...write, seeds });
}
