/**
 * Importance sampling of the DDPM step t for the variational-bound loss (improved DDPM, Nichol
 * and Dhariwal 2021, Section 3.3, eq. 18): draw t with probability `p_t ~ sqrt(E[L_t^2])`, from
 * a history of the last 10 loss values of each step, and weight the term by `1 / (T p_t)`.
 * Until every step has a full history, t is uniform. A small uniform share (1e-3 here, as
 * improved DDPM's loss-aware sampler) keeps every step reachable.
 *
 * The history is plain, JSON-serializable data (store it in a checkpoint); the functions are
 * pure: {@linkcode recordTimestepLosses} returns a new history.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";

/** Recent loss values per step; plain JSON. Do not mutate: record returns a new one. */
export interface TimestepHistory {
  /** Number of steps T. */
  T: number;
  /** Values kept per step. */
  historyLength: number;
  /** Ring buffers: the values of step t at `losses[(t - 1) * historyLength + j]`. */
  losses: number[];
  /** Values recorded so far per step (index t - 1); the next one goes to `count % historyLength`. */
  counts: number[];
}

/** Options of {@linkcode createTimestepHistory}. */
export interface TimestepHistoryOptions {
  /** Values kept per step (improved DDPM: 10). @default 10 */
  historyLength?: number;
}

/**
 * An empty history for T steps.
 *
 * @param T Number of steps, an integer >= 1.
 * @param options History length.
 * @returns A {@linkcode TimestepHistory}.
 * @throws {RangeError} For T or historyLength not a positive integer.
 * @example
 * ```ts
 * import { createTimestepHistory } from "./ddpm_importance.ts";
 * const history = createTimestepHistory(1000);
 * ```
 */
export function createTimestepHistory(
  T: number,
  options: TimestepHistoryOptions = {},
): TimestepHistory {
  const { historyLength = 10 } = options;
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`T must be an integer >= 1, got ${T}`);
  if (!Number.isInteger(historyLength) || historyLength < 1) {
    throw new RangeError(`historyLength must be an integer >= 1, got ${historyLength}`);
  }
  return {
    T,
    historyLength,
    losses: new Array<number>(T * historyLength).fill(0),
    counts: new Array<number>(T).fill(0),
  };
}

/** What {@linkcode recordTimestepLosses} records: one loss per drawn step. */
export interface TimestepLosses {
  /** Steps, integers in 1..T. */
  t: ArrayLike<number>;
  /** Unweighted loss terms L_{t-1} of those steps (e.g. `ddpmVlbTerms(...).terms`). */
  losses: ArrayLike<number>;
}

/**
 * Records loss terms into a copy of the history.
 *
 * @param history The current history (unchanged).
 * @param record Steps and their unweighted loss terms.
 * @returns The new history.
 * @throws {RangeError} For steps outside 1..T, lengths that differ, or non-finite losses.
 * @example
 * ```ts
 * import { createTimestepHistory, recordTimestepLosses } from "./ddpm_importance.ts";
 * let history = createTimestepHistory(4);
 * history = recordTimestepLosses(history, { t: [1, 4], losses: [0.5, 0.01] });
 * ```
 */
export function recordTimestepLosses(
  history: TimestepHistory,
  record: TimestepLosses,
): TimestepHistory {
  const { t, losses } = record;
  if (t.length !== losses.length) {
    throw new RangeError(`got ${t.length} steps but ${losses.length} losses; give one per step`);
  }
  const out = { ...history, losses: history.losses.slice(), counts: history.counts.slice() };
  for (let i = 0; i < t.length; i++) {
    const k = t[i], v = losses[i];
    if (!Number.isInteger(k) || k < 1 || k > history.T) {
      throw new RangeError(`t[${i}] = ${k}: steps must be integers in 1..${history.T}`);
    }
    if (!Number.isFinite(v)) throw new RangeError(`losses[${i}] = ${v} is not finite`);
    const slot = out.counts[k - 1] % history.historyLength;
    out.losses[(k - 1) * history.historyLength + slot] = v;
    out.counts[k - 1]++;
  }
  return out;
}

/**
 * Whether every step has a full history (so sampling is no longer uniform).
 *
 * @example
 * ```ts
 * import { createTimestepHistory, isWarmedUp } from "./ddpm_importance.ts";
 * console.assert(!isWarmedUp(createTimestepHistory(10)));
 * ```
 */
export function isWarmedUp(history: TimestepHistory): boolean {
  return history.counts.every((c) => c >= history.historyLength);
}

/** Options of {@linkcode timestepProbabilities}. */
export interface TimestepProbabilityOptions {
  /** Share of the uniform distribution mixed in, in [0, 1]. @default 0.001 */
  uniformShare?: number;
}

