/**
 * Bookkeeping shared by the training loops (`train_edm.ts`, `train_ddpm.ts`, `train_ndm.ts`,
 * `train_flow.ts`; the shape of
 * NVlabs/edm `training_loop.py`): opening a run directory for a fresh or resumed run, checking
 * that a resumed run matches its checkpoint, deciding when to stop, the error for a non-finite
 * loss, and the windowed means written to the metrics file.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { basename, dirname, join } from "node:path";
import { UserError } from "../core/errors.ts";
import { removeLeftoverTempsIn } from "../core/atomic_write.ts";
import { acquireRunLock, releaseRunLock } from "./run_lock.ts";
import { describeSpec, type ModelSpec } from "../models/build_network.ts";
import {
  checkCheckpointKind,
  CHECKPOINT_FILE,
  readRunCheckpoint,
  type RunCheckpoint,
} from "./run_checkpoint.ts";
import { appendMetrics, writeLossPlot } from "./metrics_log.ts";
import { writeRunReport } from "./run_report.ts";

/**
 * Whether a file exists.
 *
 * @example
 * ```ts ignore
 * if (await fileExists("runs/x/checkpoint.safetensors")) console.log("resumable");
 * ```
 */
export async function fileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@linkcode openRun}. */
export interface OpenRunOptions {
  /** The format tag the trainer writes; a resumed checkpoint of another kind is refused. */
  format?: string;
  /** The trainer's task, named in messages, e.g. "train:edm". @default "training" */
  task?: string;
  /** Where notes (stale lock taken over, old metrics moved aside) go. @default console.error */
  log?: (message: string) => void;
}

/**
 * Opens a run directory for one writer and returns the checkpoint the run starts from: the
 * saved one when resuming, `null` for a fresh run. It takes the directory's lock (`run_lock.ts`;
 * released by `runTrainingLoop` when the run ends), removes temporary files an interrupted
 * checkpoint write left, and for a fresh run moves an old `metrics.jsonl` (a run that crashed
 * before its first checkpoint) aside to `metrics-<time>.jsonl.old` so the new run never appends
 * to it.
 *
 * @param checkpointPath The run's checkpoint file.
 * @param resume Whether to continue from it.
 * @param options The trainer's format tag and name.
 * @returns The loaded checkpoint or null.
 * @throws {UserError} For a directory another live run holds, a fresh run whose directory already
 *   holds a checkpoint, or a missing, corrupt or other-kind checkpoint to resume from.
 * @example
 * ```ts ignore
 * const saved = await openRun<EdmRunState>("runs/x/checkpoint.safetensors", true, {
 *   format: "diffuse-edm/1", task: "train:edm" });
 * ```
 */
export async function openRun<S>(
  checkpointPath: string,
  resume: boolean,
  options: OpenRunOptions = {},
): Promise<RunCheckpoint<S> | null> {
  const { task = "training" } = options;
  const log = options.log ?? ((m: string) => console.error(m));
  const runDir = dirname(checkpointPath);
  await acquireRunLock(runDir, log);
  try {
    // Every file of the run is written atomically (checkpoint, its sidecar, the history index
    // and numbered copies, the report and plots); a kill -9 inside a write leaves a temp file.
    for (const temp of await removeLeftoverTempsIn(runDir)) {
      const what = /checkpoint/.test(basename(temp)) ? "checkpoint write" : "write";
      log(`note: removed ${temp}, left by an interrupted ${what}`);
    }
    if (resume) {
      const saved = await readRunCheckpoint<S>(checkpointPath, {
        hint: "nothing to resume: drop --resume to start the run, or give --out the run folder " +
          "that holds the checkpoint",
      });
      if (options.format !== undefined) {
        try {
          checkCheckpointKind(saved.state, checkpointPath, {
            accept: [options.format],
            task: `${task} --resume`,
          });
        } catch (e) {
          saved.dispose();
          throw e;
        }
      }
      return saved;
    }
    if (await fileExists(checkpointPath)) {
      throw new UserError(
        `${checkpointPath} already exists: pass --resume to continue that run, or choose another --out`,
      );
    }
    const metrics = join(runDir, "metrics.jsonl");
    if (await fileExists(metrics)) {
      const aside = join(
        runDir,
        `metrics-${new Date().toISOString().replace(/[:.]/g, "-")}.jsonl.old`,
      );
      await Deno.rename(metrics, aside);
      log(`note: ${metrics} belonged to an earlier run without a checkpoint; moved it to ${aside}`);
    }
    return null;
  } catch (e) {
    await releaseRunLock(runDir);
    throw e;
  }
}

