/**
 * Sample-quality evaluation in one place: features of generated and reference images from any
 * {@linkcode FeatureNetwork}, then Frechet distance (FID/FD), Inception Score (IS, or the
 * classifier IS of the built-in MNIST network), KID and k-NN precision/recall.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Rng } from "../core/rng.ts";
import type { FeatureNetwork, FeatureStats } from "./types.ts";
import { featureStats } from "./feature_stats.ts";
import { frechetDistance } from "./frechet.ts";
import { inceptionScore } from "./inception_score.ts";
import { kernelInceptionDistance } from "./kid.ts";
import { precisionRecall } from "./precision_recall.ts";
import { quantize8Bit } from "./quantize.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Features (and logits) of a set of images. */
export interface ExtractedFeatures {
  /** Row-major [count, featureDim]. */
  features: Float32Array;
  /** Row-major [count, numClasses], when the network has classes. */
  logits?: Float32Array;
  /** Number of images. */
  count: number;
}

/** Options of {@linkcode extractFeatures}. */
export interface ExtractFeaturesOptions {
  /** Images per forward pass. @default 128 */
  batchSize?: number;
  /** Called after each batch with the images done. @default undefined */
  onBatch?: (done: number, total: number) => void;
  /**
   * Clip to [-1, 1] and round to 8-bit levels first (eval/quantize.ts), as NVlabs/edm and
   * pytorch-fid score saved PNGs; `false` scores the values as given. @default true
   */
  quantize?: boolean;
}

/**
 * Runs `network` over images [N, H, W, C] in [-1, 1] stored row-major in `images`, clipped and
 * quantized to 8 bits first unless `quantize: false`, so that samples in memory and the PNGs they
 * are saved to give the same features.
 *
 * @example
 * ```ts ignore
 * const real = await extractFeatures(await loadMnistClassifier(), dataset.images, [10000, 28, 28, 1]);
 * ```
 */
export async function extractFeatures(
  network: FeatureNetwork,
  images: Float32Array,
  shape: readonly number[],
  options: ExtractFeaturesOptions = {},
): Promise<ExtractedFeatures> {
  requireBackend("extractFeatures");
  const { batchSize = 128, onBatch, quantize = true } = options;
  const [n, ...one] = shape;
  const per = one.reduce((a, b) => a * b, 1);
  const features = new Float32Array(n * network.featureDim);
  const logits = network.numClasses > 0 ? new Float32Array(n * network.numClasses) : undefined;
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const part = images.subarray(start * per, (start + m) * per);
    const pixels = quantize ? quantize8Bit(part) : part;
    const out = tf.tidy(() => {
      const x = tf.tensor(pixels, [m, ...one]);
      return network.apply(x as tf.Tensor4D);
    });
    features.set(await out.features.data() as Float32Array, start * network.featureDim);
    if (logits && out.logits) {
      logits.set(await out.logits.data() as Float32Array, start * network.numClasses);
    }
    tf.dispose([out.features, out.logits]);
    onBatch?.(start + m, n);
  }
  return { features, logits, count: n };
}

/** Options of {@linkcode compareFeatures}. */
export interface CompareFeaturesOptions {
  /** The feature network both sets came from (only its name, width and classes are read). */
  network: Pick<FeatureNetwork, "name" | "featureDim" | "numClasses">;
  /** Draws KID's subsets. */
  rng: Rng;
  /** KID subsets. @default 100 */
  kidSubsets?: number;
  /** KID subset size (clamped to the set sizes). @default 1000 */
  kidSubsetSize?: number;
  /** Neighbours for precision/recall. @default 3 */
  k?: number;
  /** Splits of the Inception Score. @default 10 */
  isSplits?: number;
  /**
   * Frechet statistics of both sets when already known (merged from shards,
   * eval/merge_shards.ts); otherwise computed from the features. @default undefined
   */
  stats?: { reference: FeatureStats; samples: FeatureStats };
}

