/**
 * EDM's non-leaky augmentation (EDM Appendix F.2, NVlabs/edm `training/augment.py` AugmentPipe,
 * after Karras et al. 2020 "Training GANs with limited data"): each image is transformed at
 * random and the transformation's parameters are returned as a label vector that conditions the
 * network, so the network learns the augmented distribution as a separate, labelled one and
 * sampling with zero labels gives clean images.
 *
 * We support AugmentPipe's integer ("pixel blitting") subset, which moves pixels exactly without
 * resampling: x-flip, y-flip, rotation by quarter turns and integer translation. Each one is
 * switched on for an image with probability `min(multiplier * p, 1)`; once switched on its value is
 * drawn uniformly (flips: {0, 1}, quarter turns: {0, 1, 2, 3}, shifts: round(u * size * max) with
 * u ~ U(-1, 1)), so an "applied" draw may still be the identity, as in AugmentPipe. The ops run in
 * AugmentPipe's order (x-flip, y-flip, rotation, translation).
 *
 * Label layout (one row per image, zeros where an op is off or not applied; a block is present
 * only when its multiplier is > 0, in this order), as AugmentPipe returns it:
 *
 * | block | width | values |
 * | --- | --- | --- |
 * | x-flip | 1 | 1 if mirrored left-right |
 * | y-flip | 1 | 1 if mirrored top-bottom |
 * | rotate | 2 | `[k == 1 or k == 2, k == 2 or k == 3]` for k counter-clockwise quarter turns |
 * | translate | 2 | `[tx / (W * max), ty / (H * max)]` in [-1, 1] |
 *
 * Translation follows AugmentPipe's convention: the content moves `tx` columns right and `ty` rows
 * up (a pixel at (row, col) lands at (row - ty, col + tx)), and pixels that enter from outside
 * are filled by mirror reflection at the border (without repeating the edge pixel), not by
 * wrapping or zeros, so no artificial edges appear.
 *
 * Implementation: the ops are composed into one source-pixel index map per image (plain integer
 * arithmetic in JavaScript), then applied with a single `tf.gather` on the [N*H*W, C] rows.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";

/** Options of {@linkcode augment}: probability multipliers as in AugmentPipe. */
export interface AugmentOptions {
  /** Overall augmentation probability (EDM's `--augment`, 0.12 for CIFAR-10). @default 0.12 */
  p?: number;
  /** Probability multiplier for x-flip (EDM uses 1e8: always drawn, so half the images). @default 1e8 */
  xflip?: number;
  /** Probability multiplier for y-flip. @default 1 */
  yflip?: number;
  /** Probability multiplier for quarter-turn rotation (square images only). @default 1 */
  rotateInt?: number;
  /** Probability multiplier for integer translation. @default 1 */
  translateInt?: number;
  /** Largest shift as a fraction of the image size. @default 0.125 */
  translateIntMax?: number;
}

/** Result of {@linkcode augment}; the caller owns both tensors. */
export interface AugmentResult {
  /** Augmented images, NHWC, same shape as the input. */
  images: tf.Tensor4D;
  /** Augmentation labels [N, augmentLabelDim(options)], layout in the module doc. */
  labels: tf.Tensor2D;
}

/**
 * Width of the label vector for an option set: 1 per enabled flip, 2 for rotation, 2 for
 * translation.
 *
 * @param options The augmentation options (defaults as in {@linkcode augment}).
 * @returns The number of label columns.
 * @example
 * ```ts
 * import { augmentLabelDim } from "./augment.ts";
 * const dim = augmentLabelDim({ yflip: 0, rotateInt: 0, translateInt: 0 }); // 1 (x-flip only)
 * ```
 */
export function augmentLabelDim(options: AugmentOptions = {}): number {
  const o = resolve(options);
  return (o.xflip > 0 ? 1 : 0) + (o.yflip > 0 ? 1 : 0) + (o.rotateInt > 0 ? 2 : 0) +
    (o.translateInt > 0 ? 2 : 0);
}

/** Label width for the default options (all four ops enabled): 6. */
export const AUGMENT_DIM: number = 6;

/**
 * Augments a batch of NHWC images and returns the augmentation labels.
 *
 * @param images Batch [N, H, W, C]; read, never disposed.
 * @param rng Source of every random draw; advanced by a fixed number of draws per image.
 * @param options Probabilities and ranges.
 * @returns New images and labels, owned by the caller.
 * @throws {RangeError} For negative or non-finite options, or rotation on non-square images.
 * @example Flip every other image at random, as EDM does
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { augment } from "./augment.ts";
 * const x = tf.zeros([4, 8, 8, 3]) as tf.Tensor4D;
 * const { images, labels } = augment(x, new Rng(0)); // labels: [4, 6]
 * ```
 */
