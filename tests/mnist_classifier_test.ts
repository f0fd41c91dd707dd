/**
 * The built-in MNIST feature network: architecture, the shipped weights' held-out accuracy, and
 * the seeded training function's split.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { countParams, disposeParams } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import type { Dataset } from "../data/dataset.ts";
import { loadMnist } from "../data/mnist.ts";
import { classifierAccuracy } from "../eval/classifier_accuracy.ts";
import {
  initMnistClassifier,
  loadMnistClassifier,
  MNIST_CLASSIFIER_WEIGHTS,
  mnistClassifierForward,
  mnistClassifierNetwork,
} from "../eval/mnist_classifier.ts";
import { trainMnistClassifier } from "../training/train_classifier.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const mnist = await loadMnist();

Deno.test("mnistClassifierForward() maps [N, 28, 28, 1] to 128 ReLU features and 10 logits", () => {
  const params = initMnistClassifier(new Rng(0));
  // conv 1->32, 32->64, 64->64 (3x3 + bias), dense 1024->128, 128->10.
  const expected = (9 * 1 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 64 + 1025 * 128 +
    129 * 10;
  assert.equal(countParams(params), expected);
  const net = mnistClassifierNetwork(params);
  assert.equal(net.featureDim, 128);
  assert.equal(net.numClasses, 10);
  assert.equal(net.name, "mnist-classifier");
  const x = tf.tensor4d(mnist.images.subarray(0, 3 * 784), [3, 28, 28, 1]);
  const before = tf.memory().numTensors;
  const { features, logits } = net.apply(x);
  assert.deepEqual(features.shape, [3, 128]);
  assert.deepEqual(logits!.shape, [3, 10]);
  assert.ok(features.dataSync().every((v) => v >= 0), "features come after a ReLU");
  // The logits are the last dense layer of exactly these features.
  const again = tf.tidy(() =>
    tf.add(tf.matMul(features, params["out.weight"]), params["out.bias"])
  );
  const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(again, logits!))).dataSync()[0]);
  assert.ok(gap < 1e-4, `logits differ from features W + b by ${gap}`);
  tf.dispose([features, logits!, again]);
  assert.equal(tf.memory().numTensors, before, "no leaked tensors");
  assert.throws(
    () => mnistClassifierForward(params, tf.zeros([1, 32, 32, 3]) as tf.Tensor4D),
    /\[N, 28, 28, 1\]/,
  );
  x.dispose();
  net.dispose();
});

Deno.test("the shipped weights reach their stated held-out accuracy (>= 98%) on digits 8000..9999", async () => {
  const { size } = await Deno.stat(MNIST_CLASSIFIER_WEIGHTS);
  assert.ok(size < 1_000_000, `weights file is ${size} bytes`);
  const net = await loadMnistClassifier();
  const record = JSON.parse(net.metadata.diffuse);
  assert.match(record.command, /^deno task train:classifier/);
  assert.equal(record.config.trainCount, 8000, "trained on digits 0..7999 only");
  const before = tf.memory().numTensors;
  const accuracy = await classifierAccuracy(net, mnist, { start: 8000, count: 2000 });
  assert.equal(tf.memory().numTensors, before, "no leaked tensors");
  assert.ok(accuracy >= 0.98, `held-out accuracy ${accuracy}`);
  // Same digits, same weights: at most 2 of 2,000 may flip between backends' rounding.
  assert.ok(
    Math.abs(accuracy - record.testAccuracy) <= 0.001,
    `measured ${accuracy}, stated ${record.testAccuracy}`,
  );
  net.dispose();
});

Deno.test("loadMnistClassifier() reports a missing or foreign file as a UserError", async () => {
  await assert.rejects(() => loadMnistClassifier("/nonexistent/w.safetensors"), UserError);
  const dir = await Deno.makeTempDir();
  const { writeSafetensors } = await import("../core/safetensors.ts");
  await writeSafetensors(`${dir}/w.safetensors`, { w: { data: new Float32Array(2), shape: [2] } });
  await assert.rejects(
    () => loadMnistClassifier(`${dir}/w.safetensors`),
    (e: Error) => e instanceof UserError && /conv0\.weight/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainMnistClassifier() is seeded, learns, and never reads the held-out digits", async () => {
  const trainCount = 256, testCount = 64;
  // The held-out digits are NaN: any use of them in training would make the weights NaN.
  const images = mnist.images.slice(0, (trainCount + testCount) * 784);
  images.fill(NaN, trainCount * 784);
  const ds: Dataset = {
    ...mnist,
    images,
    labels: mnist.labels!.slice(0, trainCount + testCount),
    count: trainCount + testCount,
  };
  const losses: number[] = [];
  const options = { epochs: 3, batchSize: 32, trainCount, testCount, seed: 5, shift: 0 };
  const a = await trainMnistClassifier(ds, { ...options, onStep: (r) => losses.push(r.loss) });
  const b = await trainMnistClassifier(ds, options);
  assert.equal(a.steps, 3 * 8);
  assert.deepEqual(a.params["fc0.weight"].dataSync(), b.params["fc0.weight"].dataSync());
  for (const v of Object.values(a.params)) {
    assert.ok(v.dataSync().every(Number.isFinite), "weights stay finite");
  }
  const first = losses.slice(0, 4).reduce((s, v) => s + v, 0) / 4;
  const last = losses.slice(-4).reduce((s, v) => s + v, 0) / 4;
  assert.ok(last < first * 0.8, `loss ${first} -> ${last}`);
  assert.ok(a.trainAccuracy > 0.4, `train accuracy ${a.trainAccuracy} after 24 steps`);
  disposeParams(a.params);
  disposeParams(b.params);
  await assert.rejects(
    () => trainMnistClassifier(ds, { trainCount: 300, testCount: 64 }),
    /held-out digits are never trained on/,
  );
});
