/**
 * Sample previews of a flow during training: one PNG grid with a block of images per temperature
 * (Glow's temperature grids, Kingma & Dhariwal 2018, Figure 8), fixed seeds 0..n-1 in every block
 * so successive grids show the same latents; for 2-D data an SVG scatter of samples at T = the
 * last temperature over the data.
 *
 * @module
 */
import type { Params } from "../core/params.ts";
import type { Dataset } from "../data/dataset.ts";
import { writeImageGrid } from "../data/png.ts";
import { generateSamples } from "../samplers/generate.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import { FLOW_DENOISER, flowSampler } from "../flows/flow_sampler.ts";
import type { FlowModelSpec } from "./flow_model_spec.ts";
import { writeScatterPreview } from "./preview.ts";

/** Options of {@linkcode writeFlowPreview}. */
export interface FlowPreviewOptions {
  /** The flow's spec (input map). */
  spec: FlowModelSpec;
  /** The training data (shape; 2-D sets are drawn beside the samples). */
  dataset: Dataset;
  /** Images per temperature. */
  n: number;
  /** Temperatures, one block each. */
  temperatures: readonly number[];
  /** Output path (`.png`; `.svg` for 2-D data). */
  path: string;
}

/**
 * Samples the flow at each temperature and writes one grid; returns the path written.
 *
 * @param model The flow.
 * @param params The weights to sample (usually the EMA).
 * @param options Spec, data, counts and path.
 * @returns The path written.
 * @example
 * ```ts ignore
 * await writeFlowPreview(model, ema, { spec, dataset, n: 16, temperatures: [0.5, 0.7, 1], path });
 * ```
 */
export async function writeFlowPreview(
  model: FlowModel,
  params: Params,
  options: FlowPreviewOptions,
): Promise<string> {
  const { spec, dataset, n, temperatures } = options;
  const seeds = Array.from({ length: n }, (_, i) => i);
  const draw = (temperature: number) =>
    generateSamples(FLOW_DENOISER, {
      seeds,
      shape: dataset.shape,
      sampler: flowSampler(model, params, { temperature, input: spec.input }),
      batchSize: dataset.shape.length === 1 ? 1024 : 64,
    });
  if (dataset.shape.length === 1) {
    const out = await draw(temperatures[temperatures.length - 1]);
    return await writeScatterPreview(options.path, dataset, out.images);
  }
  const per = dataset.shape.reduce((a, b) => a * b, 1);
  const all = new Float32Array(temperatures.length * n * per);
  for (let i = 0; i < temperatures.length; i++) {
    all.set((await draw(temperatures[i])).images, i * n * per);
  }
  const columns = Math.min(n, 8);
  await writeImageGrid(options.path, {
    data: all,
    shape: [temperatures.length * n, ...dataset.shape],
  }, { columns });
  return options.path;
}
