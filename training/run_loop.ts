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
import {
  adamScalars,
  type AdamState,
  adamStep,
  createAdam,
  rampedLearningRate,
  restoreAdam,
} from "./adam.ts";
import type { ModelSpec } from "../models/build_network.ts";
import { emaUpdate } from "./ema.ts";
import type { RunCheckpoint } from "./run_checkpoint.ts";
import type { RunStateBase } from "./train_loop_types.ts";
import type { Batch, BatchPosition } from "../data/dataset.ts";
import { truncateMetrics, writeLossPlot } from "./metrics_log.ts";
import { createRunCadence, divergedError, stopReason } from "./_loop_utils.ts";
import { createDivergenceMonitor, type DivergenceState } from "./divergence.ts";
import { openCheckpointHistory } from "./checkpoint_history.ts";
import { releaseRunLock } from "./run_lock.ts";
import type { TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";
import { writeRunReport } from "./run_report.ts";
import { inPlaceViews } from "../core/blas/tensor_views.ts";

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
  /** The divergence monitor's statistics (`divergence.ts`), stored with the checkpoint. */
  divergence?: DivergenceState;
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
    divergence: run.divergence,
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
    divergence: state.divergence,
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
export interface OptimizerConfig extends LrScheduleConfig {
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
 * One optimizer step: optional global-norm gradient clipping, Adam at {@linkcode rampedLr} on the held
 * gradients (then freed), then the EMA with its ramped half-life (EDM Appendix F.1).
 *
 * @param state The optimizer, the EMA weights and the parameters.
 * @param update The held gradients.
 * @param config The optimizer settings.
 * @example
 * ```ts ignore
 * optimizerStep({ adam, ema, params }, pending, config);
 * ```
 */
export function optimizerStep(
  state: { adam: AdamState; ema: Params; params: Params },
  update: PendingUpdate,
  config: OptimizerConfig,
): void {
  if (config.clipGradNorm) clipGradients(update.grads, config.clipGradNorm);
  adamStep(state.adam, update.grads, { lr: rampedLr(config, update.imagesBefore) });
  tf.dispose(Object.values(update.grads));
  emaUpdate(state.ema, state.params, {
    batchSize: update.size,
    imagesSeen: update.imagesBefore,
    halfLifeImages: config.emaHalfLifeKimg * 1000,
    rampupRatio: config.emaRampupRatio,
  });
}

// Scales `grads` in place (replacing the tensors) so that their global norm is at most `maxNorm`,
// on the device: no host read (a sync read fails on webgpu), and a non-finite norm leaves them be.
function clipGradients(grads: Record<string, tf.Tensor>, maxNorm: number): void {
  const list = Object.values(grads);
  if (list.length === 0) return;
  const factor = tf.tidy(() => {
    const norm = tf.sqrt(list.map((g) => tf.sum(tf.square(g))).reduce((x, y) => tf.add(x, y)));
    const scale = tf.minimum(1, tf.div(maxNorm, norm));
    return tf.where(tf.isFinite(scale), scale, tf.onesLike(scale));
  });
  for (const [k, g] of Object.entries(grads)) {
    grads[k] = tf.tidy(() => tf.mul(g, factor));
    g.dispose();
  }
  factor.dispose();
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
  /** The global L2 norm of the kept gradients ({@linkcode gradientNorm}), for the divergence check. */
  gradNorm?(): Promise<number>;
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
  /** The learning-rate schedule {@linkcode optimizerStep} applies; its rate goes on the metric lines. */
  schedule: LrScheduleConfig;
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
  /** The fix to suggest when the run diverges, e.g. "Lower --lr (now 0.01)"; the loop adds what to run next. */
  nonFiniteHint: string;
}

/**
 * Runs the step loop to the end of the run or an early stop, then saves.
 *
 * @param spec The trainer's parts.
 * @param options The trainer's options (run folder, signal, log, onStep, maxSteps).
 * @returns The run's result.
 * @throws {UserError} When the run diverges (`divergence.ts`: a non-finite loss or gradient
 *   norm, or `patience` spikes in a row), after discarding the step's gradients and putting the
 *   newest healthy checkpoint back at `checkpointPath` (`checkpoint_history.ts`). The directory's
 *   lock is released however the loop ends.
 * @example
 * ```ts ignore
 * const result = await runTrainingLoop({ counters, totalImages, batches: it, evaluate, apply,
 *   discard, save, preview, cadence, schedule: config, bar, started, maxMinutes: 0, checkpointPath,
 *   nonFiniteHint: "Lower --lr" }, options);
 * ```
 */
export async function runTrainingLoop(
  spec: TrainingLoopSpec,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  try {
    return await loop(spec, options);
  } finally {
    await releaseRunLock(options.runDir);
  }
}

async function loop(spec: TrainingLoopSpec, options: TrainLoopOptions): Promise<TrainLoopResult> {
  const { counters: run, totalImages, bar } = spec;
  const monitor = createDivergenceMonitor(options.divergence, run.divergence);
  const history = await openCheckpointHistory(spec.checkpointPath, {
    keep: options.keep,
    resumedAt: run.step > 0 ? run.step : undefined,
  });
  const save = async (): Promise<void> => {
    run.divergence = monitor.state();
    await spec.save();
    await history.afterSave(run.step);
  };
  const cadence = createRunCadence({
    ...spec.cadence,
    runDir: options.runDir,
    totalImages,
    imagesSeen: run.imagesSeen,
    lr: () => rampedLr(spec.schedule, run.imagesSeen),
    metrics: spec.metrics,
    save,
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
    const gradNorm = Number.isFinite(loss) && spec.gradNorm ? await spec.gradNorm() : undefined;
    const verdict = monitor.check({ loss, gradNorm });
    if (verdict.diverged) {
      bar?.finish();
      spec.discard();
      throw await divergedError({
        loss,
        why: verdict.diverged,
        step: run.step + 1,
        checkpointPath: spec.checkpointPath,
        hint: spec.nonFiniteHint,
        kept: await history.rollback(),
      });
    }
    // The update is applied only to a healthy step: a spike's gradients are dropped.
    if (verdict.healthy) spec.apply();
    else spec.discard();
    await history.observe(verdict.healthy);
    run.lastLoss = loss;
    run.step++;
    stepsThisCall++;
    run.imagesSeen += batch.size;
    run.position = batch.next;
    run.trainSeconds += (performance.now() - t0) / 1000;
    options.onStep?.({ step: run.step, imagesSeen: run.imagesSeen, loss, gradNorm });
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
  // The count really reached: a run stopped early (Ctrl-C, time limit) does not show 100 %.
  bar?.finish({ loss: run.lastLoss }, Math.min(run.imagesSeen, totalImages));
  await save();
  if (stoppedEarly !== "maxSteps") {
    gridPath = await spec.preview(join(options.runDir, "samples.png"));
    await writeLossPlot(
      join(options.runDir, "metrics.jsonl"),
      join(options.runDir, "loss.svg"),
    );
  }
  await writeRunReport(options.runDir);
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

/**
 * The global L2 norm of a set of gradients, `sqrt(sum of squares)` over all of them, read to
 * the host (one small download per step). On `wasm` and `cpu` it is one float64 loop over the
 * gradients' memory: composed, it was three kernels per parameter tensor (about 300 small
 * kernels per step for a U-Net) on one thread.
 *
 * @param grads Gradients by name (not disposed).
 * @returns The norm.
 * @example
 * ```ts ignore
 * const norm = await gradientNorm(pending.grads);
 * ```
 */
export async function gradientNorm(grads: Record<string, tf.Tensor>): Promise<number> {
  const list = Object.values(grads);
  if (list.length === 0) return 0;
  const views = inPlaceViews([], list);
  if (views !== null) {
    let total = 0;
    for (const v of views) for (let i = 0; i < v.length; i++) total += v[i] * v[i];
    return Math.sqrt(total);
  }
  // A chain of adds, not tf.addN: webgpu binds every addN input at once (8 buffers at most).
  const total = tf.tidy(() =>
    tf.sqrt(list.map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b)))
  );
  const value = (await total.data())[0];
  total.dispose();
  return value;
}

/** Gradients held between a trainer's `evaluate` and `apply`/`discard` (see {@linkcode holdUpdates}). */
export interface HeldUpdates {
  /** Holds the gradients of one batch (from `tf.variableGrads`, keyed by variable name). */
  hold(grads: Record<string, tf.Tensor>, imagesBefore: number, size: number): void;
  /** Applies the held gradients with {@linkcode optimizerStep}, if any. */
  apply(): void;
  /** Frees the held gradients without applying them. */
  discard(): void;
}

/**
 * The hold/apply/discard triple a trainer hands to {@linkcode runTrainingLoop}: gradients wait
 * until the batch's loss is known to be finite, then go through {@linkcode optimizerStep}.
 * Variables without a gradient (unused parameters) are skipped.
 *
 * @param state The optimizer, the EMA weights and the parameters.
 * @param config The optimizer settings.
 * @returns The triple.
 * @example
 * ```ts ignore
 * const updates = holdUpdates({ adam, ema, params }, config);
 * updates.hold(grads, run.imagesSeen, batch.size); // in evaluate
 * // runTrainingLoop({ ..., apply: updates.apply, discard: updates.discard })
 * ```
 */
export function holdUpdates(
  state: { adam: AdamState; ema: Params; params: Params },
  config: OptimizerConfig,
): HeldUpdates {
  let pending: PendingUpdate | null = null;
  return {
    hold(grads, imagesBefore, size) {
      const named: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(state.params)) {
        if (grads[v.name]) named[name] = grads[v.name];
      }
      pending = { grads: named, imagesBefore, size };
    },
    apply() {
      if (!pending) return;
      optimizerStep(state, pending, config);
      pending = null;
    },
    discard() {
      if (pending) tf.dispose(Object.values(pending.grads));
      pending = null;
    },
  };
}

/** What {@linkcode rampedLr} reads from a training config. */
export interface LrScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up length in kimg (EDM's `lr_rampup_kimg`). */
  lrRampupKimg: number;
  /** Training length in kimg; needed only with `lrDecayKimg`. */
  kimg?: number;
  /** Linear decay to 0 over the last `lrDecayKimg` of `kimg` (0 or absent: none). */
  lrDecayKimg?: number;
}

/**
 * The learning rate now: EDM's linear warm-up `lr min(seen / (lrRampupKimg 1000), 1)` (Karras
 * et al. 2022, training/training_loop.py; {@linkcode rampedLearningRate}, where a warm-up of 0
 * means full rate from the first step), times an optional linear decay to 0 over the last
 * `lrDecayKimg` thousand images of `kimg`, `min((kimg - seen/1000) / lrDecayKimg, 1)`, which
 * lets a short run settle into a minimum instead of ending at the peak rate.
 *
 * @param config The rate, the warm-up and the decay.
 * @param imagesSeen Images seen before the step (EDM's `cur_nimg`).
 * @returns The rate now, never below 0.
 * @example
 * ```ts
 * import { rampedLr } from "./run_loop.ts";
 * console.assert(rampedLr({ lr: 1e-3, lrRampupKimg: 2 }, 1000) === 5e-4);
 * // Halfway through a 10-kimg decay at the end of a 100-kimg run:
 * console.assert(rampedLr({ lr: 1e-3, lrRampupKimg: 2, kimg: 100, lrDecayKimg: 10 }, 95_000) === 5e-4);
 * ```
 */
export function rampedLr(config: LrScheduleConfig, imagesSeen: number): number {
  const warm = rampedLearningRate(config.lr, {
    imagesSeen,
    rampupImages: config.lrRampupKimg * 1000,
  });
  const decayKimg = config.lrDecayKimg ?? 0;
  const left = (config.kimg ?? Infinity) - imagesSeen / 1000;
  return decayKimg > 0 ? warm * Math.min(Math.max(left / decayKimg, 0), 1) : warm;
}
