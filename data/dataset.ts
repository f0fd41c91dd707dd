/**
 * The in-memory dataset record every loader returns, and a seeded, resumable batch iterator.
 *
 * Images are stored as one row-major NHWC `Float32Array` scaled linearly to [-1, 1], as in DDPM
 * (Ho et al. 2020, section 3.3: "integers in {0, ..., 255} scaled linearly to [-1, 1]"); 2-D toy
 * sets store their points [N, D] in the same field. Batch order is a fresh permutation per epoch
 * (Fisher-Yates, {@linkcode Rng.permutation}), so each epoch visits every example exactly once.
 *
 * Resuming: every {@linkcode Batch} carries `next`, a JSON-serializable {@linkcode BatchPosition}
 * `{ epoch, index, rng }` where `rng` is the state of the iterator's private generator *before* it
 * drew that epoch's permutation. Save `batch.next` in a checkpoint with the batch you trained on;
 * `batches(dataset, { batchSize, resume: saved })` redraws the same permutation and continues at
 * `index`, yielding exactly the batches the uninterrupted run would have yielded.
 *
 * @module
 */
import { Rng, type RngState } from "../core/rng.ts";

/**
 * A dataset held in memory. Loaders create it; consumers treat it as read-only.
 *
 * @example A two-point 2-D dataset
 * ```ts
 * import type { Dataset } from "./dataset.ts";
 * const ds: Dataset = {
 *   name: "two-points",
 *   images: new Float32Array([-1, 0, 1, 0]),
 *   shape: [2],
 *   count: 2,
 *   numClasses: 0,
 * };
 * ```
 */
export interface Dataset {
  /** Short name for logs, e.g. `"mnist"`, `"cifar10"`, `"toy:two-moons"`. */
  name: string;
  /**
   * All examples, row-major: NHWC images scaled to [-1, 1] (length N*H*W*C), or for point sets
   * the points [N, D].
   */
  images: Float32Array;
  /** Shape of one example: `[H, W, C]` for images, `[D]` for point sets. */
  shape: [number, number, number] | [number];
  /** Number of examples N. */
  count: number;
  /** Class of each example, in 0..numClasses-1; absent for unlabelled sets. */
  labels?: Int32Array;
  /** Number of classes; 0 for unlabelled sets. */
  numClasses: number;
  /** Human-readable class names, indexed by label, when known. */
  classNames?: string[];
}

/**
 * Where a batch iterator stands: the epoch, the offset into that epoch's permutation, and the
 * state of the iterator's generator before it drew that permutation. Plain JSON.
 */
export interface BatchPosition {
  /** Epoch number, from 0. */
  epoch: number;
  /** Offset of the next example within the epoch's permutation, in 0..count-1. */
  index: number;
  /** State of the iterator's private generator before it drew this epoch's permutation. */
  rng: RngState;
}

/** One batch of examples, copied out of the dataset (the caller owns the arrays). */
export interface Batch {
  /** Examples, row-major, shape `[size, ...dataset.shape]`. */
  images: Float32Array;
  /** Labels of the examples, when the dataset has labels. */
  labels?: Int32Array;
  /** Dataset indices of the examples, in batch order. */
  indices: Int32Array;
  /** Number of examples in this batch (smaller than batchSize only at an epoch's end). */
  size: number;
  /** Shape of `images`: `[size, ...dataset.shape]`, ready for `tf.tensor(images, shape)`. */
  shape: number[];
  /** Epoch this batch belongs to, from 0. */
  epoch: number;
  /** Offset of this batch's first example within the epoch's permutation. */
  index: number;
  /** Position right after this batch: save it to resume with `batches(ds, { resume })`. */
  next: BatchPosition;
}

/** Options of {@linkcode batches}. */
export interface BatchesOptions {
  /** Examples per batch, a positive integer. */
  batchSize: number;
  /**
   * Seeds the batch order. One draw from it seeds the iterator's private generator, so later
   * draws from `rng` (noise, sigma) stay independent of the batch order. Required unless `resume`
   * is given; ignored (not drawn from) when it is.
   */
  rng?: Rng;
  /** Continue from a saved {@linkcode Batch.next} instead of starting at epoch 0. */
  resume?: BatchPosition;
  /** Skip each epoch's final batch when it would be smaller than `batchSize`. @default false */
  dropLast?: boolean;
  /** Stop after this many epochs (counted from epoch 0, not from `resume`). @default Infinity */
  epochs?: number;
}

