/**
 * `deno task train:classifier`: trains the built-in MNIST classifier (`eval/mnist_classifier.ts`,
 * the feature network of the MNIST Frechet distance) on the first 8,000 digits of `data/mnist.ts`,
 * reports its accuracy on the held-out last 2,000, and writes the weights as safetensors
 * (atomically) with a JSON training record, including that accuracy and the command, under the
 * `__metadata__` key "diffuse". Thin: flags in, `trainMnistClassifier` does the work.
 *
 * @module
 */
import { dirname } from "node:path";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { selectBackend } from "../core/engine.ts";
import { createProgress } from "../core/progress.ts";
import { disposeParams } from "../core/params.ts";
import { writeSafetensors } from "../core/safetensors.ts";
import { UserError } from "../core/errors.ts";
import { loadMnist } from "../data/mnist.ts";
import { MNIST_CLASSIFIER_NAME } from "../eval/mnist_classifier.ts";
import { trainMnistClassifier } from "../training/train_classifier.ts";
import { runTask } from "./_main.ts";
import { BACKEND_FLAG } from "./_flags.ts";

const FLAGS = {
  epochs: { type: "int", default: 16, min: 1, help: "passes over the 8,000 training digits" },
  batch: { type: "int", default: 64, min: 1, help: "images per Adam step" },
  lr: { type: "number", default: 2e-3, gt: 0, help: "peak Adam learning rate (cosine decay)" },
  shift: { type: "int", default: 2, min: 0, max: 8, help: "random translation in pixels" },
  seed: { type: "int", default: 0, help: "random seed (weights, batch order, shifts)" },
  out: {
    type: "string",
    path: "file",
    default: "eval/weights/mnist_classifier.safetensors",
    help: "weights file to write",
  },
  backend: BACKEND_FLAG,
  "dry-run": { type: "boolean", help: "print the resolved options and exit" },
} as const;

const HELP = {
  task: "train:classifier",
  summary: "Trains the MNIST feature network (conv 32-64-64, dense 128, dense 10) used for\n" +
    "the MNIST Frechet distance and classifier IS: Adam, cross-entropy, seeded. Trains on digits\n" +
    "0..7999 of data/mnist.ts, prints the accuracy on digits 8000..9999, and writes the weights\n" +
    "with that accuracy and this command in the file's metadata. About 5 minutes on 2 cores.",
  examples: [
    "deno task train:classifier                                  # rewrite the shipped weights",
    "deno task train:classifier --epochs 2 --out runs/clf.safetensors",
    "deno task train:classifier --seed 1 --lr 1e-3 --batch 32 --out runs/clf-seed1.safetensors",
  ],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "train:classifier" });
  const options = {
    epochs: f.epochs!,
    batchSize: f.batch!,
    lr: f.lr!,
    shift: f.shift!,
    seed: f.seed!,
    trainCount: 8000,
    testCount: 2000,
  };
  if (!f.out!.endsWith(".safetensors")) {
    throw new UserError(`train:classifier: --out ${f.out} must end in .safetensors`);
  }
  if (f["dry-run"]) return console.log(JSON.stringify({ out: f.out, ...options }, null, 2));
  const backend = await selectBackend({ backend: f.backend });
  const dataset = await loadMnist();
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.error("\ninterrupted: evaluating and saving the weights so far (Ctrl-C again to quit)");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  const bar = createProgress({
    total: options.epochs * Math.ceil(options.trainCount / options.batchSize),
    label: "train:classifier",
    unit: "step",
  });
  let result;
  try {
    result = await trainMnistClassifier(dataset, {
      ...options,
      signal: controller.signal,
      onStep: (r) =>
        bar.update(r.step, { epoch: `${r.epoch + 1}/${options.epochs}`, loss: r.loss }),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
  bar.finish({ loss: result.lastEpochLoss });
  const record = {
    network: MNIST_CLASSIFIER_NAME,
    testAccuracy: result.testAccuracy,
    trainAccuracy: result.trainAccuracy,
    trainDigits: `data/mnist.ts loadMnist() digits 0..${result.config.trainCount - 1}`,
    testDigits: `data/mnist.ts loadMnist() digits ${dataset.count - result.config.testCount}..` +
      `${dataset.count - 1}`,
    config: result.config,
    steps: result.steps,
    stoppedEarly: result.stoppedEarly,
    seconds: Math.round(result.seconds),
    backend,
    command: ["deno task train:classifier", ...args].join(" "),
  };
  const tensors: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const [name, v] of Object.entries(result.params)) {
    tensors[name] = { data: (await v.data()) as Float32Array, shape: v.shape };
  }
  disposeParams(result.params);
  await Deno.mkdir(dirname(f.out!), { recursive: true });
  await writeSafetensors(f.out!, tensors, { metadata: { diffuse: JSON.stringify(record) } });
  console.log(
    `test accuracy ${(100 * result.testAccuracy).toFixed(2)}% on ${result.config.testCount} ` +
      `held-out digits (train ${(100 * result.trainAccuracy).toFixed(2)}%), ` +
      `${result.steps} steps, ${result.seconds.toFixed(0)} s` +
      (result.stoppedEarly ? " (stopped early)" : ""),
  );
  console.log(`weights: ${f.out}`);
});
