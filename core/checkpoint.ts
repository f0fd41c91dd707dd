/**
 * Training checkpoints (DESIGN.md "Checkpoints and files"). A checkpoint is ONE safetensors file:
 * named tensors ("net.<name>", "ema.<name>", "adam.m.<name>", ...) plus the JSON training state
 * (config, step, optimizer scalars, EMA and rng state) stored as a string under the `__metadata__`
 * key `"diffuse"`. Weights and state therefore change together in a single atomic rename; a crash
 * leaves either the previous checkpoint or the new one. A human-readable JSON sidecar with the
 * same name (`.json`) is written after it, for people and scripts; loading never needs it.
 *
 * The "latest" checkpoint of a run is simply one path (e.g. `runDir/checkpoint.safetensors`)
 * overwritten on each save (`training/checkpoint_history.ts` keeps older versions beside it).
 * The SHA-256 of the data section is stored under `"diffuse.sha256"` and verified on load, so a
 * damaged byte anywhere in the file is found; the file's size is checked before it is read.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { writeFileAtomic } from "./atomic_write.ts";
import {
  type HostTensor,
  readSafetensors,
  SafetensorsError,
  type SafetensorsTensor,
  writeSafetensors,
} from "./safetensors.ts";

/** The `__metadata__` key that holds the JSON training state. */
export const CHECKPOINT_STATE_KEY = "diffuse";

/**
 * The `__metadata__` key that holds the hex SHA-256 of the data section, written by
 * {@linkcode saveCheckpoint} and verified by {@linkcode loadCheckpoint} (files written before it
 * existed have none and load unchecked).
 */
export const CHECKPOINT_DIGEST_KEY = "diffuse.sha256";

/** Largest checkpoint file {@linkcode loadCheckpoint} reads by default (4 GiB). */
export const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

/** What {@linkcode saveCheckpoint} stores. */
export interface CheckpointContents {
  /** Tensors by name: tf tensors (float32 or int32, read but not disposed) or host arrays. */
  tensors: Record<string, tf.Tensor | HostTensor>;
  /** JSON-serializable training state (config, step, optimizer scalars, rng state, ...). */
  state: Record<string, unknown>;
}

/** What {@linkcode loadCheckpoint} returns. */
export interface LoadedCheckpoint<S = Record<string, unknown>> {
  /** Tensors by name as host arrays; the caller owns them and makes tf tensors as needed. */
  tensors: Record<string, SafetensorsTensor>;
  /** The training state saved with them. */
  state: S;
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Also write the human-readable `<name>.json` sidecar after the checkpoint. @default true */
  sidecar?: boolean;
}

/** Options of {@linkcode loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /** How to make a checkpoint, shown when none exists at the path. */
  hint?: string;
  /** Refuse files larger than this many bytes, before reading them. @default MAX_CHECKPOINT_BYTES */
  maxBytes?: number;
}

/** Options of {@linkcode checkParamsMatch}. */
export interface CheckParamsMatchOptions {
  /** Where the found shapes came from, named in the message. @default "the checkpoint" */
  source?: string;
  /** How many names of each kind (missing, unexpected, reshaped) to list. @default 5 */
  maxListed?: number;
}

const DEFAULT_HINT = "train first with `deno task train:edm` or pass --checkpoint";

