/**
 * The options and result every training loop of the toolkit shares (`trainEdm`, `trainDdpm`):
 * where the run lives, how it stops, and what it reports.
 *
 * @module
 */

/**
 * Options of a training loop.
 *
 * @example
 * ```ts
 * import type { TrainLoopOptions } from "./train_loop_types.ts";
 * const options: TrainLoopOptions = { runDir: "runs/x", resume: true };
 * ```
 */
export interface TrainLoopOptions {
  /** Directory for checkpoint, metrics and sample grids; created when missing. */
  runDir: string;
  /** Continue from `runDir`'s checkpoint. @default false */
  resume?: boolean;
  /** Stops training between steps; a checkpoint is saved first. @default undefined */
  signal?: AbortSignal;
  /** Show a progress bar on stderr. @default true */
  progress?: boolean;
  /** Where one-line messages go. @default console.error */
  log?: (message: string) => void;
  /** Called after every step with its loss (tests, recipes). @default undefined */
  onStep?: (record: { step: number; imagesSeen: number; loss: number }) => void;
  /** Stop after this many steps of this call (tests). @default Infinity */
  maxSteps?: number;
}

/**
 * What a training loop returns.
 *
 * @example
 * ```ts
 * import type { TrainLoopResult } from "./train_loop_types.ts";
 * const describe = (r: TrainLoopResult) => `${r.step} steps, loss ${r.lastLoss}`;
 * ```
 */
export interface TrainLoopResult {
  /** Steps taken in total (across resumes). */
  step: number;
  /** Images seen in total. */
  imagesSeen: number;
  /** Loss of the last step (see the loop's docs for its units). */
  lastLoss: number;
  /** Wall time of this call in seconds. */
  seconds: number;
  /** Path of the checkpoint written last. */
  checkpointPath: string;
  /** Path of the last sample grid, if one was written. */
  gridPath?: string;
  /** Why training ended before `kimg`, if it did ("interrupted", "time limit", "maxSteps"). */
  stoppedEarly?: string;
}
