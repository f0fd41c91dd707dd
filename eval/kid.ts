/**
 * Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", section 4 / eq. 4
 * and appendix): the unbiased estimate of the squared maximum mean discrepancy between two feature
 * sets under the cubic polynomial kernel `k(x, y) = (x . y / d + 1)^3`,
 *
 * `MMD^2 = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
 *         - 2 sum_{i, j} k(x_i, y_j) / m^2`,
 *
 * averaged over `numSubsets` random subsets of m samples from each set (drawn without replacement
 * within a subset, as the reference implementations do). Unlike FID it is unbiased, so it may be
 * slightly negative for equal distributions.
 *
 * The kernel matrices are float32 tensor products (tfjs `matMul`: at d = 2048 and m = 1000 a subset
 * is 6e9 multiply-adds, far too many for plain JavaScript), reduced to row sums there; the final
 * sums are float64.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import { checkFeatureSet } from "./_features.ts";

/** Options of {@linkcode kernelInceptionDistance}. */
export interface KernelInceptionDistanceOptions {
  /** Width d of each feature vector (required). */
  dim: number;
  /** Generator for the subsets (required); it advances. */
  rng: Rng;
  /** Number of random subsets averaged. @default 100 */
  numSubsets?: number;
  /** Samples per subset from each set; clamped to the smaller set's size. @default 1000 */
  subsetSize?: number;
}

/** KID over the subsets. */
export interface KernelInceptionDistance {
  /** Mean of the per-subset unbiased MMD^2 estimates. */
  mean: number;
  /** Population standard deviation of the per-subset estimates. */
  std: number;
  /** Subset size used (after clamping). */
  subsetSize: number;
}

/**
 * KID between two feature sets, row-major [N, d] each (sizes may differ).
 *
 * @param real Features of one set (e.g. the data); read, not kept.
 * @param fake Features of the other (e.g. generated samples); read, not kept.
 * @param options See {@linkcode KernelInceptionDistanceOptions}.
 * @returns Mean and standard deviation over the subsets; no tensors are left behind.
 * @throws {RangeError} For lengths that are not multiples of d, sets of fewer than 2 samples,
 *   non-finite values, or invalid counts.
 * @example KID of two samples of one distribution is near 0
 * ```ts
 * import { kernelInceptionDistance } from "./kid.ts";
 * import { Rng } from "../core/rng.ts";
 * import { selectBackend } from "../core/engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const rng = new Rng(0);
 * const a = rng.fillNormal(new Float32Array(200 * 4)), b = rng.fillNormal(new Float32Array(200 * 4));
 * const { mean, std } = await kernelInceptionDistance(a, b, { dim: 4, rng, numSubsets: 10 });
 * ```
 */
export async function kernelInceptionDistance(
  real: Float32Array | Float64Array,
  fake: Float32Array | Float64Array,
  options: KernelInceptionDistanceOptions,
): Promise<KernelInceptionDistance> {
  const { dim: d, rng, numSubsets = 100, subsetSize = 1000 } = options;
  const nx = checkFeatureSet(real, d, "real features");
  const ny = checkFeatureSet(fake, d, "fake features");
  if (!Number.isInteger(numSubsets) || numSubsets < 1) {
    throw new RangeError(`numSubsets must be a positive integer, got ${numSubsets}`);
  }
  if (!Number.isInteger(subsetSize) || subsetSize < 2) {
    throw new RangeError(`subsetSize must be an integer >= 2, got ${subsetSize}`);
  }
  if (rng === undefined || typeof rng.int !== "function") {
    throw new TypeError("kernelInceptionDistance needs an Rng in options.rng");
  }
  const m = Math.min(subsetSize, nx, ny);
  if (m < 2) {
    throw new RangeError(`KID needs at least 2 samples in each set, got ${nx} and ${ny}`);
  }
  const poolX = new Int32Array(nx), poolY = new Int32Array(ny);
  const bufX = new Float32Array(m * d), bufY = new Float32Array(m * d);
  const estimates: number[] = [];
  for (let s = 0; s < numSubsets; s++) {
    gatherRows(real, d, sampleIndices(poolX, m, rng), bufX);
    gatherRows(fake, d, sampleIndices(poolY, m, rng), bufY);
    const sums = tf.tidy(() => {
      const x = tf.tensor2d(bufX, [m, d]), y = tf.tensor2d(bufY, [m, d]);
      const kernel = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D =>
        tf.pow(tf.add(tf.div(tf.matMul(a, b, false, true), d), 1), 3);
      const diag = (a: tf.Tensor2D): tf.Tensor1D =>
        tf.pow(tf.add(tf.div(tf.sum(tf.square(a), 1), d), 1), 3);
      return tf.stack([
        tf.sum(kernel(x, x), 1),
        diag(x),
        tf.sum(kernel(y, y), 1),
        diag(y),
        tf.sum(kernel(x, y), 1),
      ]);
    });
    const v = await sums.data();
    sums.dispose();
    let kxx = 0, kyy = 0, kxy = 0;
    for (let i = 0; i < m; i++) {
      kxx += v[i] - v[m + i];
      kyy += v[2 * m + i] - v[3 * m + i];
      kxy += v[4 * m + i];
    }
    estimates.push((kxx + kyy) / (m * (m - 1)) - 2 * kxy / (m * m));
  }
  const mean = estimates.reduce((a, b) => a + b, 0) / numSubsets;
  const variance = estimates.reduce((a, b) => a + (b - mean) ** 2, 0) / numSubsets;
  return { mean, std: Math.sqrt(variance), subsetSize: m };
}

/** The first m entries of `pool` become a uniform random m-subset of 0..n-1 (partial shuffle). */
function sampleIndices(pool: Int32Array, m: number, rng: Rng): Int32Array {
  const n = pool.length;
  for (let i = 0; i < n; i++) pool[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.subarray(0, m);
}

function gatherRows(
  src: Float32Array | Float64Array,
  d: number,
  rows: Int32Array,
  out: Float32Array,
): void {
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * d, rows[i] * d + d), i * d);
}
