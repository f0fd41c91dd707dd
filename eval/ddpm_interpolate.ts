/**
 * Interpolation in DDPM's latent space (Ho et al. 2020, Section 4.4, Figures 8-9): encode two
 * images with the forward process and shared noise, `x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps`
 * and `x'_t` likewise with the same eps, mix `xBar_t = (1 - lambda) x_t + lambda x'_t`, and decode
 * with the reverse process (Algorithm 2 from step t). The noise is fixed across lambda (and
 * across t), so rows differ only through the mixture; larger t gives coarser, more varied
 * interpolations, and t = T gives novel samples.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { perImageNoise } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { qSample } from "../models/ddpm_param.ts";
import type { DdpmProcess, ReverseVariance } from "../schedules/ddpm.ts";
import { sampleDdpmAncestral } from "../samplers/ddpm_ancestral.ts";

/** Options of {@linkcode ddpmInterpolate}. */
export interface DdpmInterpolateOptions {
  /** The chain (respace it to decode in fewer steps). */
  process: DdpmProcess;
  /** The second image x'_0, shaped like the first ([1, ...]); never disposed. */
  other: tf.Tensor;
  /** Seed of the shared encoding noise; the decoding noise uses seed + 1 for every image. */
  seed: number;
  /** Mixing weights lambda. @default 9 values from 0 to 1 */
  lambdas?: readonly number[];
  /** Steps t to encode to, one grid row each. @default round(T / 4), round(T / 2), round(3T / 4), T */
  steps?: readonly number[];
  /** Put the source images in the first and last columns of every row. @default true */
  includeSources?: boolean;
  /** Reverse variance of the decoder. @default "beta" */
  variance?: ReverseVariance;
  /** Clip x0-hat while decoding. @default false */
  clipX0?: boolean;
  /** Conditioning for the denoiser (one row, repeated). @default undefined */
  cond?: Conditioning;
  /** Stops between steps. @default undefined */
  signal?: AbortSignal;
}

/** An interpolation grid; the caller owns `grid`. */
export interface DdpmInterpolation {
  /** Images [rows * columns, ...]: row r is step `steps[r]`, columns are the lambdas (with sources around them). */
  grid: tf.Tensor;
  /** Columns per row. */
  columns: number;
  /** The steps of the rows. */
  steps: number[];
  /** The lambdas of the columns (without the source columns). */
  lambdas: number[];
  /** Denoiser evaluations in all. */
  nfe: number;
}

/**
 * Interpolates two images through x_t for each step t and mixing weight lambda.
 *
 * @param denoiser The denoiser (`ddpmDenoiser(eps, process)` for a DDPM model).
 * @param x0 The first image x_0, shape [1, ...] in [-1, 1]; never disposed.
 * @param options The second image, chain, seed, lambdas and steps.
 * @returns The grid, ready for `writeImageGrid(path, grid, { columns })`.
 * @throws {RangeError} For images of different shapes or not one image each, steps outside 1..T, or lambdas that are not finite.
 * @example A 2 x 5 grid
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ddpmInterpolate } from "./ddpm_interpolate.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const points = tf.randomUniform([4, 4, 4, 1], -1, 1);
 * const [a, b] = tf.split(tf.slice(points, 0, 2), 2);
 * const { grid, columns } = await ddpmInterpolate(idealPointSetDenoiser(points), a, {
 *   process: ddpmProcess({ T: 20 }),
 *   other: b,
 *   seed: 0,
 *   lambdas: [0, 0.5, 1],
 *   steps: [10, 20],
 * });
 * ```
 */
export async function ddpmInterpolate(
  denoiser: Denoiser,
  x0: tf.Tensor,
  options: DdpmInterpolateOptions,
): Promise<DdpmInterpolation> {
  const { process, other, seed, includeSources = true, variance, clipX0, cond, signal } = options;
  if (process === undefined) {
    throw new TypeError("options.process is required: pass e.g. ddpmProcess()");
  }
  const T = process.T;
  const lambdas = [...(options.lambdas ?? Array.from({ length: 9 }, (_, i) => i / 8))];
  const steps = [
    ...(options.steps ??
      [...new Set([Math.round(T / 4), Math.round(T / 2), Math.round(0.75 * T), T])]
        .filter((t) => t >= 1)),
  ];
  if (x0.shape[0] !== 1 || !tf.util.arraysEqual(x0.shape, other.shape)) {
    throw new RangeError(
      `give one image each, same shape: got [${x0.shape}] and [${other.shape}]`,
    );
  }
  if (lambdas.length === 0 || lambdas.some((l) => !Number.isFinite(l))) {
    throw new RangeError(`lambdas must be finite numbers, got [${lambdas}]`);
  }
  for (const t of steps) {
    if (!Number.isInteger(t) || t < 1 || t > T) {
      throw new RangeError(`step ${t}: give integer steps in 1..${T}`);
    }
  }
  const L = lambdas.length;
  const eps = perImageNoise([seed]).randn(x0.shape);
  const rows: tf.Tensor[] = [];
  let nfe = 0;
  try {
    for (const t of steps) {
      const mixed = tf.tidy(() => {
        const xt = qSample(process, { x0, noise: eps, t });
        const xtOther = qSample(process, { x0: other, noise: eps, t });
        const w = tf.tensor(Float32Array.from(lambdas), [L, ...x0.shape.slice(1).map(() => 1)]);
        return tf.add(tf.mul(tf.sub(1, w), xt), tf.mul(w, xtOther));
      });
      const rowCond = repeatCond(cond, L);
      const decoded = await sampleDdpmAncestral(denoiser, mixed, {
        process,
        startStep: t,
        noise: perImageNoise(new Array<number>(L).fill(seed + 1)),
        variance,
        clipX0,
        cond: rowCond,
        signal,
      }).finally(() => {
        mixed.dispose();
        disposeCond(rowCond, cond);
      });
      nfe += decoded.nfe;
      if (includeSources) {
        rows.push(tf.concat([x0, decoded.x, other]));
        decoded.x.dispose();
      } else {
        rows.push(decoded.x);
      }
    }
    return {
      grid: tf.concat(rows),
      columns: L + (includeSources ? 2 : 0),
      steps,
      lambdas,
      nfe,
    };
  } finally {
    eps.dispose();
    rows.forEach((r) => r.dispose());
  }
}

function repeatCond(cond: Conditioning | undefined, n: number): Conditioning | undefined {
  if (cond === undefined) return undefined;
  const out: Conditioning = {};
  if (cond.classLabels) out.classLabels = tf.tile(cond.classLabels, [n, 1]) as tf.Tensor2D;
  if (cond.augmentLabels) out.augmentLabels = tf.tile(cond.augmentLabels, [n, 1]) as tf.Tensor2D;
  return out;
}

function disposeCond(made: Conditioning | undefined, given: Conditioning | undefined): void {
  if (made === undefined || made === given) return;
  made.classLabels?.dispose();
  made.augmentLabels?.dispose();
}
