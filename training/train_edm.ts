/**
 * The EDM training loop (EDM Section 5, Appendix F; the shape of NVlabs/edm `training_loop.py`):
 * seeded batches, optional non-leaky augmentation, the Table 1 loss of the chosen preconditioner,
 * Adam with learning-rate warm-up, EMA with half-life in images, JSON-lines metrics, periodic
 * atomic checkpoints and sample grids, exact resume, clean stop on abort, and a hard stop on a
 * non-finite loss that keeps the last good checkpoint.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { createProgress } from "../core/progress.ts";
import { countParams, type Params } from "../core/params.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { type Batch, batches } from "../data/dataset.ts";
import { adamStateTensors } from "./adam.ts";
import { createEma } from "./ema.ts";
import { augment, augmentLabelDim } from "./augment.ts";
import type { EdmTrainConfig } from "./edm_config.ts";
import { buildModel, type ModelSpec, modelSpecFor } from "../models/build_network.ts";
import { objectiveFor } from "./objective.ts";
import { rngNoise } from "../core/noise.ts";
import { writeRunCheckpoint } from "./run_checkpoint.ts";
import { writePreview } from "./preview.ts";
import { gradientNorm, optimizerStep, runState, runTrainingLoop, startRun } from "./run_loop.ts";
import { checkSameModel, openTrainerRun } from "./_loop_utils.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";
import { dropLabels } from "./label_dropout.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Options of {@linkcode trainEdm}. */
export type TrainEdmOptions = TrainLoopOptions;

/** What {@linkcode trainEdm} returns. */
export type TrainEdmResult = TrainLoopResult;

/** Scalar training state stored in a checkpoint beside the tensors. */
export interface EdmRunState extends RunStateBase {
  /** Format tag. */
  format: "diffuse-edm/1";
  /** The configuration the run was started with (run-length fields may change on resume). */
  config: EdmTrainConfig;
  /** Names of the classes of a class-conditional model (PNG class folders), index = label. */
  classNames?: string[];
}

// Fields that must match between a checkpoint and a resumed run; the rest (length, logging) may change.
const FROZEN: (keyof EdmTrainConfig)[] = ["data", "precond", "sde", "classConditional", "augmentP"];

/**
 * Trains an EDM model from `config`, writing into `options.runDir`.
 *
 * @throws {UserError} For bad data, a run directory that already holds a checkpoint (without
 *   `resume`), a checkpoint that does not match, or a non-finite loss (the last good checkpoint
 *   is kept and named in the message).
 * @example A tiny toy run
 * ```ts ignore
 * import { EDM_PRESETS } from "./edm_config.ts";
 * import { trainEdm } from "./train_edm.ts";
 * await trainEdm({ ...EDM_PRESETS.toy, kimg: 1 }, { runDir: "runs/toy" });
 * ```
 */