/**
 * Checks that the fields of a config that shape the learned model are the same as in the
 * checkpoint (the run-length fields may change on resume).
 *
 * @param saved The checkpoint's config.
 * @param now The requested config.
 * @param options The frozen keys and the checkpoint path for the message.
 * @throws {UserError} Naming the first field that differs.
 * @example
 * ```ts ignore
 * checkResumable(saved.state.config, config, { keys: ["data"], path });
 * ```
 */
export function checkResumable<C>(
  saved: C,
  now: C,
  options: { keys: readonly (keyof C)[]; path: string },
): void {
  for (const key of options.keys) {
    if (JSON.stringify(saved[key]) !== JSON.stringify(now[key])) {
      throw new UserError(
        `cannot resume ${options.path}: it was trained with ${String(key)}=${
          JSON.stringify(saved[key])
        }, not ${JSON.stringify(now[key])}; use the same value or start a new --out`,
      );
    }
  }
}

/** What {@linkcode openTrainerRun} gives a trainer. */
export interface TrainerRun<S> {
  /** The run's checkpoint path (`<runDir>/checkpoint.safetensors`). */
  ckptPath: string;
  /** The checkpoint to resume from, checked against the config; null for a fresh run. */
  saved: RunCheckpoint<S> | null;
  /** Where progress messages go (`options.log`, or stderr). */
  log: (message: string) => void;
  /** `performance.now()` when the trainer started, for the time guard. */
  started: number;
}

/**
 * The start every trainer shares: opens its run directory with {@linkcode openRun} (format tag
 * and task for the kind check) and, on resume, checks the frozen config fields with
 * {@linkcode checkResumable}.
 *
 * @param config The run's config.
 * @param options The trainer's options (`runDir`, `resume`, `log`).
 * @param run The checkpoint format tag, the task named in messages and the frozen keys.
 * @returns The checkpoint path, the checkpoint to resume from, the logger and the start time.
 * @throws {UserError} As {@linkcode openRun} and {@linkcode checkResumable} do.
 * @example
 * ```ts ignore
 * const { ckptPath, saved, log, started } = await openTrainerRun<EdmRunState>(config, options, {
 *   format: "diffuse-edm/1", task: "train:edm", frozen: FROZEN });
 * ```
 */
export async function openTrainerRun<S extends { config: object }>(
  config: S["config"],
  options: { runDir: string; resume?: boolean; log?: (message: string) => void },
  run: { format: string; task: string; frozen: readonly (keyof S["config"])[] },
): Promise<TrainerRun<S>> {
  const log = options.log ?? ((m: string) => console.error(m));
  const started = performance.now();
  const ckptPath = join(options.runDir, CHECKPOINT_FILE);
  const saved = await openRun<S>(ckptPath, options.resume ?? false, {
    format: run.format,
    task: run.task,
    log,
  });
  if (saved) {
    try {
      checkResumable<S["config"]>(saved.state.config, config, { keys: run.frozen, path: ckptPath });
    } catch (e) {
      saved.dispose();
      throw e;
    }
  }
  return { ckptPath, saved, log, started };
}

/**
 * Checks that a resumed run builds the network of its checkpoint.
 *
 * @throws {UserError} Naming both networks.
 * @example
 * ```ts ignore
 * checkSameModel(saved.state.model, spec, path);
 * ```
 */
