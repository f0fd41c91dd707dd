/**
 * Exponential moving average of network weights with a half-life measured in images, as in
 * NVlabs/edm's training loop (EDM Appendix F.1, `training/training_loop.py`, `ema_halflife_kimg`
 * and `ema_rampup_ratio`):
 *
 * - `halfLife = min(halfLifeImages, imagesSeen * rampupRatio)` (the ramp-up keeps the average
 *   short early in training; `rampupRatio: null` turns it off),
 * - `beta = 0.5 ^ (batchSize / max(halfLife, 1e-8))`,
 * - `ema = lerp(net, ema, beta) = net + beta * (ema - net)`.
 *
 * So after `halfLifeImages / batchSize` steps an old weight's share has halved. As in EDM,
 * `imagesSeen` counts images before the current batch, so the first update (imagesSeen 0, ramp-up
 * on) copies the network.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { inPlaceViews } from "../core/blas/tensor_views.ts";
import type { Params } from "../core/params.ts";

/** Options of {@linkcode emaBeta} and {@linkcode emaUpdate}. */
export interface EmaOptions {
  /** Images per training step (EDM's `batch_size`), > 0. Required. */
  batchSize: number;
  /** Images seen before this step's batch (EDM's `cur_nimg`), >= 0. Required. */
  imagesSeen: number;
  /** Half-life of the average in images (EDM: `ema_halflife_kimg = 500`), >= 0. @default 500_000 */
  halfLifeImages?: number;
  /**
   * Ramp-up: the half-life is at most `imagesSeen * rampupRatio`; `null` turns it off
   * (EDM: `ema_rampup_ratio = 0.05`). @default 0.05
   */
  rampupRatio?: number | null;
}

/**
 * The EMA decay for one step: `0.5 ^ (batchSize / max(min(halfLife, imagesSeen * ratio), 1e-8))`.
 *
 * @param options Batch size, progress, half-life and ramp-up.
 * @returns beta in [0, 1): the weight kept on the old average.
 * @throws {RangeError} For a non-positive batch size or negative progress, half-life or ratio.
 * @example Without ramp-up, one half-life in one step
 * ```ts
 * import { emaBeta } from "./ema.ts";
 * const beta = emaBeta({ batchSize: 512, imagesSeen: 0, halfLifeImages: 512, rampupRatio: null });
 * // beta === 0.5
 * ```
 */
export function emaBeta(options: EmaOptions): number {
  const { batchSize, imagesSeen, halfLifeImages = 500_000, rampupRatio = 0.05 } = options;
  if (!(batchSize > 0) || !Number.isFinite(batchSize)) {
    throw new RangeError(`EMA batchSize must be a finite number > 0, got ${batchSize}`);
  }
  checkNonNegative("imagesSeen", imagesSeen, "count images seen from 0");
  checkNonNegative("halfLifeImages", halfLifeImages, "EDM uses 500_000");
  let halfLife = halfLifeImages;
  if (rampupRatio !== null) {
    checkNonNegative("rampupRatio", rampupRatio, "EDM uses 0.05; pass null to turn it off");
    halfLife = Math.min(halfLife, imagesSeen * rampupRatio);
  }
  return 0.5 ** (batchSize / Math.max(halfLife, 1e-8));
}

/**
 * A moving-average copy of `params`: same names, same values, non-trainable variables (so
 * `tf.variableGrads` never picks them up).
 *
 * @param params The network parameters to average.
 * @returns New variables owned by the caller (free them with `disposeParams`).
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { createEma } from "./ema.ts";
 * const ema = createEma({ w: tf.variable(tf.ones([2])) });
 * ```
 */
export function createEma(params: Params): Params {
  const out: Params = {};
  // tfjs tensor data is immutable and assign() swaps it, so sharing the data is a true copy.
  for (const [name, p] of Object.entries(params)) out[name] = tf.variable(p, false);
  return out;
}

/**
 * One EMA step: `ema[k] = params[k] + beta * (ema[k] - params[k])` for every name, in place.
 *
 * @param ema Averages from {@linkcode createEma}; updated in place.
 * @param params The current network parameters; read only.
 * @param options Batch size, progress, half-life and ramp-up.
 * @returns The beta used (see {@linkcode emaBeta}).
 * @throws {RangeError} For a name missing from `params` or a shape mismatch.
 * @example After each optimizer step
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { createEma, emaUpdate } from "./ema.ts";
 * const params = { w: tf.variable(tf.ones([2])) };
 * const ema = createEma(params);
 * const beta = emaUpdate(ema, params, { batchSize: 64, imagesSeen: 6400 });
 * ```
 */
export function emaUpdate(ema: Params, params: Params, options: EmaOptions): number {
  const beta = emaBeta(options);
  for (const [name, e] of Object.entries(ema)) {
    const p = params[name];
    if (!p) {
      throw new RangeError(`EMA has "${name}" but params do not: build the EMA with createEma()`);
    }
    if (p.shape.length !== e.shape.length || p.shape.some((d, i) => d !== e.shape[i])) {
      throw new RangeError(
        `EMA "${name}" has shape [${e.shape}] but the parameter has [${p.shape}]`,
      );
    }
  }
  tf.tidy(() => {
    for (const [name, e] of Object.entries(ema)) {
      const p = params[name];
      // In place on wasm and cpu (one loop instead of three kernels per tensor; see adam.ts).
      const views = inPlaceViews([e], [p]);
      if (views !== null) {
        const [ev, pv] = views;
        for (let i = 0; i < ev.length; i++) ev[i] = pv[i] + (ev[i] - pv[i]) * beta;
      } else e.assign(tf.add(p, tf.mul(tf.sub(e, p), beta)));
    }
  });
  return beta;
}

function checkNonNegative(name: string, x: number, fix: string): void {
  if (!(x >= 0) || !Number.isFinite(x)) {
    throw new RangeError(`EMA ${name} must be a finite number >= 0, got ${x}: ${fix}`);
  }
}