export function augment(
  images: tf.Tensor4D,
  rng: Rng,
  options: AugmentOptions = {},
): AugmentResult {
  const o = resolve(options);
  if (images.rank !== 4) {
    throw new RangeError(`augment() needs NHWC images of rank 4, got shape [${images.shape}]`);
  }
  const [n, h, w, c] = images.shape;
  if (o.rotateInt > 0 && h !== w) {
    throw new RangeError(
      `quarter-turn rotation needs square images, got ${h}x${w}: pass rotateInt: 0`,
    );
  }
  const draws = drawParams(n, rng, o, { h, w });
  const dim = augmentLabelDim(o);
  const labels = new Float32Array(n * dim);
  const index = new Int32Array(n * h * w);
  let identity = true;
  for (let i = 0; i < n; i++) {
    const d = draws[i];
    labels.set(labelRow(d, o, { h, w }), i * dim);
    if (d.xflip || d.yflip || d.quarterTurns || d.tx || d.ty) identity = false;
    fillSourceIndex(index.subarray(i * h * w, (i + 1) * h * w), d, { h, w }, i * h * w);
  }
  const out = identity ? tf.clone(images) : tf.tidy(() => {
    const rows = tf.reshape(images, [n * h * w, c]);
    return tf.reshape(tf.gather(rows, tf.tensor1d(index, "int32")), [n, h, w, c]);
  });
  return { images: out as tf.Tensor4D, labels: tf.tensor2d(labels, [n, dim], "float32") };
}

interface Draw {
  xflip: number;
  yflip: number;
  quarterTurns: number;
  tx: number;
  ty: number;
}

interface Size {
  h: number;
  w: number;
}

// One op at a time over the batch, as AugmentPipe; the value and the switch are always both
// drawn, so the generator advances by the same amount whatever the outcome.
function drawParams(n: number, rng: Rng, o: Required<AugmentOptions>, size: Size): Draw[] {
  const draws: Draw[] = Array.from({ length: n }, () => ({
    xflip: 0,
    yflip: 0,
    quarterTurns: 0,
    tx: 0,
    ty: 0,
  }));
  const on = (mult: number): boolean => rng.uniform() < mult * o.p;
  if (o.xflip > 0) {
    for (const d of draws) {
      const v = rng.int(2);
      if (on(o.xflip)) d.xflip = v;
    }
  }
  if (o.yflip > 0) {
    for (const d of draws) {
      const v = rng.int(2);
      if (on(o.yflip)) d.yflip = v;
    }
  }
  if (o.rotateInt > 0) {
    for (const d of draws) {
      const v = rng.int(4);
      if (on(o.rotateInt)) d.quarterTurns = v;
    }
  }
  if (o.translateInt > 0) {
    for (const d of draws) {
      const ux = 2 * rng.uniform() - 1, uy = 2 * rng.uniform() - 1;
      if (on(o.translateInt)) {
        // `+ 0` turns -0 into 0 so labels compare cleanly.
        d.tx = Math.round(ux * size.w * o.translateIntMax) + 0;
        d.ty = Math.round(uy * size.h * o.translateIntMax) + 0;
      }
    }
  }
  return draws;
}

function labelRow(d: Draw, o: Required<AugmentOptions>, size: Size): number[] {
  const row: number[] = [];
  if (o.xflip > 0) row.push(d.xflip);
  if (o.yflip > 0) row.push(d.yflip);
  if (o.rotateInt > 0) {
    const k = d.quarterTurns;
    row.push(k === 1 || k === 2 ? 1 : 0, k === 2 || k === 3 ? 1 : 0);
  }
  if (o.translateInt > 0) {
    const sx = size.w * o.translateIntMax, sy = size.h * o.translateIntMax;
    row.push(sx > 0 ? d.tx / sx : 0, sy > 0 ? d.ty / sy : 0);
  }
  return row;
}

// For each output pixel, follow the ops backwards (translation, rotation, y-flip, x-flip) to the
// input pixel it copies, and store that pixel's flat row index (offset by the image's start).
function fillSourceIndex(out: Int32Array, d: Draw, size: Size, offset: number): void {
  const { h, w } = size;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sx = reflect(x - d.tx, w);
      let sy = reflect(y + d.ty, h);
      // Quarter turns counter-clockwise (square images): k = 1 reads (x, W-1-y), k = 3 (H-1-x, y).
      if (d.quarterTurns === 1) [sy, sx] = [sx, w - 1 - sy];
      else if (d.quarterTurns === 2) [sy, sx] = [h - 1 - sy, w - 1 - sx];
      else if (d.quarterTurns === 3) [sy, sx] = [h - 1 - sx, sy];
      if (d.yflip) sy = h - 1 - sy;
      if (d.xflip) sx = w - 1 - sx;
      out[y * w + x] = offset + sy * w + sx;
    }
  }
}

// Mirror reflection without repeating the edge pixel: period 2 * (size - 1).
function reflect(i: number, size: number): number {
  if (size === 1) return 0;
  const period = 2 * (size - 1);
  const r = ((i % period) + period) % period;
  return size - 1 - Math.abs(size - 1 - r);
}

function resolve(options: AugmentOptions): Required<AugmentOptions> {
  const {
    p = 0.12,
    xflip = 1e8,
    yflip = 1,
    rotateInt = 1,
    translateInt = 1,
    translateIntMax = 0.125,
  } = options;
  const all = { p, xflip, yflip, rotateInt, translateInt, translateIntMax };
  for (const [name, v] of Object.entries(all)) {
    if (!(v >= 0) || !Number.isFinite(v)) {
      throw new RangeError(
        `augment option ${name} must be a finite number >= 0, got ${v}: use 0 to turn it off`,
      );
    }
  }
  return all;
}
