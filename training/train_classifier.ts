/**
 * Trains the built-in MNIST classifier (`eval/mnist_classifier.ts`), whose penultimate features
 * define the MNIST Frechet distance: softmax cross-entropy, Adam (Kingma and Ba 2015, Algorithm 1)
 * with a half-cosine learning-rate decay to 0, seeded batch order and initialization, optional
 * random translations of up to `shift` pixels (the classic MNIST augmentation), and a held-out
 * split: it trains on the first `trainCount` examples and reports accuracy on the last `testCount`
 * (`data/mnist.ts` interleaves the classes, so both slices are nearly balanced).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { disposeParams, type Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import { batches, type Dataset } from "../data/dataset.ts";
import { classifierAccuracy } from "../eval/classifier_accuracy.ts";
import {
  initMnistClassifier,
  mnistClassifierForward,
  mnistClassifierNetwork,
} from "../eval/mnist_classifier.ts";
import { adamStep, createAdam, disposeAdam } from "./adam.ts";

/** Options of {@linkcode trainMnistClassifier}. */
export interface TrainClassifierOptions {
  /** Passes over the training slice. @default 16 */
  epochs?: number;
  /** Images per Adam step. @default 64 */
  batchSize?: number;
  /** Peak Adam learning rate (decays to 0 along a half cosine). @default 2e-3 */
  lr?: number;
  /** Seed of the initial weights, batch order and translations. @default 0 */
  seed?: number;
  /** Training examples: the first `trainCount` of the dataset. @default 8000 */
  trainCount?: number;
  /** Held-out examples: the last `testCount` of the dataset (disjoint from training). @default 2000 */
  testCount?: number;
  /** Largest random translation in pixels (each axis, zero fill); 0 turns it off. @default 2 */
  shift?: number;
  /** Called after every step with the progress so far. @default undefined */
  onStep?: (record: ClassifierStepRecord) => void;
  /** Stops training early (the result says so); the weights so far are still evaluated. */
  signal?: AbortSignal;
}

/** Progress of one training step. */
export interface ClassifierStepRecord {
  /** Steps done, from 1. */
  step: number;
  /** Total steps planned. */
  totalSteps: number;
  /** Epoch of this step, from 0. */
  epoch: number;
  /** Mean cross-entropy of this step's batch (nats). */
  loss: number;
  /** Learning rate used. */
  lr: number;
}

/** What {@linkcode trainMnistClassifier} returns. */
export interface TrainClassifierResult {
  /** Trained parameters; the caller owns them (free with `disposeParams`). */
  params: Params;
  /** Top-1 accuracy on the held-out slice. */
  testAccuracy: number;
  /** Top-1 accuracy on the training slice (without translations). */
  trainAccuracy: number;
  /** Mean loss over the last epoch's steps. */
  lastEpochLoss: number;
  /** Steps taken. */
  steps: number;
  /** Wall-clock seconds of training and evaluation. */
  seconds: number;
  /** The resolved options (without callbacks), for the weights file's metadata. */
  config: Required<Omit<TrainClassifierOptions, "onStep" | "signal">>;
  /** Whether `signal` stopped training before the last step. */
  stoppedEarly: boolean;
}

/**
 * Trains a fresh MNIST classifier on the first `trainCount` examples of `dataset` and measures it
 * on the last `testCount`.
 *
 * @param dataset Labelled 28x28x1 images in [-1, 1] (e.g. `await loadMnist()`); only read.
 * @param options Schedule, split, seed and callbacks.
 * @returns The trained parameters and the accuracies.
 * @throws {RangeError} For a dataset that is not labelled 28x28x1 digits, overlapping or oversized
 *   slices, or non-positive epochs, batch size or learning rate.
 * @example A short run on the MNIST digits
 * ```ts ignore
 * import { loadMnist } from "../data/mnist.ts";
 * import { trainMnistClassifier } from "./train_classifier.ts";
 * const result = await trainMnistClassifier(await loadMnist(), { epochs: 1 });
 * console.log(result.testAccuracy);
 * ```
 */
