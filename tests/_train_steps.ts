/**
 * Running a trainer in-process for a few steps, recording each step's loss and the live tensor
 * count (for the flat-memory and exact-resume tests). Shared by the trainer tests.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TrainLoopOptions, TrainLoopResult } from "../training/train_loop_types.ts";

/** A trainer: `trainEdm`, `trainDdpm`, `trainNdm`, `trainFlow`. */
export type Trainer<C> = (config: C, options: TrainLoopOptions) => Promise<TrainLoopResult>;

/** Where and how long {@linkcode trainSteps} runs. */
export interface TrainStepsOptions {
  /** Run folder. */
  runDir: string;
  /** Steps to run before stopping. */
  maxSteps: number;
  /** Continue from the folder's checkpoint. @default false */
  resume?: boolean;
}

/**
 * Trains `config` quietly (no progress bar, no log) for `maxSteps` steps; returns the result, the
 * loss of every step and the live tensor count after every step.
 */
export async function trainSteps<C>(
  train: Trainer<C>,
  config: C,
  options: TrainStepsOptions,
): Promise<{ result: TrainLoopResult; losses: number[]; tensors: number[] }> {
  const losses: number[] = [];
  const tensors: number[] = [];
  const result = await train(config, {
    progress: false,
    log: () => {},
    runDir: options.runDir,
    resume: options.resume ?? false,
    maxSteps: options.maxSteps,
    onStep: (r) => {
      losses.push(r.loss);
      tensors.push(tf.memory().numTensors);
    },
  });
  return { result, losses, tensors };
}
