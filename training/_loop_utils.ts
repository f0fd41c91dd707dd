/**
 * Bookkeeping shared by the training loops (`train_edm.ts`, `train_ddpm.ts`; the shape of
 * NVlabs/edm `training_loop.py`): opening a run directory for a fresh or resumed run, checking
 * that a resumed run matches its checkpoint, deciding when to stop, the error for a non-finite
 * loss, and the windowed means written to the metrics file.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { UserError } from "../core/errors.ts";
import { describeSpec, type ModelSpec } from "../models/build_network.ts";
import { readRunCheckpoint, type RunCheckpoint } from "./run_checkpoint.ts";
import { appendMetrics } from "./metrics_log.ts";

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

/**
 * The checkpoint a run starts from: the saved one when resuming, `null` for a fresh run.
 *
 * @param checkpointPath The run's checkpoint file.
 * @param resume Whether to continue from it.
 * @returns The loaded checkpoint or null.
 * @throws {UserError} For a fresh run whose directory already holds a checkpoint, or a missing
 *   or corrupt checkpoint to resume from.
 * @example
 * ```ts ignore
 * const saved = await openRun<EdmRunState>("runs/x/checkpoint.safetensors", true);
 * ```
 */
export async function openRun<S>(
  checkpointPath: string,
  resume: boolean,
): Promise<RunCheckpoint<S> | null> {
  if (resume) return await readRunCheckpoint<S>(checkpointPath);
  if (await fileExists(checkpointPath)) {
    throw new UserError(
      `${checkpointPath} already exists: pass --resume to continue that run, or choose another --out`,
    );
  }
  return null;
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
 * The error of a non-finite loss: the step, whether a good checkpoint is kept, and the fix.
 *
 * @param loss The loss value.
 * @param context The step that produced it, the checkpoint path and the hint.
 * @returns The error to throw.
 * @example
 * ```ts ignore
 * throw await nonFiniteLossError(NaN, { step: 12, checkpointPath, hint: "Lower --lr" });
 * ```
 */
export async function nonFiniteLossError(
  loss: number,
  context: { step: number; checkpointPath: string; hint: string },
): Promise<UserError> {
  const kept = (await fileExists(context.checkpointPath))
    ? `the last good checkpoint is kept at ${context.checkpointPath}`
    : "no checkpoint had been written yet";
  return new UserError(
    `loss became ${loss} at step ${context.step}; training stopped and ${kept}. ${context.hint}`,
  );
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
  return {
    async afterStep({ step, imagesSeen, loss, batchSize, trainSeconds }) {
      window.add(loss, batchSize);
      if (step % logEvery === 0) {
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
