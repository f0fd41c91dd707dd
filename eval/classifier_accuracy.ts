/**
 * Top-1 accuracy of a classifying {@linkcode FeatureNetwork} on a labelled slice of a dataset: the
 * check that the built-in MNIST classifier (whose features define the MNIST Frechet distance)
 * actually recognizes digits.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Dataset } from "../data/dataset.ts";
import type { FeatureNetwork } from "./types.ts";

/** Options of {@linkcode classifierAccuracy}. */
export interface ClassifierAccuracyOptions {
  /** Index of the first example to score. @default 0 */
  start?: number;
  /** Number of examples to score. @default dataset.count - start */
  count?: number;
  /** Images per forward pass. @default 250 */
  batchSize?: number;
}

/**
 * Fraction of examples `start .. start + count - 1` whose arg-max logit equals their label.
 *
 * @param network A network with `numClasses > 0`; not disposed.
 * @param dataset Labelled images of the shape the network takes.
 * @param options The slice and the batch size.
 * @returns The accuracy in [0, 1].
 * @throws {RangeError} For a network without logits, an unlabelled dataset or a slice outside it.
 * @example Accuracy of the shipped classifier on the held-out digits
 * ```ts ignore
 * import { loadMnist } from "../data/mnist.ts";
 * import { loadMnistClassifier } from "./mnist_classifier.ts";
 * import { classifierAccuracy } from "./classifier_accuracy.ts";
 * const net = await loadMnistClassifier();
 * const acc = await classifierAccuracy(net, await loadMnist(), { start: 8000 }); // ~0.98
 * ```
 */
export async function classifierAccuracy(
  network: FeatureNetwork,
  dataset: Dataset,
  options: ClassifierAccuracyOptions = {},
): Promise<number> {
  const { start = 0, count = dataset.count - start, batchSize = 250 } = options;
  if (network.numClasses < 1) {
    throw new RangeError(`network "${network.name}" has no class logits; use a classifier`);
  }
  if (dataset.shape.length !== 3) {
    throw new RangeError(`dataset "${dataset.name}" holds points, not images; pass an image set`);
  }
  if (!dataset.labels) {
    throw new RangeError(`dataset "${dataset.name}" has no labels; accuracy needs labels`);
  }
  if (
    !Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 ||
    start + count > dataset.count
  ) {
    throw new RangeError(
      `slice start ${start}, count ${count} is outside the ${dataset.count} examples of ` +
        `"${dataset.name}"; pick 0 <= start and start + count <= ${dataset.count}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const pixels = dataset.images.length / dataset.count;
  let correct = 0;
  for (let from = start; from < start + count; from += batchSize) {
    const n = Math.min(batchSize, start + count - from);
    const predicted = tf.tidy(() => {
      const x = tf.tensor4d(
        dataset.images.subarray(from * pixels, (from + n) * pixels),
        [n, ...dataset.shape] as [number, number, number, number],
      );
      const { features, logits } = network.apply(x);
      features.dispose();
      return tf.argMax(logits!, 1);
    });
    const labels = await predicted.data();
    predicted.dispose();
    for (let i = 0; i < n; i++) if (labels[i] === dataset.labels[from + i]) correct++;
  }
  return correct / count;
}