/**
 * The step distribution: uniform until warmed up, then `p_t ~ sqrt(mean of L_t^2)` mixed with
 * `uniformShare` of the uniform distribution.
 *
 * @param history The history.
 * @param options The uniform share.
 * @returns A Float64Array of T probabilities, entry t - 1 for step t, summing to 1.
 * @throws {RangeError} For a uniform share outside [0, 1].
 * @example
 * ```ts
 * import { createTimestepHistory, timestepProbabilities } from "./ddpm_importance.ts";
 * const p = timestepProbabilities(createTimestepHistory(4)); // [0.25, 0.25, 0.25, 0.25]
 * ```
 */
export function timestepProbabilities(
  history: TimestepHistory,
  options: TimestepProbabilityOptions = {},
): Float64Array {
  const { uniformShare = 0.001 } = options;
  if (!(uniformShare >= 0 && uniformShare <= 1)) {
    throw new RangeError(`uniformShare must be in [0, 1], got ${uniformShare}`);
  }
  const { T, historyLength, losses } = history;
  const p = new Float64Array(T).fill(1 / T);
  if (!isWarmedUp(history)) return p;
  let total = 0;
  for (let k = 0; k < T; k++) {
    let sumSq = 0;
    for (let j = 0; j < historyLength; j++) sumSq += losses[k * historyLength + j] ** 2;
    p[k] = Math.sqrt(sumSq / historyLength);
    total += p[k];
  }
  if (!(total > 0)) return p.fill(1 / T);
  for (let k = 0; k < T; k++) p[k] = (p[k] / total) * (1 - uniformShare) + uniformShare / T;
  return p;
}

/** Options of {@linkcode drawTimesteps}. */
export interface DrawTimestepsOptions {
  /** Number of steps to draw (the batch size). */
  count: number;
  /** Probabilities of steps 1..T (entry t - 1), e.g. from {@linkcode timestepProbabilities}. @default uniform over T */
  probabilities?: ArrayLike<number>;
  /** Number of steps, when `probabilities` is not given. @default probabilities.length */
  T?: number;
}

/** Drawn steps and their importance weights. */
export interface DrawnTimesteps {
  /** Steps in 1..T. */
  t: Int32Array;
  /** Importance weights `1 / (T p_t)` (all 1 when uniform). */
  weights: Float32Array;
}

/**
 * Draws steps from a distribution over 1..T (uniform by default, DDPM Algorithm 1 line 3), one
 * uniform number from `rng` per step.
 *
 * @param rng The generator; advanced by `count` uniform draws.
 * @param options Count and the distribution.
 * @returns Steps and weights.
 * @throws {RangeError} For a count that is not a positive integer, a missing T, or invalid probabilities.
 * @example Uniform steps for Algorithm 1
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { drawTimesteps } from "./ddpm_importance.ts";
 * const { t } = drawTimesteps(new Rng(0), { count: 8, T: 1000 });
 * ```
 */
export function drawTimesteps(rng: Rng, options: DrawTimestepsOptions): DrawnTimesteps {
  const { count, probabilities } = options;
  const T = options.T ?? probabilities?.length;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  if (T === undefined || !Number.isInteger(T) || T < 1) {
    throw new RangeError(`give T (an integer >= 1) or probabilities; got T = ${T}`);
  }
  const t = new Int32Array(count), weights = new Float32Array(count).fill(1);
  if (probabilities === undefined) {
    for (let i = 0; i < count; i++) t[i] = 1 + Math.min(rng.int(T), T - 1);
    return { t, weights };
  }
  if (probabilities.length !== T) {
    throw new RangeError(`probabilities has ${probabilities.length} entries but T = ${T}`);
  }
  const cumulative = new Float64Array(T);
  let total = 0;
  for (let k = 0; k < T; k++) {
    const p = probabilities[k];
    if (!(p >= 0) || !Number.isFinite(p)) {
      throw new RangeError(`probabilities[${k}] = ${p}: probabilities must be finite and >= 0`);
    }
    total += p;
    cumulative[k] = total;
  }
  if (Math.abs(total - 1) > 1e-6) {
    throw new RangeError(`probabilities sum to ${total}, not 1`);
  }
  for (let i = 0; i < count; i++) {
    const u = rng.uniform() * total;
    let lo = 0, hi = T - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    // Only rounding (u at the very top) can land on a zero-probability step: step back.
    while (probabilities[lo] === 0 && lo > 0) lo--;
    t[i] = lo + 1;
    weights[i] = 1 / (T * probabilities[lo]);
  }
  return { t, weights };
}