/** The metrics of generated features against reference features. */
export interface EvaluationReport {
  /** Feature network name. */
  network: string;
  /** Generated images evaluated. */
  sampleCount: number;
  /** Reference images. */
  referenceCount: number;
  /** Frechet distance (FID with Inception-v3; FD with other networks). */
  fd: number;
  /** Inception Score (classifier IS with the MNIST network) of the samples; absent without logits. */
  is?: { mean: number; std: number };
  /** Inception Score of the reference images, for scale. */
  referenceIs?: { mean: number; std: number };
  /** Kernel Inception Distance (unbiased MMD^2, polynomial kernel). */
  kid: { mean: number; std: number; subsetSize: number };
  /** k-NN precision and recall. */
  precision: number;
  /** k-NN recall. */
  recall: number;
  /** Why a figure may mean little (too few samples or reference images); empty when none. */
  warnings: string[];
}

/** The sample count below which {@linkcode sampleSizeWarnings} warns even for small features. */
export const MIN_MEANINGFUL_COUNT = 1000;

/**
 * Warnings for a comparison whose sets are too small for its figures to mean much: FD needs more
 * images than feature dimensions (else the covariance is singular and FD is mostly small-sample
 * bias), and FD, KID and precision/recall all drift with n below about a thousand images, so
 * figures are comparable only at equal n (NVlabs/edm reports FID on 50,000).
 *
 * @param counts The sample and reference counts and the feature dimension.
 * @returns One line per problem; empty when none.
 * @example
 * ```ts
 * import { sampleSizeWarnings } from "./evaluate.ts";
 * const w = sampleSizeWarnings({ sampleCount: 16, referenceCount: 10000, featureDim: 128 });
 * console.assert(w.length === 1);
 * ```
 */
export function sampleSizeWarnings(
  counts: { sampleCount: number; referenceCount: number; featureDim: number },
): string[] {
  const { sampleCount, referenceCount, featureDim } = counts;
  const out: string[] = [];
  for (
    const [what, n, flag] of [
      ["samples", sampleCount, "--n"],
      ["reference images", referenceCount, "--ref-n"],
    ] as const
  ) {
    const need = Math.max(MIN_MEANINGFUL_COUNT, 2 * featureDim);
    if (n <= featureDim) {
      out.push(
        `only ${n} ${what} for ${featureDim}-dimensional features: the covariance is singular and ` +
          `FD is mostly small-sample bias; raise ${flag} to at least ${need}`,
      );
    } else if (n < need) {
      out.push(
        `only ${n} ${what}: FD, KID and precision/recall drift with the count below ${need}; ` +
          `compare figures only at equal ${flag} or raise it`,
      );
    }
  }
  return out;
}

/**
 * FD, IS, KID and precision/recall of `samples` against `reference`.
 *
 * @example
 * ```ts ignore
 * const report = await compareFeatures(real, fake, { network, rng: new Rng(0) });
 * ```
 */
export async function compareFeatures(
  reference: ExtractedFeatures,
  samples: ExtractedFeatures,
  options: CompareFeaturesOptions,
): Promise<EvaluationReport> {
  const { network, rng, kidSubsets = 100, kidSubsetSize = 1000, k = 3, isSplits = 10 } = options;
  const dim = network.featureDim;
  const stats = (f: ExtractedFeatures) => featureStats(f.features, { dim, network: network.name });
  const fd = options.stats
    ? frechetDistance(options.stats.reference, options.stats.samples)
    : frechetDistance(stats(reference), stats(samples));
  const score = (f: ExtractedFeatures) =>
    f.logits
      ? inceptionScore(f.logits, {
        numClasses: network.numClasses,
        splits: Math.max(1, Math.min(isSplits, Math.floor(f.count / 10))),
      })
      : undefined;
  const kid = await kernelInceptionDistance(reference.features, samples.features, {
    dim,
    rng,
    numSubsets: kidSubsets,
    subsetSize: kidSubsetSize,
  });
  const pr = await precisionRecall(reference.features, samples.features, { dim, k });
  return {
    network: network.name,
    sampleCount: samples.count,
    referenceCount: reference.count,
    fd,
    is: score(samples),
    referenceIs: score(reference),
    kid: { mean: kid.mean, std: kid.std, subsetSize: kid.subsetSize },
    precision: pr.precision,
    recall: pr.recall,
    warnings: sampleSizeWarnings({
      sampleCount: samples.count,
      referenceCount: reference.count,
      featureDim: dim,
    }),
  };
}
