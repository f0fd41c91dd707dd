/**
 * The step loop every trainer of the toolkit runs (`trainEdm`, `trainDdpm`; the shape of NVlabs/edm
 * `training_loop.py`): stop on abort, time limit or step budget; one loss and gradient evaluation
 * per batch; a non-finite loss stops before the update with the last good checkpoint kept; then
 * the update, the counters, the progress bar and the metric/checkpoint/grid cadence; at the end a
 * final checkpoint, sample grid and loss plot.
 *
 * Not tied to one paper: the trainers cite theirs. What differs between them (the loss, the
 * update, what a checkpoint holds) comes in as functions.
 *
 * @module
 */
import { join } from "node:path";
import type { Progress } from "../core/progress.ts";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import * as tf from "@tensorflow/tfjs-core";
import { adamScalars, type AdamState, adamStep, createAdam, restoreAdam } from "./adam.ts";
import type { ModelSpec } from "../models/build_network.ts";
import { emaUpdate } from "./ema.ts";
import type { RunCheckpoint } from "./run_checkpoint.ts";
import type { RunStateBase } from "./train_loop_types.ts";
import type { Batch, BatchPosition } from "../data/dataset.ts";
import { truncateMetrics, writeLossPlot } from "./metrics_log.ts";
import { createRunCadence, nonFiniteLossError, stopReason } from "./_loop_utils.ts";
import type { TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";

/** A run's counters: advanced by {@linkcode runTrainingLoop}, read by the trainer's `save`. */
export interface RunCounters {
  /** Steps taken in total. */
  step: number;
  /** Images seen in total. */
  imagesSeen: number;
  /** Seconds spent in steps in total. */
  trainSeconds: number;
  /** Loss of the last step. */
  lastLoss: number;
  /** Where the batch iterator resumes. */
  position: BatchPosition | null;
}

/**
 * The checkpoint state every run stores (`RunStateBase`) from its counters and parts.
 *
 * @param run The counters.
 * @param parts The network's description, the generator and the optimizer.
 * @returns The state; the trainer adds its format tag, config and extras.
 * @example
 * ```ts ignore
 * const state = { format: "diffuse-edm/1", config, ...runState(run, { model: spec, rng, adam }) };
 * ```
 */
export function runState<M = ModelSpec>(
  run: RunCounters,
  parts: { model: M; rng: Rng; adam: AdamState },
): RunStateBase<M> {
  return {
    model: parts.model,
    step: run.step,
    imagesSeen: run.imagesSeen,
    rng: parts.rng.state(),
    data: run.position,
    adam: adamScalars(parts.adam),
    lastLoss: run.lastLoss,
    trainSeconds: run.trainSeconds,
  };
}

/** What {@linkcode startRun} restores into. */
export interface StartRunOptions {
  /** The checkpoint to resume from (`openRun`), or null; it is disposed. */
  saved: RunCheckpoint<RunStateBase<unknown>> | null;
  /** The network's parameters (overwritten when resuming). */
  params: Params;
  /** The EMA parameters (overwritten when resuming). */
  ema: Params;
  /** The run's generator (restored when resuming). */
  rng: Rng;
  /** The run folder (its metrics.jsonl is cut back to the checkpoint's step). */
  runDir: string;
  /** The checkpoint's path, for the "resumed" line. */
  checkpointPath: string;
  /** Where the "resumed" line goes. */
  log: (message: string) => void;
}

/**
 * A run's counters and Adam state: fresh, or restored from a checkpoint together with the
 * weights, the EMA, the generator and the metrics file, so the run continues exactly.
 *
 * @param options The run's parts.
 * @returns The counters and the optimizer.
 * @example
 * ```ts ignore
 * const { run, adam } = await startRun({ saved, params, ema, rng, runDir, checkpointPath, log });
 * ```
 */
export async function startRun(
  options: StartRunOptions,
): Promise<{ run: RunCounters; adam: AdamState }> {
  const { saved, params, ema, rng, runDir, checkpointPath, log } = options;
  if (!saved) {
    const run = { step: 0, imagesSeen: 0, trainSeconds: 0, lastLoss: NaN, position: null };
    return { run, adam: createAdam(params) };
  }
  const { state } = saved;
  saved.assign("net.", params);
  saved.assign("ema.", ema);
  const adam = restoreAdam(params, {
    tensors: saved.tensorsWithPrefix("adam."),
    scalars: state.adam,
  });
  const run: RunCounters = {
    step: state.step,
    imagesSeen: state.imagesSeen,
    trainSeconds: state.trainSeconds,
    lastLoss: state.lastLoss,
    position: state.data,
  };
  rng.restore(state.rng);
  saved.dispose();
  await truncateMetrics(join(runDir, "metrics.jsonl"), run.step);
  const kimg = (run.imagesSeen / 1000).toFixed(1);
  log(`resumed ${checkpointPath} at step ${run.step} (${kimg} kimg)`);
  return { run, adam };
}

/** Gradients of one batch, held until the batch's loss is known to be finite. */
export interface PendingUpdate {
  /** Gradients by parameter name (freed by {@linkcode optimizerStep}). */
  grads: Record<string, tf.Tensor>;
  /** Images seen before this batch (EDM's `cur_nimg`, for the warm-ups). */
  imagesBefore: number;
  /** The batch size. */
  size: number;
}

/** The optimizer settings {@linkcode optimizerStep} reads (both trainers' configs have them). */
export interface OptimizerConfig {
  /** Adam learning rate. */
  lr: number;
  /** Learning-rate warm-up in kimg. */
  lrRampupKimg: number;
  /** EMA half-life in kimg. */
  emaHalfLifeKimg: number;
  /** EMA half-life ramp-up ratio. */
  emaRampupRatio: number;
  /**
   * Rescale the gradients so their global L2 norm is at most this before Adam (PyTorch's
   * `clip_grad_norm_`); 0 or absent: no clipping. @default 0
   */
  clipGradNorm?: number;
}

/**
 * One optimizer step: optional global-norm gradient clipping, Adam with EDM's warm-up on the held
 * gradients (then freed), then the EMA with its ramped half-life (EDM Appendix F.1).
 *
 * @param state The optimizer, the EMA weights and the parameters.
 * @param update The held gradients.
 * @param config The optimizer settings.
 * @returns The gradients' global L2 norm before clipping when clipping is on, else NaN.
 * @example
 * ```ts ignore
 * optimizerStep({ adam, ema, params }, pending, config);
 * ```
 */
export function optimizerStep(
  state: { adam: AdamState; ema: Params; params: Params },
  update: PendingUpdate,
  config: OptimizerConfig,
): number {
  const norm = config.clipGradNorm ? clipGradients(update.grads, config.clipGradNorm) : NaN;
  adamStep(state.adam, update.grads, {
    lr: config.lr,
    imagesSeen: update.imagesBefore,
    rampupImages: config.lrRampupKimg * 1000,
  });
  tf.dispose(Object.values(update.grads));
  emaUpdate(state.ema, state.params, {
    batchSize: update.size,
    imagesSeen: update.imagesBefore,
    halfLifeImages: config.emaHalfLifeKimg * 1000,
    rampupRatio: config.emaRampupRatio,
  });
  return norm;
}

// Scales `grads` in place (replacing the tensors) so that their global norm is at most `maxNorm`.
function clipGradients(grads: Record<string, tf.Tensor>, maxNorm: number): number {
  const norm = tf.tidy(() =>
    tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))).dataSync()[0]
  );
  if (norm > maxNorm && Number.isFinite(norm)) {
    for (const [k, g] of Object.entries(grads)) {
      grads[k] = tf.tidy(() => tf.mul(g, maxNorm / norm));
      g.dispose();
    }
  }
  return norm;
}