export function checkSameModel(saved: ModelSpec, now: ModelSpec, path: string): void {
  if (JSON.stringify(saved) === JSON.stringify(now)) return;
  throw new UserError(
    `cannot resume ${path}: the checkpoint's network is ${describeSpec(saved)}, but the flags ` +
      `ask for ${describeSpec(now)}; pass the same --model/--channels/--channel-mult/--blocks ` +
      `as the checkpoint, or start a new --out`,
  );
}

/**
 * The smallest multiple of `every` above `x`.
 *
 * @example
 * ```ts
 * import { nextMultiple } from "./_loop_utils.ts";
 * console.assert(nextMultiple(1000, 1000) === 2000);
 * ```
 */
export function nextMultiple(x: number, every: number): number {
  return (Math.floor(x / every) + 1) * every;
}

/** What {@linkcode stopReason} looks at. */
export interface StopState {
  /** Abort signal of the run. */
  signal?: AbortSignal;
  /** `performance.now()` when the call started. */
  started: number;
  /** Minutes allowed (0: no limit). */
  maxMinutes: number;
  /** Steps taken by this call. */
  stepsThisCall: number;
  /** Steps allowed for this call. */
  maxSteps: number;
}

/**
 * Why training should stop before the next step, or undefined to go on.
 *
 * @example
 * ```ts
 * import { stopReason } from "./_loop_utils.ts";
 * const why = stopReason({ started: 0, maxMinutes: 0, stepsThisCall: 5, maxSteps: 5 }); // "maxSteps"
 * ```
 */
export function stopReason(state: StopState): string | undefined {
  if (state.signal?.aborted) return "interrupted";
  if (state.maxMinutes > 0 && (performance.now() - state.started) / 60000 >= state.maxMinutes) {
    return "time limit";
  }
  if (state.stepsThisCall >= state.maxSteps) return "maxSteps";
  return undefined;
}

/**
 * The error of a diverged run: the step, why, which checkpoint to resume from, and the fix.
 *
 * @param context The step, the monitor's reason, the checkpoint path, the hint, and the healthy
 *   checkpoint that `CheckpointHistory.rollback` put back (undefined: none).
 * @returns The error to throw.
 * @example
 * ```ts ignore
 * throw await divergedError({ loss: NaN, why: "the loss is NaN", step: 12, checkpointPath,
 *   hint: "Lower --lr", kept: await history.rollback() });
 * ```
 */
export async function divergedError(context: {
  loss: number;
  why: string;
  step: number;
  checkpointPath: string;
  hint: string;
  kept: { step: number; file: string } | undefined;
}): Promise<UserError> {
  const { loss, step, checkpointPath } = context;
  const what = Number.isFinite(loss)
    ? `training diverged at step ${step} (${context.why})`
    : `loss became ${loss} at step ${step}`;
  const kept = context.kept
    ? `the last good checkpoint is kept at ${checkpointPath} (step ${context.kept.step}, ` +
      `confirmed healthy; --resume continues from it)`
    : (await fileExists(join(dirname(checkpointPath), "checkpoints.json")))
    ? `no checkpoint had been confirmed healthy yet (the unconfirmed one was moved to ` +
      `${join(dirname(checkpointPath), "checkpoint-unconfirmed.safetensors")})`
    : "no checkpoint had been written yet";
  const next = context.kept
    ? "then run again with --resume"
    : "then start again in a new --out (or delete this one)";
  return new UserError(`${what}; training stopped and ${kept}. ${context.hint}, ${next}.`);
}

/** Means over the steps between two metric lines. */
export interface LossWindow {
  /** Adds one step's loss and batch size. */
  add(loss: number, images: number): void;
  /** The mean loss and the throughput since the last flush; starts a new window. */
  flush(): { loss: number; imagesPerSecond: number };
}

/**
 * A window of step losses for the metrics file.
 *
 * @example
 * ```ts
 * import { createLossWindow } from "./_loop_utils.ts";
 * const w = createLossWindow();
 * w.add(0.5, 64);
 * w.add(0.3, 64);
 * const { loss } = w.flush(); // 0.4
 * ```
 */
