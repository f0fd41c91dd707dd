/**
 * Feature statistics for the Frechet distance (Heusel et al. 2017, FID): the mean and covariance
 * of a feature set, accumulated batch by batch in float64 so that statistics over many images never
 * need all features in memory.
 *
 * Accumulation uses shifted sums: with c the first feature vector seen, it keeps
 * `n`, `s = sum (x - c)` and `S = sum (x - c)(x - c)^T` (lower triangle), and finishes with
 * `mu = c + s / n` and `Sigma = (S - s s^T / n) / (n - 1)` (unbiased, as numpy's `np.cov`). The
 * shift keeps the subtraction from cancelling when the features' mean is large against their
 * spread (post-ReLU Inception features are all positive). Saving and loading: feature_stats_file.ts.
 *
 * The sums themselves ({@linkcode FeatureSums}) are what shards of one evaluation save
 * (eval/feature_shard_file.ts); {@linkcode mergeFeatureSums} adds them after moving each to a
 * common shift c: with d = c_k - c, `s' = s_k + n_k d` and `S' = S_k + s_k d^T + d s_k^T + n_k d d^T`
 * (exact in exact arithmetic), so merged statistics equal one pass over all features to rounding.
 *
 * @module
 */
import { gemmNTInto } from "./_matrix64.ts";
import { UserError } from "../core/errors.ts";
import type { FeatureStats } from "./types.ts";

/** Options of {@linkcode StatsAccumulator} and {@linkcode featureStats}. */
export interface FeatureStatsOptions {
  /** Width D of each feature vector (required). */
  dim: number;
  /** Name of the feature network, stored with the statistics (required), e.g. "inception-v3". */
  network: string;
}

/** The float64 sums behind feature statistics: what a shard saves and a merge adds. */
export interface FeatureSums {
  /** Feature network name. */
  network: string;
  /** Number of feature vectors n (0 for an empty shard). */
  count: number;
  /** The shift c (the first feature vector seen; zeros when count is 0), length D. */
  shift: Float64Array;
  /** `sum (x - c)`, length D. */
  sum: Float64Array;
  /** `sum (x - c)(x - c)^T`, row-major D x D, symmetric. */
  scatter: Float64Array;
}

/** Rows of a batch transposed and multiplied at a time (bounds scratch memory to 256 x D). */
const ROWS_PER_BLOCK = 256;

/**
 * Streaming mean and covariance of feature vectors, in float64. Feed batches with
 * {@linkcode StatsAccumulator.add}, then read the statistics with {@linkcode StatsAccumulator.finish}
 * (which may be called again after more batches).
 *
 * @example Statistics of three 2-d features in two batches
 * ```ts
 * import { StatsAccumulator } from "./feature_stats.ts";
 * const acc = new StatsAccumulator({ dim: 2, network: "toy" });
 * acc.add(new Float32Array([0, 0, 2, 0]));
 * acc.add(new Float32Array([1, 3]));
 * const { mu, sigma, count } = acc.finish(); // mu = [1, 1], sigma = [[1, 0], [0, 3]], count = 3
 * ```
 */
export class StatsAccumulator {
  /** Feature width D. */
  readonly dim: number;
  /** Network name stored in the result. */
  readonly network: string;
  #count = 0;
  #shift: Float64Array | null = null;
  #sum: Float64Array;
  #scatter: Float64Array; // lower triangle of sum (x - c)(x - c)^T
  #block: Float64Array;

