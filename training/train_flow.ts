/**
 * The normalizing-flow training loop (Glow, Kingma & Dhariwal 2018, Section 5; RealNVP, Dinh et
 * al. 2017, Section 4): maximum likelihood (bits/dim of uniformly dequantized images, or nats/dim
 * for 2-D points) through the toolkit's one training loop (`runTrainingLoop`): seeded batches,
 * ActNorm data-dependent initialisation on a first batch of `initBatch` examples (fresh runs
 * only; the flags are in the checkpoint), Adam with linear warm-up and global gradient-norm
 * clipping, EMA, JSON-lines metrics (`loss` is the training bits/dim), atomic checkpoints, exact
 * resume, a clean stop on abort and a hard stop on a non-finite loss that keeps the last good
 * checkpoint, and sample grids at several temperatures.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { createProgress } from "../core/progress.ts";
import { countParams, type Params } from "../core/params.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { type Batch, batches, type Dataset } from "../data/dataset.ts";
import { adamStateTensors } from "./adam.ts";
import { createEma } from "./ema.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import type { FlowTrainConfig } from "./flow_config.ts";
import { buildFlow, type FlowModelSpec, flowSpecFor } from "./flow_model_spec.ts";
import { flowLoss } from "./flow_loss.ts";
import { dequantize, flowInputOf } from "../flows/image_likelihood.ts";
import { writeFlowPreview } from "./flow_preview.ts";
import { writeRunCheckpoint } from "./run_checkpoint.ts";
import {
  optimizerStep,
  type PendingUpdate,
  runState,
  runTrainingLoop,
  startRun,
} from "./run_loop.ts";
import { openTrainerRun } from "./_loop_utils.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";

/** Scalar training state stored in a flow checkpoint beside the tensors. */
export interface FlowRunState extends RunStateBase<FlowModelSpec> {
  /** Format tag. */
  format: "diffuse-flow/1";
  /** The configuration the run was started with. */
  config: FlowTrainConfig;
}

// Fields that must match between a checkpoint and a resumed run.
const FROZEN: (keyof FlowTrainConfig)[] = ["data", "arch", "nBins", "seed"];

/**
 * Trains a flow from `config`, writing into `options.runDir`.
 *
 * @param config The run's configuration (see `FLOW_TRAIN_PRESETS`).
 * @param options Run folder, resume, signal, log, progress.
 * @returns The run's result; `lastLoss` is the last step's bits/dim (nats/dim for points).
 * @throws {UserError} For bad data or shapes, an existing checkpoint without `resume`, a
 *   checkpoint that does not match, or a non-finite loss.
 * @example
 * ```ts ignore
 * import { FLOW_TRAIN_PRESETS } from "./flow_config.ts";
 * await trainFlow({ ...FLOW_TRAIN_PRESETS.mnist, kimg: 2 }, { runDir: "runs/glow" });
 * ```
 */
export async function trainFlow(
  config: FlowTrainConfig,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const { runDir, progress = true } = options;
  const { ckptPath, saved, log, started } = await openTrainerRun<FlowRunState>(config, options, {
    format: "diffuse-flow/1",
    task: "train:glow",
    frozen: FROZEN,
  });

  const dataset = await loadDataset(config.data);
  const rng = new Rng(config.seed);
  const spec = flowSpecFor(config.arch, dataset, config.nBins);
  let model: FlowModel, params: Params;
  try {
    model = buildFlow(spec);
    params = model.init(rng);
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`train:glow: ${e.message}`);
    throw e;
  }
  if (!saved) initializeActNorm(model, params, dataset, { spec, config });
  const ema = createEma(params);
  const { run, adam } = await startRun({
    saved,
    params,
    ema,
    rng,
    runDir,
    checkpointPath: ckptPath,
    log,
  });
  await Deno.mkdir(runDir, { recursive: true });
  log(
    `flow ${config.arch.kind} ${JSON.stringify(config.arch)}: ${
      countParams(params).toLocaleString("en-US")
    } ` +
      `parameters; data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]`,
  );

  const trainable = Object.values(params).filter((v) => v.trainable);
  const it = batches(
    dataset,
    run.position
      ? { batchSize: config.batchSize, resume: run.position }
      : { batchSize: config.batchSize, rng },
  );
  const totalImages = Math.round(config.kimg * 1000);
  const bar = progress ? createProgress({ total: totalImages, label: "train", unit: "img" }) : null;
  let pending: PendingUpdate | null = null;

  const save = async (): Promise<void> => {
    const state: FlowRunState = {
      format: "diffuse-flow/1",
      config,
      ...runState(run, { model: spec, rng, adam }),
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) =>
    writeFlowPreview(model, ema, {
      spec,
      dataset,
      n: config.gridImages,
      temperatures: config.gridTemperatures,
      path,
    });

  return await runTrainingLoop({
    counters: run,
    totalImages,
    batches: it,
    async evaluate(batch) {
      const value = trainStep(batch);
      const loss = (await value.data())[0];
      value.dispose();
      return loss;
    },
    apply() {
      if (pending) optimizerStep({ adam, ema, params }, pending, config);
      pending = null;
    },
    discard() {
      if (pending) tf.dispose(Object.values(pending.grads));
      pending = null;
    },
    save,
    preview,
    cadence: config,
    schedule: config,
    bar,
    started,
    maxMinutes: config.maxMinutes,
    checkpointPath: ckptPath,
    nonFiniteHint: `Lower --lr (now ${config.lr}), raise --lr-rampup or lower --clip`,
  }, options);

  function trainStep(batch: Batch): tf.Scalar {
    const x = tf.tensor(batch.images, [batch.size, ...spec.shape]) as tf.Tensor4D;
    const { value, grads } = tf.variableGrads(
      () => tf.mean(flowLoss(model, params, x, { spec, rng })),
      trainable,
    );
    x.dispose();
    const named: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    pending = { grads: named, imagesBefore: run.imagesSeen, size: batch.size };
    return value;
  }
}

// ActNorm's data-dependent initialisation on the first `initBatch` examples of a seeded order
// (dequantized like a training batch), before the EMA copy is taken.
function initializeActNorm(
  model: FlowModel,
  params: Params,
  dataset: Dataset,
  options: { spec: FlowModelSpec; config: FlowTrainConfig },
): void {
  const { spec, config } = options;
  const rng = new Rng(config.seed + 1);
  const first = batches(dataset, { batchSize: Math.min(config.initBatch, dataset.count), rng })
    .next().value as Batch;
  tf.tidy(() => {
    const x = tf.tensor(first.images, [first.size, ...spec.shape]) as tf.Tensor4D;
    if (spec.input === "none") return model.initialize(params, x);
    const noise = tf.tensor(rng.fillUniform(new Float32Array(x.size)), x.shape) as tf.Tensor4D;
    const y = dequantize(x, noise, { nBins: spec.nBins });
    model.initialize(params, flowInputOf(y, { input: spec.input }).x);
  });
}
