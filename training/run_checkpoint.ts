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
import { modelParamShapes } from "../models/build_network.ts";

/** File name of a run's checkpoint inside its run directory. */
export const CHECKPOINT_FILE = "checkpoint.safetensors";

/** What the toolkit knows about one checkpoint format tag (`state.format`). */
export interface CheckpointKind {
  /** The task that writes it, e.g. "train:edm". */
  writtenBy: string;
  /** Tasks that read it, named in messages as the ones to use instead. */
  readBy: readonly string[];
  /**
   * The parameter shapes the state describes, checked against the `net.` and `ema.` tensors by
   * {@linkcode readRunCheckpoint} before anything is built; throws a RangeError for a state
   * that describes no valid network. Formats without it are not checked there.
   */
  paramShapes?: (state: Record<string, unknown>) => Record<string, number[]>;
}

const builtinShapes = (state: Record<string, unknown>) => modelParamShapes(state.model);

/**
 * The checkpoint format tags and their tasks. A new trainer adds its line here; every loader
 * checks a checkpoint's tag with {@linkcode checkCheckpointKind} against the tags it accepts.
 */
export const CHECKPOINT_KINDS: Record<string, CheckpointKind> = {
  "diffuse-edm/1": {
    writtenBy: "train:edm",
    readBy: [
      "sample:edm",
      "sample:s2n",
      "sample:sde",
      "eval",
      "train:edm --resume",
      "train:dinof --score-checkpoint",
    ],
    paramShapes: builtinShapes,
  },
  "diffuse-ddpm/1": {
    writtenBy: "train:ddpm",
    readBy: ["sample:ddpm", "eval:ddpm", "sample:edm", "sample:s2n", "eval", "train:ddpm --resume"],
    paramShapes: builtinShapes,
  },
  "diffuse-ndm/1": {
    writtenBy: "train:ndm",
    readBy: ["sample:ndm", "eval:ndm", "train:ndm --resume"],
  },
  "diffuse-flow/1": {
    writtenBy: "train:glow",
    readBy: ["sample:glow", "train:glow --resume"],
  },
  "diffuse-dinof/1": {
    writtenBy: "train:dinof",
    readBy: ["sample:dinof", "train:dinof --resume"],
  },
};

/** Options of {@linkcode checkCheckpointKind}. */
export interface CheckCheckpointKindOptions {
  /** The format tags the caller can read. */
  accept: readonly string[];
  /** The caller, named in the message, e.g. "sample:ddpm" or "train:edm --resume". */
  task: string;
}

/**
 * The one check of a checkpoint's format tag every loader runs: a tag not in `accept` is a
 * {@linkcode UserError} naming the tag, the task that wrote it and the tasks to use instead.
 *
 * @param state The checkpoint's state (its `format` field is read).
 * @param path The checkpoint, named in the message.
 * @param options The accepted tags and the caller.
 * @returns The accepted tag.
 * @throws {UserError} For a missing, unknown or unaccepted tag.
 * @example
 * ```ts
 * import { checkCheckpointKind } from "./run_checkpoint.ts";
 * const tag = checkCheckpointKind({ format: "diffuse-edm/1" }, "ckpt.safetensors", {
 *   accept: ["diffuse-edm/1"],
 *   task: "sample:edm",
 * });
 * ```
 */
export function checkCheckpointKind(
  state: unknown,
  path: string,
  options: CheckCheckpointKindOptions,
): string {
  const format = (state as { format?: unknown } | null)?.format;
  if (typeof format === "string" && options.accept.includes(format)) return format;
  const readers = options.accept.map((f) => CHECKPOINT_KINDS[f]?.writtenBy).filter(Boolean);
  const want = `${options.task} reads checkpoints written by ${[...new Set(readers)].join(" or ")}`;
  const kind = typeof format === "string" ? CHECKPOINT_KINDS[format] : undefined;
  if (kind === undefined) {
    throw new UserError(
      `${path} has format tag ${JSON.stringify(format ?? null)}, which no diffuse trainer ` +
        `writes (damaged, or not a diffuse checkpoint); ${want}`,
    );
  }
  const instead = kind.readBy.filter((t) =>
    !t.endsWith("--resume") || t.startsWith(kind.writtenBy)
  );
  throw new UserError(
    `${path} is a ${kind.writtenBy} checkpoint (${format}) but ${want}: use ` +
      `${instead.join(", ")} for it instead`,
  );
}

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
 * Loads a run checkpoint; missing or corrupt files give a {@linkcode UserError}; `options.hint`
 * is the fix named when the file is missing (default: train with train:edm or pass
 * --checkpoint). Its state must hold a format tag and a run config; for the formats of
 * {@linkcode CHECKPOINT_KINDS} with `paramShapes`, the state must also describe a network
 * (`model`) whose every parameter is in the file with its shape in both weight groups (`net.`,
 * `ema.`), and nothing else may be in those groups, all checked before anything is built.
 * Loaders check which tags they take with {@linkcode checkCheckpointKind}.
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
  const host = loaded.tensors;
  checkRunTensors(loaded.state, host, path);
  const made: tf.Tensor[] = [];
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

/**
 * Checks a run checkpoint's state against its tensors before a network is built: a format tag
 * and a run config exist and, for a format with `paramShapes`, the model description is sane and
 * the `net.` and `ema.` groups hold exactly the parameters it needs with their shapes.
 */
function checkRunTensors(
  state: unknown,
  tensors: Record<string, SafetensorsTensor>,
  path: string,
): void {
  const st = state as Record<string, unknown>;
  const fix = "it is damaged or was not written by a diffuse trainer; pass the run's checkpoint";
  if (typeof st.format !== "string") {
    throw new UserError(`checkpoint ${path} has no format tag in its state: ${fix}`);
  }
  if (st.config === null || typeof st.config !== "object") {
    throw new UserError(`checkpoint ${path} has no run config in its state: ${fix}`);
  }
  const paramShapes = CHECKPOINT_KINDS[st.format]?.paramShapes;
  if (!paramShapes) return; // a format this table does not describe: its loader checks it
  let expected: Record<string, number[]>;
  try {
    expected = paramShapes(st);
  } catch (e) {
    throw new UserError(`checkpoint ${path} ${(e as Error).message}: ${fix}`);
  }
  for (const prefix of ["net.", "ema."]) {
    try {
      checkParamsMatch(expected, tensorsWithPrefix(tensors, prefix), {
        source: `${path} (${prefix}*)`,
      });
    } catch (e) {
      throw new UserError(
        `${(e as Error).message.replace(/ Use the same .*$/, "")} The checkpoint's tensors do ` +
          `not match the network its own state describes: ${fix}`,
      );
    }
  }
}