  /**
   * Creates an empty accumulator.
   *
   * @param options See {@linkcode FeatureStatsOptions}.
   * @throws {RangeError} When `dim` is not a positive integer.
   * @throws {TypeError} When `network` is not a non-empty string.
   */
  constructor(options: FeatureStatsOptions) {
    const { dim, network } = options;
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(`feature dim must be a positive integer, got ${dim}`);
    }
    if (typeof network !== "string" || network === "") {
      throw new TypeError(`network must name the feature network, got ${JSON.stringify(network)}`);
    }
    this.dim = dim;
    this.network = network;
    this.#sum = new Float64Array(dim);
    this.#scatter = new Float64Array(dim * dim);
    this.#block = new Float64Array(dim * ROWS_PER_BLOCK);
  }

  /** Number of feature vectors added so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds a batch of feature vectors, row-major [n, D]. The array is read, not kept.
   *
   * @param batch `n * D` values (n may be 0).
   * @throws {RangeError} When the length is not a multiple of D or a value is not finite.
   */
  add(batch: Float32Array | Float64Array): void {
    const d = this.dim;
    if (!(batch instanceof Float32Array || batch instanceof Float64Array)) {
      throw new TypeError(`features must be a Float32Array or Float64Array`);
    }
    if (batch.length % d !== 0) {
      throw new RangeError(
        `feature batch has ${batch.length} values, not a multiple of dim ${d}; pass [n, ${d}] rows`,
      );
    }
    for (let i = 0; i < batch.length; i++) {
      if (!Number.isFinite(batch[i])) {
        throw new RangeError(
          `feature ${Math.floor(i / d)} holds ${batch[i]} at dimension ${i % d}; ` +
            `the feature network produced non-finite values`,
        );
      }
    }
    const n = batch.length / d;
    if (n === 0) return;
    if (this.#shift === null) this.#shift = Float64Array.from(batch.subarray(0, d));
    const c = this.#shift, sum = this.#sum, block = this.#block;
    for (let r0 = 0; r0 < n; r0 += ROWS_PER_BLOCK) {
      const rows = Math.min(ROWS_PER_BLOCK, n - r0);
      // block: D x rows, the shifted rows transposed, so S += block block^T reads rows.
      for (let r = 0; r < rows; r++) {
        const at = (r0 + r) * d;
        for (let j = 0; j < d; j++) {
          const v = batch[at + j] - c[j];
          block[j * rows + r] = v;
          sum[j] += v;
        }
      }
      gemmNTInto(block, block, this.#scatter, { m: d, n: d, k: rows, lower: true });
    }
    this.#count += n;
  }

  /**
   * The float64 sums of everything added so far (copies; the scatter symmetrized).
   *
   * @returns See {@linkcode FeatureSums}.
   */
  sums(): FeatureSums {
    const d = this.dim, scatter = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j <= i; j++) {
        scatter[i * d + j] = scatter[j * d + i] = this.#scatter[i * d + j];
      }
    }
    return {
      network: this.network,
      count: this.#count,
      shift: this.#shift ? Float64Array.from(this.#shift) : new Float64Array(d),
      sum: Float64Array.from(this.#sum),
      scatter,
    };
  }

  /**
   * An accumulator that continues from saved sums (a shard's, or a merge of them).
   *
   * @param sums See {@linkcode FeatureSums}; copied, not kept.
   * @returns The accumulator, as if it had seen those features.
   * @throws {RangeError} When the arrays do not have D, D and D x D values.
   */
  static fromSums(sums: FeatureSums): StatsAccumulator {
    const d = sums.shift.length;
    if (sums.sum.length !== d || sums.scatter.length !== d * d) {
      throw new RangeError(
        `feature sums: shift ${d}, sum ${sums.sum.length} and scatter ${sums.scatter.length} ` +
          `values do not fit one dimension D (D, D, D x D)`,
      );
    }
    const acc = new StatsAccumulator({ dim: d, network: sums.network });
    acc.#count = sums.count;
    acc.#shift = sums.count > 0 ? Float64Array.from(sums.shift) : null;
    acc.#sum.set(sums.sum);
    acc.#scatter.set(sums.scatter);
    return acc;
  }

  /**
   * The statistics of everything added so far.
   *
   * @returns Fresh arrays (mean, unbiased covariance); the caller owns them.
   * @throws {RangeError} With fewer than 2 feature vectors (no covariance).
   */
  finish(): FeatureStats {
    const n = this.#count, d = this.dim;
    if (n < 2) {
      throw new RangeError(`feature statistics need at least 2 feature vectors, got ${n}`);
    }
    const c = this.#shift!, s = this.#sum, scatter = this.#scatter;
    const mu = new Float64Array(d);
    for (let j = 0; j < d; j++) mu[j] = c[j] + s[j] / n;
    const sigma = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j <= i; j++) {
        const v = (scatter[i * d + j] - s[i] * s[j] / n) / (n - 1);
        sigma[i * d + j] = v;
        sigma[j * d + i] = v;
      }
    }
    return { network: this.network, count: n, mu, sigma };
  }
}