/**
 * Saves tensors and state as one safetensors file at `path`, atomically, then the JSON sidecar.
 *
 * Tensor values are downloaded with `await tensor.data()`; keep the tensors alive until the
 * returned promise settles. Nothing is disposed.
 *
 * @param path Checkpoint file, e.g. `runs/edm/checkpoint.safetensors`; its folder must exist.
 * @param contents Tensors and state, see {@linkcode CheckpointContents}.
 * @param options See {@linkcode SaveCheckpointOptions}.
 * @throws {TypeError} When `state` is not JSON-serializable or a tensor is neither float32 nor int32.
 * @example Save a network and its step
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { saveCheckpoint } from "./checkpoint.ts";
 * import { selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const dir = await Deno.makeTempDir();
 * const w = tf.zeros([3, 3]);
 * await saveCheckpoint(`${dir}/checkpoint.safetensors`, {
 *   tensors: { "net.w": w },
 *   state: { step: 10 },
 * });
 * w.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  contents: CheckpointContents,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const { sidecar = true } = options;
  const { tensors, state } = contents;
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    throw new TypeError("checkpoint state must be a plain object, e.g. { step, config }");
  }
  let stateJson: string;
  try {
    stateJson = JSON.stringify(state);
  } catch (e) {
    throw new TypeError(
      `checkpoint state is not JSON-serializable (${(e as Error).message}); ` +
        `store plain numbers, strings, arrays and objects`,
    );
  }
  const host: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(tensors)) host[name] = await toHost(name, t);
  await writeSafetensors(path, host, {
    metadata: { [CHECKPOINT_STATE_KEY]: stateJson },
    digestKey: CHECKPOINT_DIGEST_KEY,
  });
  if (sidecar) {
    const index = Object.fromEntries(Object.keys(host).sort().map((k) => [k, host[k].shape]));
    const summary = { checkpoint: basenameOf(path), state, tensors: index };
    await writeFileAtomic(sidecarPath(path), JSON.stringify(summary, null, 2) + "\n");
  }
}

/**
 * Loads a checkpoint written by {@linkcode saveCheckpoint} (the sidecar is not read).
 *
 * @param path The checkpoint file.
 * @param options See {@linkcode LoadCheckpointOptions}.
 * @returns Host tensors and the saved state; the caller owns them.
 * @throws {Deno.errors.NotFound} "no checkpoint at X: <hint>" when the file does not exist.
 * @throws {Error} "checkpoint X is corrupt (...)" for a truncated or damaged file (including a
 *   data checksum mismatch), and a clear message for a folder, the JSON sidecar, a file above
 *   `maxBytes`, or a safetensors file without diffuse state.
 * @example Load what was saved
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/checkpoint.safetensors`;
 * await saveCheckpoint(path, {
 *   tensors: { "net.b": { data: new Float32Array([1, 2]), shape: [2] } },
 *   state: { step: 3 },
 * });
 * const { tensors, state } = await loadCheckpoint(path);
 * console.assert(state.step === 3 && tensors["net.b"].data[1] === 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadCheckpoint<S = Record<string, unknown>>(
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint<S>> {
  const { hint = DEFAULT_HINT, maxBytes = MAX_CHECKPOINT_BYTES } = options;
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch { /* readSafetensors reports a missing file */ }
  if (info?.isDirectory) {
    throw new Error(
      `${path} is a folder, not a checkpoint: pass the file inside it, e.g. ` +
        `${path.replace(/\/+$/, "")}/checkpoint.safetensors`,
    );
  }
  if (info && path.endsWith(".json")) {
    throw new Error(
      `${path} is the JSON sidecar of a checkpoint, for people to read: pass ` +
        `${path.slice(0, -".json".length)}.safetensors instead`,
    );
  }
  if (info && info.size > maxBytes) {
    throw new Error(
      `checkpoint ${path} is ${info.size} bytes, above the ${maxBytes}-byte limit ` +
        `(not a diffuse checkpoint?); pass the run's checkpoint.safetensors`,
    );
  }
  let contents;
  try {
    contents = await readSafetensors(path, { digestKey: CHECKPOINT_DIGEST_KEY });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`no checkpoint at ${path}: ${hint}`);
    }
    if (e instanceof SafetensorsError) {
      throw new Error(`checkpoint ${path} is corrupt (${e.problem})`, { cause: e });
    }
    throw e;
  }
  const stateJson = contents.metadata[CHECKPOINT_STATE_KEY];
  if (stateJson === undefined) {
    throw new Error(
      `${path} is a safetensors file but not a diffuse checkpoint (no "${CHECKPOINT_STATE_KEY}" ` +
        `metadata); load plain weights with readSafetensors`,
    );
  }
  let state: unknown;
  try {
    state = JSON.parse(stateJson);
  } catch (e) {
    throw new Error(
      `checkpoint ${path} is corrupt (its "${CHECKPOINT_STATE_KEY}" state is not valid JSON: ` +
        `${(e as Error).message})`,
    );
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    throw new Error(`checkpoint ${path} is corrupt (its state is not a JSON object)`);
  }
  return { tensors: contents.tensors, state: state as S };
}

/**
 * The tensors whose names start with `prefix`, keyed by the rest of the name
 * (e.g. `"net."` turns "net.conv.weight" into "conv.weight"). Arrays are shared, not copied.
 *
 * @param tensors Tensors by full name, e.g. from {@linkcode loadCheckpoint}.
 * @param prefix The group to select, e.g. "net.", "ema." or "adam.m.".
 * @returns A new record over the same arrays.
 * @example Split a checkpoint into its groups
 * ```ts
 * import { tensorsWithPrefix } from "./checkpoint.ts";
 * const all = { "net.w": { data: new Float32Array(1), shape: [1] } };
 * const net = tensorsWithPrefix(all, "net."); // { w: ... }
 * ```
 */
