/**
 * What both training tasks do once their config is validated: print it for `--dry-run`, or
 * select the backend, train with Ctrl-C wired to a clean stop (a checkpoint is saved; a second
 * Ctrl-C quits at once), and print the result.
 *
 * @module
 */
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { prepareOutputFolder } from "./_write_samples.ts";
import type { TrainLoopOptions, TrainLoopResult } from "../training/train_loop_types.ts";
import type { RunConfigBase } from "../training/run_config.ts";

/** The parsed values of `TRAIN_MODEL_FLAGS` and `TRAIN_RUN_FLAGS` (see `_flags.ts`). */
export interface TrainFlagValues {
  data?: string;
  model?: string;
  channels?: number;
  "channel-mult"?: number[];
  blocks?: number;
  batch?: number;
  kimg?: number;
  lr?: number;
  "lr-rampup"?: number;
  "lr-decay"?: number;
  ema?: number;
  dropout?: number;
  seed?: number;
  "checkpoint-every"?: number;
  "sample-every"?: number;
  "log-every"?: number;
  "max-minutes"?: number;
}

/** The config fields both training tasks set from the shared flags. */
export interface SharedTrainFields extends RunConfigBase {
  data: string;
  model: string;
  channels?: number;
  channelMult?: number[];
  numBlocks?: number;
  seed: number;
}

/**
 * The shared config fields: each flag given overrides the preset's value.
 *
 * @example
 * ```ts ignore
 * const config = { ...base, ...sharedTrainFields(f, base), precond: f.precond ?? base.precond };
 * ```
 */
export function sharedTrainFields(f: TrainFlagValues, base: SharedTrainFields): SharedTrainFields {
  const kimg = f.kimg ?? base.kimg;
  return {
    data: f.data ?? base.data,
    model: f.model ?? base.model,
    channels: f.channels,
    channelMult: f["channel-mult"],
    numBlocks: f.blocks,
    batchSize: f.batch ?? base.batchSize,
    kimg,
    lr: f.lr ?? base.lr,
    lrRampupKimg: f["lr-rampup"] ?? base.lrRampupKimg,
    // A preset's decay shrinks to a shorter --kimg (then the whole run decays).
    lrDecayKimg: f["lr-decay"] ?? Math.min(base.lrDecayKimg ?? 0, kimg),
    emaHalfLifeKimg: f.ema ?? base.emaHalfLifeKimg,
    dropout: f.dropout ?? base.dropout,
    seed: f.seed ?? base.seed,
    checkpointKimg: f["checkpoint-every"] ?? base.checkpointKimg,
    sampleKimg: f["sample-every"] ?? base.sampleKimg,
    logEvery: f["log-every"] ?? base.logEvery,
    maxMinutes: f["max-minutes"] ?? base.maxMinutes,
    gridImages: base.gridImages,
    gridSteps: base.gridSteps,
  };
}

/** What {@linkcode runTrainTask} needs from a training task. */
export interface TrainTaskRun<C extends { kimg: number; maxMinutes: number }> {
  /** Task name for the "continue with" hint, e.g. "train:edm". @default "train:edm" */
  task?: string;
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
  /** `--keep`: checkpoint versions kept besides the newest healthy one. */
  keep?: number;
  /** The trainer (`trainEdm`, `trainDdpm`). */
  train(config: C, options: TrainLoopOptions): Promise<TrainLoopResult>;
}

/**
 * Runs a training task to its end and prints `done: ...`, the checkpoint and the grid; a run
 * stopped by Ctrl-C exits with code 130 after its checkpoint is saved.
 *
 * @example
 * ```ts ignore
 * await runTrainTask({ config, out: f.out!, resume: f.resume, dryRun: f["dry-run"],
 *   backend: f.backend, train: trainEdm });
 * ```
 */
export async function runTrainTask<C extends { kimg: number; maxMinutes: number }>(
  task: TrainTaskRun<C>,
): Promise<void> {
  const { config, out, resume, task: name = "train:edm" } = task;
  if (task.dryRun) {
    console.log(JSON.stringify({ out, resume, config }, null, 2));
    console.error(timeGuardLine(config));
    return;
  }
  await prepareOutputFolder(out, { flag: "--out", task: name });
  if (config.maxMinutes > 0) console.error(timeGuardLine(config));
  await selectBackend({ backend: task.backend });
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.error("\ninterrupted: saving a checkpoint (Ctrl-C again to quit at once)");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const result = await task.train(config, {
      runDir: out,
      resume,
      signal: controller.signal,
      keep: task.keep,
    });
    const kimg = result.imagesSeen / 1000;
    console.log(
      `done: ${result.step} steps, ${formatKimg(kimg)} of ${config.kimg} kimg, ` +
        `final loss ${result.lastLoss.toFixed(4)}, ${result.seconds.toFixed(0)} s` +
        `${result.stoppedEarly ? ` (stopped early: ${result.stoppedEarly})` : ""}`,
    );
    if (result.stoppedEarly && kimg < config.kimg) {
      const guard = result.stoppedEarly === "time limit"
        ? ` (the ${config.maxMinutes}-minute time guard; add --max-minutes 0 to turn it off)`
        : "";
      console.log(
        `stopped at ${formatKimg(kimg)} of ${config.kimg} kimg${guard}; continue with: ` +
          `deno task ${name} --resume --out ${out}`,
      );
    }
    console.log(`checkpoint: ${result.checkpointPath}`);
    if (result.gridPath) console.log(`samples:    ${result.gridPath}`);
    console.log(`report:     ${join(out, "report.html")}`);
    // 130 = 128 + SIGINT, as shells report a run stopped by Ctrl-C, so scripts can tell.
    if (result.stoppedEarly === "interrupted") {
      console.error(`interrupted: continue with --resume --out ${out}`);
      Deno.exit(130);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

// What the time guard will do, for --dry-run and the start of a run.
function timeGuardLine(config: { kimg: number; maxMinutes: number }): string {
  return config.maxMinutes > 0
    ? `time guard: stops after ${config.maxMinutes} min even if ${config.kimg} kimg are not ` +
      `reached (--max-minutes 0 turns it off; --resume continues)`
    : `time guard: off (runs to ${config.kimg} kimg)`;
}

function formatKimg(kimg: number): string {
  return kimg >= 1 ? kimg.toFixed(1) : kimg.toFixed(3);
}
