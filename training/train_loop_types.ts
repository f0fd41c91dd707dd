/**
 * The options and result every training loop of the toolkit shares (`trainEdm`, `trainDdpm`):
 * where the run lives, how it stops, and what it reports.
 *
 * @module
 */
import type { RngState } from "../core/rng.ts";
import type { BatchPosition } from "../data/dataset.ts";
import type { ModelSpec } from "../models/build_network.ts";

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

/**
 * The scalar state every training run stores in its checkpoint beside the tensors; each loop
 * extends it with its format tag, its config and its own extras. `M` is the model's description
 * (a U-Net/MLP `ModelSpec` for the denoisers; the flows store their own).
 *
 * @example
 * ```ts
 * import type { RunStateBase } from "./train_loop_types.ts";
 * const progress = (s: RunStateBase) => `${s.step} steps, ${s.imagesSeen / 1000} kimg`;
 * ```
 */
export interface RunStateBase<M = ModelSpec> {
  /** The network's full description. */
  model: M;
  /** Steps taken. */
  step: number;
  /** Images seen. */
  imagesSeen: number;
  /** Main generator state (noise levels or steps, noise, augmentation, dropout). */
  rng: RngState;
  /** Batch iterator position. */
  data: BatchPosition | null;
  /** Adam step count. */
  adam: { t: number };
  /** Loss of the last step. */
  lastLoss: number;
  /** Training seconds so far, across resumes. */
  trainSeconds: number;
}