export async function trainMnistClassifier(
  dataset: Dataset,
  options: TrainClassifierOptions = {},
): Promise<TrainClassifierResult> {
  const {
    epochs = 16,
    batchSize = 64,
    lr = 2e-3,
    seed = 0,
    trainCount = 8000,
    testCount = 2000,
    shift = 2,
    onStep,
    signal,
  } = options;
  checkOptions(dataset, { epochs, batchSize, lr, trainCount, testCount, shift });
  const started = performance.now();
  const rng = new Rng(seed);
  const params = initMnistClassifier(rng);
  const adam = createAdam(params);
  const train = slice(dataset, 0, trainCount);
  const stepsPerEpoch = Math.ceil(trainCount / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  let step = 0, epochLossSum = 0, epochSteps = 0, lastEpochLoss = NaN, currentEpoch = 0;
  let stoppedEarly = false;
  try {
    for (const batch of batches(train, { batchSize, rng, epochs })) {
      if (signal?.aborted) {
        stoppedEarly = true;
        break;
      }
      if (batch.epoch !== currentEpoch) {
        lastEpochLoss = epochLossSum / epochSteps;
        currentEpoch = batch.epoch;
        epochLossSum = epochSteps = 0;
      }
      const images = shift > 0 ? translate(batch.images, batch.size, shift, rng) : batch.images;
      const x = tf.tensor4d(images, [batch.size, 28, 28, 1]);
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d(batch.labels!, "int32"), 10));
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(params, x, y),
        Object.values(params),
      );
      const named: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(params)) named[name] = grads[v.name];
      // Half-cosine decay from lr (step 0) towards 0 (after the last step).
      const lrNow = lr * 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps));
      adamStep(adam, named, { lr: lrNow });
      const loss = (await value.data())[0];
      tf.dispose([x, y, value, ...Object.values(grads)]);
      step++;
      epochLossSum += loss;
      epochSteps++;
      onStep?.({ step, totalSteps, epoch: batch.epoch, loss, lr: lrNow });
      // Yield to the event loop so a SIGINT handler can set the signal.
      if (step % 20 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    if (epochSteps > 0) lastEpochLoss = epochLossSum / epochSteps;
  } catch (e) {
    disposeAdam(adam);
    disposeParams(params);
    throw e;
  }
  disposeAdam(adam);
  const network = mnistClassifierNetwork(params);
  const testAccuracy = await classifierAccuracy(network, dataset, {
    start: dataset.count - testCount,
    count: testCount,
  });
  const trainAccuracy = await classifierAccuracy(network, dataset, { start: 0, count: trainCount });
  return {
    params,
    testAccuracy,
    trainAccuracy,
    lastEpochLoss,
    steps: step,
    seconds: (performance.now() - started) / 1000,
    config: { epochs, batchSize, lr, seed, trainCount, testCount, shift },
    stoppedEarly,
  };
}

function crossEntropy(params: Params, x: tf.Tensor4D, oneHot: tf.Tensor): tf.Scalar {
  const { features, logits } = mnistClassifierForward(params, x);
  features.dispose();
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

/** Shifts each image by integer offsets in [-shift, shift] per axis, filling with -1 (black). */
function translate(images: Float32Array, n: number, shift: number, rng: Rng): Float32Array {
  const out = new Float32Array(images.length).fill(-1);
  for (let b = 0; b < n; b++) {
    const dy = rng.int(2 * shift + 1) - shift, dx = rng.int(2 * shift + 1) - shift;
    const base = b * 784;
    for (let r = Math.max(0, dy); r < Math.min(28, 28 + dy); r++) {
      const from = base + (r - dy) * 28;
      const to = base + r * 28;
      for (let c = Math.max(0, dx); c < Math.min(28, 28 + dx); c++) {
        out[to + c] = images[from + c - dx];
      }
    }
  }
  return out;
}

function slice(dataset: Dataset, start: number, count: number): Dataset {
  const pixels = dataset.images.length / dataset.count;
  return {
    ...dataset,
    name: `${dataset.name}[${start}:${start + count}]`,
    images: dataset.images.subarray(start * pixels, (start + count) * pixels),
    labels: dataset.labels!.subarray(start, start + count),
    count,
  };
}

function checkOptions(
  dataset: Dataset,
  o: {
    epochs: number;
    batchSize: number;
    lr: number;
    trainCount: number;
    testCount: number;
    shift: number;
  },
): void {
  if (dataset.shape.join("x") !== "28x28x1" || !dataset.labels || dataset.numClasses !== 10) {
    throw new RangeError(
      `dataset "${dataset.name}" (shape [${dataset.shape}], ${dataset.numClasses} classes) is not ` +
        `labelled 28x28x1 digits: train the MNIST classifier on loadMnist()`,
    );
  }
  for (const [name, v] of [["epochs", o.epochs], ["batchSize", o.batchSize]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
    }
  }
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) {
    throw new RangeError(`lr must be a finite number > 0, got ${o.lr}: try 2e-3`);
  }
  if (!Number.isInteger(o.shift) || o.shift < 0 || o.shift > 8) {
    throw new RangeError(`shift must be an integer in 0..8 pixels, got ${o.shift}`);
  }
  const { trainCount, testCount } = o;
  if (
    !Number.isInteger(trainCount) || !Number.isInteger(testCount) || trainCount < 1 ||
    testCount < 1 || trainCount + testCount > dataset.count
  ) {
    throw new RangeError(
      `trainCount ${trainCount} + testCount ${testCount} must be positive integers summing to at ` +
        `most the ${dataset.count} examples, so the held-out digits are never trained on`,
    );
  }
}