/** What {@linkcode runTrainingLoop} needs from a trainer. */
export interface TrainingLoopSpec {
  /** The counters, updated in place. */
  counters: RunCounters;
  /** Images to train on in total. */
  totalImages: number;
  /** The seeded batches. */
  batches: Iterator<Batch>;
  /** Evaluates the loss of a batch and keeps its gradients for `apply`; returns the loss. */
  evaluate(batch: Batch): Promise<number>;
  /** Applies the kept gradients (optimizer, EMA, ...). */
  apply(): void;
  /** Frees the kept gradients without applying them. */
  discard(): void;
  /** Writes the checkpoint. */
  save(): Promise<void>;
  /** Writes a sample grid to a path. */
  preview(path: string): Promise<string>;
  /** Steps between metric lines, and thousands of images between checkpoints and grids. */
  cadence: { logEvery: number; checkpointKimg: number; sampleKimg: number };
  /** The learning rate now, for the metric lines. */
  lr(): number;
  /** Extra fields of each metric line (e.g. a loss's terms). @default undefined */
  metrics?: () => Record<string, number>;
  /** Progress bar, or null. */
  bar: Progress | null;
  /** `performance.now()` when the trainer started. */
  started: number;
  /** Minutes allowed (0: no limit). */
  maxMinutes: number;
  /** Checkpoint path, named in messages. */
  checkpointPath: string;
  /** The fix to suggest when the loss is not finite. */
  nonFiniteHint: string;
}