/**
 * Mean and unbiased covariance of a feature set held in memory, row-major [n, D] (the same
 * arithmetic as {@linkcode StatsAccumulator}).
 *
 * @param features `n * D` values, n >= 2; read, not kept.
 * @param options See {@linkcode FeatureStatsOptions}.
 * @returns Fresh statistics; the caller owns them.
 * @throws {RangeError} For a length that is not a multiple of D, fewer than 2 rows, or a
 *   non-finite value.
 * @example Two points
 * ```ts
 * import { featureStats } from "./feature_stats.ts";
 * const s = featureStats(new Float32Array([0, 2]), { dim: 1, network: "toy" });
 * console.assert(s.mu[0] === 1 && s.sigma[0] === 2);
 * ```
 */
export function featureStats(
  features: Float32Array | Float64Array,
  options: FeatureStatsOptions,
): FeatureStats {
  const acc = new StatsAccumulator(options);
  acc.add(features);
  return acc.finish();
}

/**
 * Adds the sums of disjoint feature sets (shards of one evaluation), moving each to the shift of
 * the first non-empty part (see the module doc).
 *
 * @param parts Sums of one network and one width; read, not kept.
 * @returns The sums of the union; `StatsAccumulator.fromSums(merged).finish()` gives its statistics.
 * @throws {UserError} For parts of different networks or widths, or no parts.
 * @example Two halves merge to the statistics of the whole
 * ```ts
 * import { mergeFeatureSums, StatsAccumulator } from "./feature_stats.ts";
 * const a = new StatsAccumulator({ dim: 1, network: "toy" }), b = new StatsAccumulator({ dim: 1, network: "toy" });
 * a.add(new Float32Array([0, 2]));
 * b.add(new Float32Array([4]));
 * const { mu, sigma } = StatsAccumulator.fromSums(mergeFeatureSums([a.sums(), b.sums()])).finish();
 * console.assert(mu[0] === 2 && sigma[0] === 4);
 * ```
 */
export function mergeFeatureSums(parts: readonly FeatureSums[]): FeatureSums {
  if (parts.length === 0) throw new UserError("no feature sums to merge");
  const { network } = parts[0], d = parts[0].shift.length;
  for (const p of parts) {
    if (p.network !== network || p.shift.length !== d) {
      throw new UserError(
        `feature sums of "${p.network}" (D = ${p.shift.length}) and "${network}" (D = ${d}) ` +
          `cannot be merged: compute every shard with one network`,
      );
    }
  }
  const first = parts.find((p) => p.count > 0);
  const c = first ? Float64Array.from(first.shift) : new Float64Array(d);
  const out: FeatureSums = {
    network,
    count: 0,
    shift: c,
    sum: new Float64Array(d),
    scatter: new Float64Array(d * d),
  };
  const delta = new Float64Array(d);
  for (const p of parts) {
    if (p.count === 0) continue;
    for (let j = 0; j < d; j++) delta[j] = p.shift[j] - c[j];
    const n = p.count;
    for (let i = 0; i < d; i++) {
      out.sum[i] += p.sum[i] + n * delta[i];
      const si = p.sum[i], di = delta[i];
      for (let j = 0; j < d; j++) {
        out.scatter[i * d + j] += p.scatter[i * d + j] + si * delta[j] + di * p.sum[j] +
          n * di * delta[j];
      }
    }
    out.count += n;
  }
  return out;
}