export async function trainEdm(
  config: EdmTrainConfig,
  options: TrainEdmOptions,
): Promise<TrainEdmResult> {
  requireBackend("trainEdm");
  const { runDir, progress = true } = options;
  const { ckptPath, saved, log, started } = await openTrainerRun<EdmRunState>(config, options, {
    format: "diffuse-edm/1",
    task: "train:edm",
    frozen: FROZEN,
  });

  const dataset = await loadDataset(config.data);
  if (config.classConditional && dataset.numClasses === 0) {
    throw new UserError(
      `train:edm: --cond needs class labels, but ${dataset.name} has none; use png:<folder> ` +
        `with one subfolder per class (or mnist), or drop --cond`,
    );
  }
  const rng = new Rng(config.seed);
  let spec: ModelSpec, params: Params;
  try {
    spec = modelSpecFor(
      { ...config, augmentDim: config.augmentP > 0 ? augmentLabelDim() : 0 },
      dataset,
    );
    if (saved) checkSameModel(saved.state.model, spec, ckptPath);
    params = buildModel(spec).init(rng);
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`train:edm: ${e.message}`);
    throw e;
  }
  const model = buildModel(spec);
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
    `model ${spec.name}: ${countParams(params).toLocaleString("en-US")} parameters; ` +
      `data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]`,
  );

  const objective = objectiveFor(config.precond, config.sde);
  const denoiser = objective.precond(model.network(params));
  const emaDenoiser = objective.precond(model.network(ema));
  const noiseSource = rngNoise(rng);
  const trainable = Object.values(params).filter((v) => v.trainable);
  const it = batches(
    dataset,
    run.position ? { batchSize: config.batchSize, resume: run.position } : {
      batchSize: config.batchSize,
      rng,
    },
  );

  const totalImages = Math.round(config.kimg * 1000);
  const bar = progress
    ? createProgress({ total: totalImages, label: "train", unit: "img", initial: run.imagesSeen })
    : null;
  // Gradients wait here between trainStep and applyUpdate, until the loss is known to be finite.
  let pending: { grads: Record<string, tf.Tensor>; imagesBefore: number; size: number } | null =
    null;
  const pixelsPerImage = dataset.shape.reduce((a, b) => a * b, 1);

  const save = async (): Promise<void> => {
    const state: EdmRunState = {
      format: "diffuse-edm/1",
      config,
      ...runState(run, { model: spec, rng, adam }),
      ...(config.classConditional && dataset.classNames ? { classNames: dataset.classNames } : {}),
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) => writePreview(emaDenoiser, { config, dataset, path });

  return await runTrainingLoop({
    counters: run,
    totalImages,
    batches: it,
    async evaluate(batch) {
      const value = trainStep(batch);
      const loss = (await value.data())[0] / pixelsPerImage;
      value.dispose();
      return loss;
    },
    gradNorm: () => gradientNorm(pending?.grads ?? {}),
    apply: applyUpdate,
    discard: discardPending,
    save,
    preview,
    cadence: config,
    schedule: config,
    bar,
    started,
    maxMinutes: config.maxMinutes,
    checkpointPath: ckptPath,
    nonFiniteHint: `Lower --lr (now ${config.lr}) or raise --lr-rampup`,
  }, options);

  function trainStep(batch: Batch): tf.Scalar {
    const draws = tf.tidy(() => {
      const y0 = tf.tensor(batch.images, batch.shape, "float32");
      const aug = config.augmentP > 0
        ? augment(y0 as tf.Tensor4D, rng, { p: config.augmentP })
        : { images: y0, labels: undefined };
      const classLabels = config.classConditional && batch.labels && dataset.numClasses > 0
        ? tf.cast(
          tf.oneHot(tf.tensor1d(batch.labels, "int32"), dataset.numClasses),
          "float32",
        ) as tf.Tensor2D
        : undefined;
      return {
        y: aug.images,
        augmentLabels: aug.labels as tf.Tensor2D | undefined,
        classLabels: classLabels && dropLabels(classLabels, config.condDrop ?? 0, rng),
      };
    });
    const sigmas = objective.drawSigmas(batch.size, rng);
    const sigma = tf.tensor1d(sigmas);
    const weight = objective.drawWeights ? tf.tensor1d(objective.drawWeights(sigmas)) : undefined;
    const noise = noiseSource.randn(draws.y.shape);
    const uniform = (shape: number[]) =>
      tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
    const { value, grads } = tf.variableGrads(
      () =>
        objective.loss(denoiser, draws.y, { sigma, noise, weight }, {
          classLabels: draws.classLabels,
          augmentLabels: draws.augmentLabels,
        }, { training: config.dropout > 0, uniform }),
      trainable,
    );
    tf.dispose([draws.y, draws.augmentLabels, draws.classLabels, sigma, noise, weight]);
    const named: Record<string, tf.Tensor> = {};
    // Unused parameters (e.g. the augmentation map of an unaugmented batch) get no gradient.
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    pending = { grads: named, imagesBefore: run.imagesSeen, size: batch.size };
    return value;
  }

  function discardPending(): void {
    if (pending) tf.dispose(Object.values(pending.grads));
    pending = null;
  }

  function applyUpdate(): void {
    if (!pending) return;
    optimizerStep({ adam, ema, params }, pending, config);
    pending = null;
  }
}