/**
 * Runs the step loop to the end of the run or an early stop, then saves.
 *
 * @param spec The trainer's parts.
 * @param options The trainer's options (run folder, signal, log, onStep, maxSteps).
 * @returns The run's result.
 * @throws {UserError} For a non-finite loss, after discarding its gradients.
 * @example
 * ```ts ignore
 * const result = await runTrainingLoop({ counters, totalImages, batches: it, evaluate, apply,
 *   discard, save, preview, cadence, lr, bar, started, maxMinutes: 0, checkpointPath,
 *   nonFiniteHint: "Lower --lr" }, options);
 * ```
 */
export async function runTrainingLoop(
  spec: TrainingLoopSpec,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const { counters: run, totalImages, bar } = spec;
  const cadence = createRunCadence({
    ...spec.cadence,
    runDir: options.runDir,
    totalImages,
    imagesSeen: run.imagesSeen,
    lr: spec.lr,
    metrics: spec.metrics,
    save: spec.save,
    preview: spec.preview,
  });
  const { signal, maxSteps = Infinity } = options;
  const log = options.log ?? ((m: string) => console.error(m));
  let gridPath: string | undefined;
  let stoppedEarly: string | undefined;
  let stepsThisCall = 0;
  while (run.imagesSeen < totalImages) {
    const { started, maxMinutes } = spec;
    stoppedEarly = stopReason({ signal, started, maxMinutes, stepsThisCall, maxSteps });
    if (stoppedEarly) break;
    const t0 = performance.now();
    const batch = spec.batches.next().value as Batch;
    const loss = await spec.evaluate(batch);
    if (!Number.isFinite(loss)) {
      bar?.finish();
      spec.discard();
      throw await nonFiniteLossError(loss, {
        step: run.step + 1,
        checkpointPath: spec.checkpointPath,
        hint: spec.nonFiniteHint,
      });
    }
    // The update is applied only once the loss is known to be finite.
    spec.apply();
    run.lastLoss = loss;
    run.step++;
    stepsThisCall++;
    run.imagesSeen += batch.size;
    run.position = batch.next;
    run.trainSeconds += (performance.now() - t0) / 1000;
    options.onStep?.({ step: run.step, imagesSeen: run.imagesSeen, loss });
    bar?.update(Math.min(run.imagesSeen, totalImages), { loss, kimg: run.imagesSeen / 1000 });
    gridPath = await cadence.afterStep({
      step: run.step,
      imagesSeen: run.imagesSeen,
      loss,
      batchSize: batch.size,
      trainSeconds: run.trainSeconds,
    }) ?? gridPath;
    // Yield so Ctrl-C and timers run between steps.
    await new Promise((r) => setTimeout(r, 0));
  }
  bar?.finish({ loss: run.lastLoss });
  await spec.save();
  if (stoppedEarly !== "maxSteps") {
    gridPath = await spec.preview(join(options.runDir, "samples.png"));
    await writeLossPlot(
      join(options.runDir, "metrics.jsonl"),
      join(options.runDir, "loss.svg"),
    );
  }
  log(`checkpoint saved to ${spec.checkpointPath}` + (stoppedEarly ? ` (${stoppedEarly})` : ""));
  return {
    step: run.step,
    imagesSeen: run.imagesSeen,
    lastLoss: run.lastLoss,
    seconds: (performance.now() - spec.started) / 1000,
    checkpointPath: spec.checkpointPath,
    gridPath,
    stoppedEarly,
  };
}
