/**
 * DDPM's progressive generation (Ho et al. 2020, Section 4.3, Figures 6 and 10): run the
 * ancestral sampler (Algorithm 2) and keep its prediction
 * `x0-hat = (x_t - sqrt(1 - alphaBar_t) eps_theta(x_t)) / sqrt(alphaBar_t)` (eq. 15) at chosen
 * steps. Large-scale features appear first, details last. The frames form a strip per image
 * (one row per image, one column per chosen step), written with `data/png.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Denoiser } from "../core/types.ts";
import { writeImageGrid } from "../data/png.ts";
import { type DdpmAncestralOptions, sampleDdpmAncestral } from "../samplers/ddpm_ancestral.ts";

/** Options of {@linkcode progressiveGeneration}: the ancestral sampler's, plus the frames. */
export interface ProgressiveOptions extends DdpmAncestralOptions {
  /**
   * Steps k at which to keep x0-hat (predicted from x_k), in any order; drawn in decreasing k.
   * @default 10 steps evenly spaced from startStep down to 1
   */
  frameSteps?: readonly number[];
}

/** What {@linkcode progressiveGeneration} returns; the caller owns the tensors. */
export interface ProgressiveResult {
  /** The final samples x_0. */
  x: tf.Tensor;
  /** Frames [N * F, ...]: image n's x0-hat at step `steps[f]` is entry `n * F + f`. */
  frames: tf.Tensor;
  /** The F steps of the frames, decreasing. */
  steps: number[];
  /** Denoiser evaluations. */
  nfe: number;
}

/**
 * Samples with Algorithm 2 and keeps x0-hat at the chosen steps.
 *
 * @param denoiser The denoiser (`ddpmDenoiser(eps, process)` for a DDPM model).
 * @param x x at the start step (x_T ~ N(0, I)); never disposed.
 * @param options The sampler's options and the frame steps.
 * @returns Samples, frames and their steps.
 * @throws {RangeError} For frame steps outside 1..startStep, and as `sampleDdpmAncestral`.
 * @example A strip of 8 frames per image
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { progressiveGeneration, writeProgressiveStrip } from "./ddpm_progressive.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const points = tf.randomUniform([3, 4, 4, 1], -1, 1);
 * const process = ddpmProcess({ T: 50 });
 * const noise = perImageNoise([0, 1]);
 * const result = await progressiveGeneration(idealPointSetDenoiser(points), noise.randn([2, 4, 4, 1]), {
 *   process,
 *   noise,
 *   frameSteps: [50, 40, 30, 20, 15, 10, 5, 1],
 * });
 * const dir = await Deno.makeTempDir();
 * await writeProgressiveStrip(`${dir}/progressive.png`, result);
 * ```
 */
export async function progressiveGeneration(
  denoiser: Denoiser,
  x: tf.Tensor,
  options: ProgressiveOptions,
): Promise<ProgressiveResult> {
  const { process, frameSteps, onStep } = options;
  if (process === undefined) {
    throw new TypeError("options.process is required: pass e.g. ddpmProcess()");
  }
  const startStep = options.startStep ?? process.T;
  const steps = frameSteps === undefined
    ? evenlySpaced(startStep, 10)
    : [...new Set(frameSteps)].sort((a, b) => b - a);
  for (const k of steps) {
    if (!Number.isInteger(k) || k < 1 || k > startStep) {
      throw new RangeError(`frame step ${k}: give integer steps in 1..${startStep}`);
    }
  }
  const kept = new Map<number, tf.Tensor>();
  try {
    const result = await sampleDdpmAncestral(denoiser, x, {
      ...options,
      onStep: (record) => {
        const k = startStep - record.i;
        if (steps.includes(k)) kept.set(k, tf.clone(record.denoised));
        onStep?.(record);
      },
    });
    const frames = tf.tidy(() => {
      const stacked = tf.stack(steps.map((k) => kept.get(k) as tf.Tensor), 1);
      return tf.reshape(stacked, [x.shape[0] * steps.length, ...x.shape.slice(1)]);
    });
    return { x: result.x, frames, steps, nfe: result.nfe };
  } finally {
    kept.forEach((t) => t.dispose());
  }
}

// `count` steps from `start` down to 1, evenly spaced and distinct.
function evenlySpaced(start: number, count: number): number[] {
  const n = Math.min(count, start);
  if (n === 1) return [start];
  const out = Array.from({ length: n }, (_, i) => Math.round(start - ((start - 1) * i) / (n - 1)));
  return [...new Set(out)];
}

/**
 * Writes the frames as a PNG strip: one row per image, one column per step.
 *
 * @param path Target `.png` file; its folder must exist.
 * @param result A {@linkcode progressiveGeneration} result (read, not disposed). Images need
 *   shape [H, W, C] with C = 1 or 3.
 * @example
 * ```ts ignore
 * await writeProgressiveStrip("progressive.png", await progressiveGeneration(denoiser, xT, options));
 * ```
 */
export async function writeProgressiveStrip(
  path: string,
  result: Pick<ProgressiveResult, "frames" | "steps">,
): Promise<void> {
  await writeImageGrid(path, result.frames, { columns: result.steps.length });
}