/**
 * Iterates over seeded random batches, epoch after epoch; every example appears once per epoch.
 * The setup (validation and the one draw from `options.rng`) happens at the call, not lazily.
 *
 * @param dataset The examples to draw from; only read.
 * @param options Batch size, seed generator or resume position, and epoch limits.
 * @returns A generator of batches, endless unless `epochs` is finite.
 * @throws {RangeError} For a batch size that is not a positive integer, or a resume position
 *   that does not fit the dataset.
 * @throws {TypeError} When neither `rng` nor `resume` is given.
 * @example Two epochs of batches, then resume from a saved position
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { batches, type Dataset } from "./dataset.ts";
 * const ds: Dataset = {
 *   name: "line", images: new Float32Array([0, 1, 2, 3, 4]), shape: [1], count: 5, numClasses: 0,
 * };
 * let saved;
 * for (const batch of batches(ds, { batchSize: 2, rng: new Rng(0), epochs: 2 })) {
 *   saved = batch.next; // store this in the checkpoint with the model
 * }
 * const more = batches(ds, { batchSize: 2, resume: saved });
 * ```
 */
export function batches(dataset: Dataset, options: BatchesOptions): Generator<Batch> {
  const { batchSize, rng, resume, dropLast = false, epochs = Infinity } = options;
  const n = dataset.count;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (n < 1) throw new RangeError(`dataset "${dataset.name}" is empty: load at least one example`);
  if (dropLast && batchSize > n) {
    throw new RangeError(
      `batchSize ${batchSize} exceeds the ${n} examples of "${dataset.name}" with dropLast: ` +
        `use a batchSize of at most ${n} or dropLast: false`,
    );
  }
  if (!(epochs >= 0)) throw new RangeError(`epochs must be >= 0, got ${epochs}`);
  let start: BatchPosition;
  if (resume !== undefined) {
    const { epoch, index } = resume;
    if (!Number.isInteger(epoch) || epoch < 0 || !Number.isInteger(index) || index < 0) {
      throw new RangeError(
        `resume position (epoch ${epoch}, index ${index}) is invalid: pass a saved batch.next`,
      );
    }
    if (index >= n) {
      throw new RangeError(
        `resume index ${index} is past the ${n} examples of "${dataset.name}": the position was ` +
          `saved with another dataset; resume with that dataset or start afresh`,
      );
    }
    start = { epoch, index, rng: resume.rng };
  } else if (rng !== undefined) {
    start = { epoch: 0, index: 0, rng: new Rng(rng.nextUint32()).state() };
  } else {
    throw new TypeError("batches() needs options.rng (a seeded Rng) or options.resume");
  }
  return iterate(dataset, start, batchSize, dropLast, epochs);
}

function* iterate(
  ds: Dataset,
  start: BatchPosition,
  batchSize: number,
  dropLast: boolean,
  epochs: number,
): Generator<Batch> {
  const n = ds.count;
  const rowSize = ds.images.length / n;
  const rng = Rng.fromState(start.rng);
  let index = start.index;
  for (let epoch = start.epoch; epoch < epochs; epoch++, index = 0) {
    const epochState = rng.state();
    const order = rng.permutation(n);
    // The epoch ends where no further (full, under dropLast) batch fits.
    const end = dropLast ? n - (n % batchSize) : n;
    while (index < end) {
      const size = Math.min(batchSize, end - index);
      const indices = order.slice(index, index + size);
      const images = new Float32Array(size * rowSize);
      for (let b = 0; b < size; b++) {
        const row = indices[b] * rowSize;
        images.set(ds.images.subarray(row, row + rowSize), b * rowSize);
      }
      const labels = ds.labels ? Int32Array.from(indices, (i) => ds.labels![i]) : undefined;
      const after = index + size;
      const next: BatchPosition = after < end
        ? { epoch, index: after, rng: epochState }
        : { epoch: epoch + 1, index: 0, rng: rng.state() };
      yield { images, labels, indices, size, shape: [size, ...ds.shape], epoch, index, next };
      index = after;
    }
  }
}
