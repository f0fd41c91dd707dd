/**
 * The Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", section 4):
 * `IS = exp(E_x KL(p(y|x) || p(y)))`, where p(y|x) is a classifier's class distribution for a
 * sample x and p(y) its average over the samples. It runs from 1 (every sample gets the same
 * class distribution) to C (confident predictions spread evenly over C classes).
 *
 * As in the reference implementation, the samples are cut into `splits` consecutive parts (part
 * k holds samples floor(k N / splits) up to floor((k + 1) N / splits)); p(y) and the score are
 * computed per part, and the result is their mean and (population) standard deviation.
 * All arithmetic is float64; softmax goes through log-sum-exp, and 0 log 0 counts as 0.
 *
 * @module
 */

/** Options of {@linkcode inceptionScore}. */
export interface InceptionScoreOptions {
  /** Number of classes C: each prediction row has C values (required). */
  numClasses: number;
  /** Number of parts the samples are split into. @default 10 */
  splits?: number;
  /**
   * What the rows hold: classifier `logits` (softmax is applied) or class `probabilities`
   * (each row non-negative, summing to 1). @default "logits"
   */
  from?: "logits" | "probabilities";
}

/** Mean and standard deviation of the Inception Score over the splits. */
export interface InceptionScore {
  /** Mean of the per-split scores. */
  mean: number;
  /** Population standard deviation of the per-split scores (0 for one split). */
  std: number;
}

/**
 * The Inception Score of N predictions (row-major [N, C] logits or probabilities).
 *
 * @param predictions `N * C` values; read, not kept.
 * @param options See {@linkcode InceptionScoreOptions}.
 * @returns The mean and standard deviation over the splits.
 * @throws {RangeError} For a length that is not a multiple of C, fewer samples than splits,
 *   non-finite values, or probability rows that are negative or do not sum to 1.
 * @example Confident predictions spread over 4 classes score 4
 * ```ts
 * import { inceptionScore } from "./inception_score.ts";
 * const probs = new Float32Array(16);
 * for (let i = 0; i < 4; i++) probs[i * 4 + i] = 1;
 * const { mean } = inceptionScore(probs, { numClasses: 4, splits: 1, from: "probabilities" });
 * console.assert(Math.abs(mean - 4) < 1e-12);
 * ```
 */
export function inceptionScore(
  predictions: Float32Array | Float64Array,
  options: InceptionScoreOptions,
): InceptionScore {
  const { numClasses: c, splits = 10, from = "logits" } = options;
  if (!Number.isInteger(c) || c < 1) {
    throw new RangeError(`numClasses must be a positive integer, got ${c}`);
  }
  if (from !== "logits" && from !== "probabilities") {
    throw new RangeError(`from must be "logits" or "probabilities", got ${JSON.stringify(from)}`);
  }
  if (predictions.length % c !== 0) {
    throw new RangeError(
      `predictions have ${predictions.length} values, not a multiple of numClasses ${c}`,
    );
  }
  const n = predictions.length / c;
  if (!Number.isInteger(splits) || splits < 1 || splits > n) {
    throw new RangeError(
      `splits must be an integer from 1 to the number of samples (${n}), got ${splits}`,
    );
  }
  const logP = logProbabilities(predictions, n, c, from);
  const scores: number[] = [];
  const pY = new Float64Array(c), logPY = new Float64Array(c);
  for (let k = 0; k < splits; k++) {
    const begin = Math.floor(k * n / splits), end = Math.floor((k + 1) * n / splits);
    pY.fill(0);
    for (let i = begin; i < end; i++) {
      for (let j = 0; j < c; j++) pY[j] += Math.exp(logP[i * c + j]);
    }
    for (let j = 0; j < c; j++) logPY[j] = Math.log(pY[j] / (end - begin));
    let kl = 0;
    for (let i = begin; i < end; i++) {
      for (let j = 0; j < c; j++) {
        const lp = logP[i * c + j];
        if (lp === -Infinity) continue; // 0 log 0 = 0 (and then p(y) > 0 or it is skipped too)
        kl += Math.exp(lp) * (lp - logPY[j]);
      }
    }
    scores.push(Math.exp(kl / (end - begin)));
  }
  const mean = scores.reduce((s, x) => s + x, 0) / splits;
  const variance = scores.reduce((s, x) => s + (x - mean) ** 2, 0) / splits;
  return { mean, std: Math.sqrt(variance) };
}

function logProbabilities(
  x: Float32Array | Float64Array,
  n: number,
  c: number,
  from: "logits" | "probabilities",
): Float64Array {
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = i * c;
    if (from === "probabilities") {
      let sum = 0;
      for (let j = 0; j < c; j++) {
        const p = x[row + j];
        if (!(p >= 0) || !Number.isFinite(p)) {
          throw new RangeError(`probability ${p} of sample ${i}, class ${j} is not in [0, 1]`);
        }
        sum += p;
        out[row + j] = Math.log(p);
      }
      if (Math.abs(sum - 1) > 1e-3) {
        throw new RangeError(
          `probabilities of sample ${i} sum to ${sum}, not 1; pass logits with from: "logits"`,
        );
      }
      // Renormalize away float32 rounding of the sum.
      const logSum = Math.log(sum);
      for (let j = 0; j < c; j++) out[row + j] -= logSum;
      continue;
    }
    let max = -Infinity;
    for (let j = 0; j < c; j++) {
      const v = x[row + j];
      if (!Number.isFinite(v)) {
        throw new RangeError(`logit ${v} of sample ${i}, class ${j} is not finite`);
      }
      if (v > max) max = v;
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp(x[row + j] - max);
    const logSum = max + Math.log(sum);
    for (let j = 0; j < c; j++) out[row + j] = x[row + j] - logSum;
  }
  return out;
}
