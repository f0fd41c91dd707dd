/**
 * A training run's checkpoint: one safetensors file with the raw weights (`net.*`), the EMA
 * weights (`ema.*`) and Adam's moments (`adam.m.*`, `adam.v.*`), and the run's scalar state in
 * its metadata, so one atomic rename keeps all of it consistent (DESIGN.md "Checkpoints").
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { UserError } from "../core/errors.ts";
import {
  checkParamsMatch,
  loadCheckpoint,
  saveCheckpoint,
  tensorsWithPrefix,
} from "../core/checkpoint.ts";
import type { SafetensorsTensor } from "../core/safetensors.ts";
import type { Params } from "../core/params.ts";

/** File name of a run's checkpoint inside its run directory. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";

/** What {@linkcode writeRunCheckpoint} stores. */
export interface RunCheckpointContents<S> {
  /** Raw (trained) weights. */
  params: Params;
  /** EMA weights. */
  ema: Params;
  /** Optimizer tensors, already named (e.g. `adam.m.<param>`). */
  adam: Record<string, tf.Tensor>;
  /** JSON state. */
  state: S;
}

/**
 * Saves a run's weights, EMA, optimizer tensors and state atomically.
 *
 * @example
 * ```ts ignore
 * await writeRunCheckpoint("runs/x/checkpoint.safetensors", { params, ema, adam: {}, state: {} });
 * ```
 */
export async function writeRunCheckpoint<S>(
  path: string,
  contents: RunCheckpointContents<S>,
): Promise<void> {
  const tensors: Record<string, tf.Tensor> = { ...contents.adam };
  for (const [k, v] of Object.entries(contents.params)) tensors[`net.${k}`] = v;
  for (const [k, v] of Object.entries(contents.ema)) tensors[`ema.${k}`] = v;
  await saveCheckpoint(path, { tensors, state: contents.state as Record<string, unknown> });
}

/** A loaded run checkpoint: its state and accessors over its host tensors. */
export interface RunCheckpoint<S> {
  /** The JSON state. */
  state: S;
  /** Copies the tensors under `prefix` ("net." or "ema.") into `params`, checking names and shapes. */
  assign(prefix: string, params: Params): void;
  /** New tf tensors for every name under `prefix`, prefix removed; the caller owns them. */
  tensorsWithPrefix(prefix: string): Record<string, tf.Tensor>;
  /** Releases tensors made by {@linkcode RunCheckpoint.tensorsWithPrefix}. */
  dispose(): void;
}

/**
 * Loads a run checkpoint; missing or corrupt files give a {@linkcode UserError}. `options.hint`
 * is the fix named when the file is missing (default: train with train:edm or pass --checkpoint).
 *
 * @example
 * ```ts ignore
 * const ckpt = await readRunCheckpoint("runs/edm-mnist/checkpoint.safetensors");
 * ckpt.assign("ema.", params);
 * ```
 */
export async function readRunCheckpoint<S>(
  path: string,
  options: { hint?: string } = {},
): Promise<RunCheckpoint<S>> {
  let loaded;
  try {
    loaded = await loadCheckpoint<S>(path, options);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const made: tf.Tensor[] = [];
  const host = loaded.tensors;
  return {
    state: loaded.state,
    assign(prefix, params) {
      const found = tensorsWithPrefix(host, prefix) as Record<string, SafetensorsTensor>;
      const expected: Record<string, number[]> = {};
      for (const [k, v] of Object.entries(params)) expected[k] = v.shape;
      try {
        checkParamsMatch(expected, found, { source: path });
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      for (const [k, v] of Object.entries(params)) {
        const t = found[k];
        tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, "float32")));
      }
    },
    tensorsWithPrefix(prefix) {
      const out: Record<string, tf.Tensor> = {};
      for (const [k, t] of Object.entries(tensorsWithPrefix(host, prefix))) {
        const x = tf.tensor(t.data, t.shape, "float32");
        made.push(x);
        out[`${prefix}${k}`] = x;
      }
      return out;
    },
    dispose() {
      tf.dispose(made);
      made.length = 0;
    },
  };
}
