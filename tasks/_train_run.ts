/**
 * What both training tasks do once their config is validated: print it for `--dry-run`, or
 * select the backend, train with Ctrl-C wired to a clean stop (a checkpoint is saved; a second
 * Ctrl-C quits at once), and print the result.
 *
 * @module
 */
import { selectBackend } from "../core/engine.ts";
import type { TrainLoopOptions, TrainLoopResult } from "../training/train_loop_types.ts";

/** What {@linkcode runTrainTask} needs from a training task. */
export interface TrainTaskRun<C> {
  /** The validated config. */
  config: C;
  /** Run folder (`--out`). */
  out: string;
  /** `--resume`. */
  resume: boolean;
  /** `--dry-run`: print the options and stop. */
  dryRun: boolean;
  /** `--backend`. */
  backend?: string;
  /** The trainer (`trainEdm`, `trainDdpm`). */
  train(config: C, options: TrainLoopOptions): Promise<TrainLoopResult>;
}

/**
 * Runs a training task to its end and prints `done: ...`, the checkpoint and the grid.
 *
 * @example
 * ```ts ignore
 * await runTrainTask({ config, out: f.out!, resume: f.resume, dryRun: f["dry-run"],
 *   backend: f.backend, train: trainEdm });
 * ```
 */
export async function runTrainTask<C>(task: TrainTaskRun<C>): Promise<void> {
  const { config, out, resume } = task;
  if (task.dryRun) {
    console.log(JSON.stringify({ out, resume, config }, null, 2));
    return;
  }
  await selectBackend({ backend: task.backend });
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.error("\ninterrupted: saving a checkpoint (Ctrl-C again to quit at once)");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const result = await task.train(config, { runDir: out, resume, signal: controller.signal });
    console.log(
      `done: ${result.step} steps, ${(result.imagesSeen / 1000).toFixed(1)} kimg, ` +
        `final loss ${result.lastLoss.toFixed(4)}, ${result.seconds.toFixed(0)} s` +
        `${result.stoppedEarly ? ` (stopped early: ${result.stoppedEarly})` : ""}`,
    );
    console.log(`checkpoint: ${result.checkpointPath}`);
    if (result.gridPath) console.log(`samples:    ${result.gridPath}`);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}