export function createLossWindow(): LossWindow {
  let sum = 0, count = 0, images = 0, start = performance.now();
  return {
    add(loss, n) {
      sum += loss;
      count++;
      images += n;
    },
    flush() {
      const now = performance.now();
      const out = { loss: sum / count, imagesPerSecond: images / ((now - start) / 1000) };
      sum = 0, count = 0, images = 0, start = now;
      return out;
    },
  };
}

/** What {@linkcode createRunCadence} needs to know about a run. */
export interface RunCadenceOptions {
  /** The run directory (metrics.jsonl and sample grids go here). */
  runDir: string;
  /** Images the run trains on in total. */
  totalImages: number;
  /** Images seen when this call started (resume). */
  imagesSeen: number;
  /** Steps between metric lines. */
  logEvery: number;
  /** Thousands of images between checkpoints. */
  checkpointKimg: number;
  /** Thousands of images between sample grids. */
  sampleKimg: number;
  /** The learning rate now, for the metric line. */
  lr(): number;
  /** Saves a checkpoint. */
  save(): Promise<void>;
  /** Writes a sample grid to `path` and returns the path written. */
  preview(path: string): Promise<string>;
  /** Extra fields of each metric line (e.g. a loss's terms since the last line). @default undefined */
  metrics?: () => Record<string, number>;
}

/** The bookkeeping after each finite training step. */
export interface RunCadence {
  /**
   * Adds the step's loss to the metric window, then writes a metric line, a checkpoint and a
   * sample grid when each is due; returns the grid's path when one was written.
   */
  afterStep(r: {
    step: number;
    imagesSeen: number;
    loss: number;
    batchSize: number;
    trainSeconds: number;
  }): Promise<string | undefined>;
}

/**
 * The metric / checkpoint / sample-grid cadence every training loop shares. Checkpoints and grids
 * due at the very end are left to the loop's own final save.
 *
 * @example
 * ```ts ignore
 * const cadence = createRunCadence({ runDir, totalImages, imagesSeen, logEvery: 20,
 *   checkpointKimg: 5, sampleKimg: 10, lr: () => 1e-3, save, preview });
 * await cadence.afterStep({ step, imagesSeen, loss, batchSize: 64, trainSeconds });
 * ```
 */
export function createRunCadence(options: RunCadenceOptions): RunCadence {
  const { runDir, totalImages, logEvery, checkpointKimg, sampleKimg } = options;
  const window = createLossWindow();
  let nextCkpt = nextMultiple(options.imagesSeen, checkpointKimg * 1000);
  let nextGrid = nextMultiple(options.imagesSeen, sampleKimg * 1000);
  let first = true;
  return {
    async afterStep({ step, imagesSeen, loss, batchSize, trainSeconds }) {
      window.add(loss, batchSize);
      // The first step of a call and the last of the run are logged too, so a run shorter than
      // the log interval still has metrics and a loss plot.
      if (step % logEvery === 0 || first || imagesSeen >= totalImages) {
        first = false;
        const flushed = window.flush();
        await appendMetrics(join(runDir, "metrics.jsonl"), {
          step,
          kimg: imagesSeen / 1000,
          loss: flushed.loss,
          lr: options.lr(),
          imagesPerSecond: flushed.imagesPerSecond,
          trainSeconds,
          numTensors: tf.memory().numTensors,
          ...options.metrics?.(),
        });
      }
      if (imagesSeen >= nextCkpt && imagesSeen < totalImages) {
        await options.save();
        // A live loss plot and report beside each checkpoint, not only at the end of the run.
        await writeLossPlot(join(runDir, "metrics.jsonl"), join(runDir, "loss.svg"));
        await writeRunReport(runDir);
        nextCkpt = nextMultiple(imagesSeen, checkpointKimg * 1000);
      }
      if (imagesSeen >= nextGrid && imagesSeen < totalImages) {
        const kimg = String(Math.round(imagesSeen / 1000)).padStart(6, "0");
        const path = await options.preview(join(runDir, `samples-${kimg}.png`));
        nextGrid = nextMultiple(imagesSeen, sampleKimg * 1000);
        return path;
      }
      return undefined;
    },
  };
}
