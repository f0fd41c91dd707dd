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
import { join } from "node:path";
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { createProgress } from "../core/progress.ts";
import { countParams, type Params } from "../core/params.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { type Batch, batches, type BatchPosition } from "../data/dataset.ts";
import {
  adamScalars,
  adamStateTensors,
  adamStep,
  createAdam,
  disposeAdam,
  restoreAdam,
} from "./adam.ts";
import { createEma, emaUpdate } from "./ema.ts";
import { augment, augmentLabelDim } from "./augment.ts";
import type { EdmTrainConfig } from "./edm_config.ts";
import { buildModel, type ModelSpec, modelSpecFor } from "../models/build_network.ts";
import { objectiveFor } from "./objective.ts";
import { rngNoise } from "../core/noise.ts";
import { CHECKPOINT_FILE, writeRunCheckpoint } from "./run_checkpoint.ts";
import { writePreview } from "./preview.ts";
import { truncateMetrics, writeLossPlot } from "./metrics_log.ts";
import {
  checkResumable,
  checkSameModel,
  createRunCadence,
  nonFiniteLossError,
  openRun,
  stopReason,
} from "./_loop_utils.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";

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
}

// Fields that must match between a checkpoint and a resumed run; the rest (length, logging) may change.
const FROZEN: (keyof EdmTrainConfig)[] = ["data", "precond", "classConditional", "augmentP"];

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
  const { runDir, resume = false, signal, progress = true, maxSteps = Infinity } = options;
  const log = options.log ?? ((m: string) => console.error(m));
  const started = performance.now();
  const ckptPath = join(runDir, CHECKPOINT_FILE);
  const saved = await openRun<EdmRunState>(ckptPath, resume);
  if (saved) checkResumable(saved.state.config, config, { keys: FROZEN, path: ckptPath });

  const dataset = await loadDataset(config.data);
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
  let adam = createAdam(params);
  let step = 0, imagesSeen = 0, trainSeconds = 0, lastLoss = NaN;
  let position: BatchPosition | null = null;
  if (saved) {
    saved.assign("net.", params);
    saved.assign("ema.", ema);
    disposeAdam(adam);
    adam = restoreAdam(params, {
      tensors: saved.tensorsWithPrefix("adam."),
      scalars: saved.state.adam,
    });
    step = saved.state.step;
    imagesSeen = saved.state.imagesSeen;
    trainSeconds = saved.state.trainSeconds;
    lastLoss = saved.state.lastLoss;
    position = saved.state.data;
    rng.restore(saved.state.rng);
    saved.dispose();
    await truncateMetrics(join(runDir, "metrics.jsonl"), step);
    log(`resumed ${ckptPath} at step ${step} (${(imagesSeen / 1000).toFixed(1)} kimg)`);
  }
  await Deno.mkdir(runDir, { recursive: true });
  log(
    `model ${spec.name}: ${countParams(params).toLocaleString("en-US")} parameters; ` +
      `data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]`,
  );

  const objective = objectiveFor(config.precond);
  const denoiser = objective.precond(model.network(params));
  const emaDenoiser = objective.precond(model.network(ema));
  const noiseSource = rngNoise(rng);
  const trainable = Object.values(params).filter((v) => v.trainable);
  const it = batches(
    dataset,
    position ? { batchSize: config.batchSize, resume: position } : {
      batchSize: config.batchSize,
      rng,
    },
  );

  const totalImages = Math.round(config.kimg * 1000);
  const bar = progress ? createProgress({ total: totalImages, label: "train", unit: "img" }) : null;
  let gridPath: string | undefined;
  let stoppedEarly: string | undefined;
  let stepsThisCall = 0;
  // Gradients wait here between trainStep and applyUpdate, until the loss is known to be finite.
  let pending: { grads: Record<string, tf.Tensor>; imagesBefore: number; size: number } | null =
    null;
  const pixelsPerImage = dataset.shape.reduce((a, b) => a * b, 1);

  const save = async (): Promise<void> => {
    const state: EdmRunState = {
      format: "diffuse-edm/1",
      config,
      model: spec,
      step,
      imagesSeen,
      rng: rng.state(),
      data: position,
      adam: adamScalars(adam),
      lastLoss,
      trainSeconds,
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) => writePreview(emaDenoiser, { config, dataset, path });
  const cadence = createRunCadence({
    runDir,
    totalImages,
    imagesSeen,
    logEvery: config.logEvery,
    checkpointKimg: config.checkpointKimg,
    sampleKimg: config.sampleKimg,
    lr: currentLr,
    save,
    preview,
  });

  while (imagesSeen < totalImages) {
    stoppedEarly = stopReason({
      signal,
      started,
      maxMinutes: config.maxMinutes,
      stepsThisCall,
      maxSteps,
    });
    if (stoppedEarly) break;
    const t0 = performance.now();
    const batch: Batch = it.next().value as Batch;
    const value = trainStep(batch);
    const lossValue = (await value.data())[0] / pixelsPerImage;
    value.dispose();
    if (!Number.isFinite(lossValue)) {
      bar?.finish();
      throw await nonFiniteLossError(lossValue, {
        step: step + 1,
        checkpointPath: ckptPath,
        hint:
          `Lower --lr (now ${config.lr}) or raise --lr-rampup, then --resume or start a new --out`,
      });
    }
    // The update is applied only once the loss is known to be finite.
    applyUpdate();
    lastLoss = lossValue;
    step++;
    stepsThisCall++;
    imagesSeen += batch.size;
    position = batch.next;
    trainSeconds += (performance.now() - t0) / 1000;
    options.onStep?.({ step, imagesSeen, loss: lossValue });
    bar?.update(Math.min(imagesSeen, totalImages), { loss: lossValue, kimg: imagesSeen / 1000 });
    gridPath = await cadence.afterStep({
      step,
      imagesSeen,
      loss: lossValue,
      batchSize: batch.size,
      trainSeconds,
    }) ?? gridPath;
    // Yield so Ctrl-C and timers run between steps.
    await new Promise((r) => setTimeout(r, 0));
  }
  bar?.finish({ loss: lastLoss });
  await save();
  if (stoppedEarly !== "maxSteps") {
    gridPath = await preview(join(runDir, "samples.png"));
    await writeLossPlot(join(runDir, "metrics.jsonl"), join(runDir, "loss.svg"));
  }
  const seconds = (performance.now() - started) / 1000;
  log(`checkpoint saved to ${ckptPath}` + (stoppedEarly ? ` (${stoppedEarly})` : ""));
  return { step, imagesSeen, lastLoss, seconds, checkpointPath: ckptPath, gridPath, stoppedEarly };

  function currentLr(): number {
    return config.lr * Math.min(imagesSeen / Math.max(config.lrRampupKimg * 1000, 1e-8), 1);
  }

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
      return { y: aug.images, augmentLabels: aug.labels as tf.Tensor2D | undefined, classLabels };
    });
    const sigma = tf.tensor1d(objective.drawSigmas(batch.size, rng));
    const noise = noiseSource.randn(draws.y.shape);
    const uniform = (shape: number[]) =>
      tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
    const { value, grads } = tf.variableGrads(
      () =>
        objective.loss(denoiser, draws.y, { sigma, noise }, {
          classLabels: draws.classLabels,
          augmentLabels: draws.augmentLabels,
        }, { training: config.dropout > 0, uniform }),
      trainable,
    );
    tf.dispose([draws.y, draws.augmentLabels, draws.classLabels, sigma, noise]);
    const named: Record<string, tf.Tensor> = {};
    // Unused parameters (e.g. the augmentation map of an unaugmented batch) get no gradient.
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    pending = { grads: named, imagesBefore: imagesSeen, size: batch.size };
    return value;
  }

  function applyUpdate(): void {
    if (!pending) return;
    adamStep(adam, pending.grads, {
      lr: config.lr,
      imagesSeen: pending.imagesBefore,
      rampupImages: config.lrRampupKimg * 1000,
    });
    tf.dispose(Object.values(pending.grads));
    emaUpdate(ema, params, {
      batchSize: pending.size,
      imagesSeen: pending.imagesBefore,
      halfLifeImages: config.emaHalfLifeKimg * 1000,
      rampupRatio: config.emaRampupRatio,
    });
    pending = null;
  }
}