export function tensorsWithPrefix<T>(
  tensors: Record<string, T>,
  prefix: string,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(tensors)) {
    if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  }
  return out;
}

/**
 * Checks that a checkpoint holds exactly the parameters a network expects, with the same shapes,
 * and throws one readable error listing the first few differences and the fix.
 *
 * @param expected Shapes the network needs, by parameter name.
 * @param found Shapes (or tensors with a `shape`) from the checkpoint, by the same names.
 * @param options See {@linkcode CheckParamsMatchOptions}.
 * @throws {RangeError} When names are missing or unexpected, or shapes differ.
 * @example Compare a network with a loaded checkpoint group
 * ```ts
 * import { checkParamsMatch } from "./checkpoint.ts";
 * checkParamsMatch({ "conv.weight": [3, 3, 1, 8] }, { "conv.weight": [3, 3, 1, 8] }); // passes
 * ```
 */
export function checkParamsMatch(
  expected: Record<string, readonly number[]>,
  found: Record<string, readonly number[] | { shape: readonly number[] }>,
  options: CheckParamsMatchOptions = {},
): void {
  const { source = "the checkpoint", maxListed = 5 } = options;
  const shapeOf = (v: readonly number[] | { shape: readonly number[] }): readonly number[] =>
    Array.isArray(v) ? v : (v as { shape: readonly number[] }).shape;
  const fmt = (s: readonly number[]): string => `[${s.join(", ")}]`;
  const missing: string[] = [];
  const reshaped: string[] = [];
  for (const [name, shape] of Object.entries(expected)) {
    if (!(name in found)) missing.push(`${name} ${fmt(shape)}`);
    else {
      const got = shapeOf(found[name]);
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        reshaped.push(`${name}: ${fmt(got)} in ${source}, ${fmt(shape)} in the network`);
      }
    }
  }
  const extra = Object.keys(found).filter((n) => !(n in expected)).map((n) =>
    `${n} ${fmt(shapeOf(found[n]))}`
  );
  if (missing.length + extra.length + reshaped.length === 0) return;
  const list = (items: string[]): string =>
    items.slice(0, maxListed).join("; ") +
    (items.length > maxListed ? `; ... ${items.length - maxListed} more` : "");
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing from ${source} (${list(missing)})`);
  if (extra.length) parts.push(`${extra.length} not in the network (${list(extra)})`);
  if (reshaped.length) parts.push(`${reshaped.length} with another shape (${list(reshaped)})`);
  throw new RangeError(
    `${source} does not match this network's architecture: ${parts.join(", ")}. ` +
      `Use the same --preset/--channels as the run that wrote the checkpoint, ` +
      `or start a new run directory.`,
  );
}

/**
 * The sidecar path of a checkpoint: the same name with `.json` in place of `.safetensors`.
 *
 * @param path Checkpoint file path.
 * @returns e.g. `runs/a/checkpoint.json` for `runs/a/checkpoint.safetensors`.
 * @example The sidecar of a checkpoint
 * ```ts
 * import { sidecarPath } from "./checkpoint.ts";
 * console.assert(sidecarPath("run/checkpoint.safetensors") === "run/checkpoint.json");
 * ```
 */
export function sidecarPath(path: string): string {
  return path.endsWith(".safetensors")
    ? path.slice(0, -".safetensors".length) + ".json"
    : `${path}.json`;
}

async function toHost(name: string, t: tf.Tensor | HostTensor): Promise<HostTensor> {
  if (t instanceof Object && "data" in t && typeof t.data !== "function") return t as HostTensor;
  const tensor = t as tf.Tensor;
  if (tensor.isDisposed) {
    throw new TypeError(`tensor "${name}" was disposed before saveCheckpoint could read it`);
  }
  if (tensor.dtype !== "float32" && tensor.dtype !== "int32") {
    throw new TypeError(`tensor "${name}" has dtype ${tensor.dtype}; cast it to float32 or int32`);
  }
  const data = (await tensor.data()) as Float32Array | Int32Array;
  return { data, shape: [...tensor.shape] };
}

function basenameOf(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
