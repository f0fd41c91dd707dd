/**
 * Feature shard files: what one shard of a sharded evaluation (`eval --shard i/n`, core/shards.ts)
 * saves, so that `eval:merge` computes FD, IS, KID and precision/recall of the whole without
 * running a network. For the generated samples and for the shard's slice of the reference set it
 * holds the float64 sums behind the Frechet statistics (eval/feature_stats.ts
 * {@linkcode FeatureSums}: count, shift, sum, outer-product sum), the features themselves (KID
 * and precision/recall need them) and the class logits (IS), with the ids of the rows (seeds for
 * samples, dataset positions for the reference set).
 *
 * File format: safetensors; tensors `<part>.shift`, `<part>.sum` (F64 [D]), `<part>.scatter`
 * (F64 [D, D]), `<part>.features` (F32 [m, D]), `<part>.logits` (F32 [m, C], when C > 0) and
 * `<part>.ids` (I32 [m]) for part `samples` and `reference`; `__metadata__` `{ format:
 * "diffuse.feature-shard", version: "1", network, featureDim, numClasses, shardIndex, shardCount,
 * config }` with `config` the run's configuration as JSON (tasks/_shard_config.ts).
 *
 * @module
 */
import { writeFileAtomic } from "../core/atomic_write.ts";
import { UserError } from "../core/errors.ts";
import { SafetensorsError } from "../core/safetensors.ts";
import type { Shard } from "../core/shards.ts";
import {
  decodeExactSafetensors,
  exactSafetensorsChunks,
  type ExactTensor,
} from "./_exact_safetensors.ts";
import type { FeatureSums } from "./feature_stats.ts";

/** The `format` metadata value of a feature shard file. */
export const FEATURE_SHARD_FORMAT = "diffuse.feature-shard";

/** One feature set of a shard: samples or its slice of the reference set. */
export interface FeaturePart {
  /** The float64 sums of `features`. */
  sums: FeatureSums;
  /** Row-major [m, D]. */
  features: Float32Array;
  /** Row-major [m, C] logits, when the network has classes. */
  logits?: Float32Array;
  /** The id of each row: a seed, or a position in the reference set. */
  ids: Int32Array;
}

/** Everything a shard of an evaluation saves. */
export interface FeatureShard {
  /** Feature network name. */
  network: string;
  /** Feature width D. */
  featureDim: number;
  /** Classes C of the logits (0 without). */
  numClasses: number;
  /** Which shard. */
  shard: Shard;
  /** The run's configuration; equal across the shards of one run. */
  config: Record<string, unknown>;
  /** The generated samples' part. */
  samples: FeaturePart;
  /** The reference set's part. */
  reference: FeaturePart;
}

/**
 * Writes a feature shard to `path`, atomically.
 *
 * @param path Target file; its folder must exist.
 * @param shard The shard; read, not kept.
 * @example
 * ```ts ignore
 * await saveFeatureShard("runs/eval/shard-00000-of-00004.safetensors", shard);
 * ```
 */
export async function saveFeatureShard(path: string, shard: FeatureShard): Promise<void> {
  await writeFileAtomic(path, encodeChunks(shard));
}

/**
 * Decodes the bytes of a feature shard file.
 *
 * @param bytes The file's contents.
 * @param source The file's name, for messages.
 * @returns The shard, float64 sums bit-for-bit as saved.
 * @throws {UserError} For a file that is corrupt or not a feature shard.
 * @example
 * ```ts ignore
 * const shard = decodeFeatureShard(await Deno.readFile(path), path);
 * ```
 */
export function decodeFeatureShard(bytes: Uint8Array, source: string): FeatureShard {
  const fail = (why: string): never => {
    throw new UserError(`${source}: ${why}; delete it and rerun that shard`);
  };
  let contents;
  try {
    contents = decodeExactSafetensors(bytes, source);
  } catch (e) {
    if (e instanceof SafetensorsError) fail(e.message);
    throw e;
  }
  const { tensors, metadata } = contents;
  if (metadata.format !== FEATURE_SHARD_FORMAT || metadata.version !== "1") {
    fail(`not a feature shard file (${FEATURE_SHARD_FORMAT} version 1)`);
  }
  const int = (key: string) => {
    const v = Number(metadata[key]);
    if (!Number.isSafeInteger(v) || v < 0) fail(`metadata ${key} is not an integer`);
    return v;
  };
  const featureDim = int("featureDim"), numClasses = int("numClasses");
  const shard = { index: int("shardIndex"), count: int("shardCount") };
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(metadata.config);
  } catch {
    fail("metadata config is not JSON");
  }
  const network = metadata.network;
  const part = (name: string): FeaturePart => {
    const get = (key: string, dtype: string, length?: number): ExactTensor["data"] => {
      const t = tensors[`${name}.${key}`];
      if (!t || t.dtype !== dtype || (length !== undefined && t.data.length !== length)) {
        fail(`tensor ${name}.${key} is missing or not ${dtype}${length ? ` of ${length}` : ""}`);
      }
      return t.data;
    };
    const ids = get("ids", "I32") as Int32Array;
    const m = ids.length, d = featureDim;
    return {
      sums: {
        network,
        count: m,
        shift: get("shift", "F64", d) as Float64Array,
        sum: get("sum", "F64", d) as Float64Array,
        scatter: get("scatter", "F64", d * d) as Float64Array,
      },
      features: get("features", "F32", m * d) as Float32Array,
      logits: numClasses > 0 ? get("logits", "F32", m * numClasses) as Float32Array : undefined,
      ids,
    };
  };
  return {
    network,
    featureDim,
    numClasses,
    shard,
    config,
    samples: part("samples"),
    reference: part("reference"),
  };
}

/**
 * Reads a feature shard file written by {@linkcode saveFeatureShard}.
 *
 * @param path The file.
 * @returns The shard.
 * @throws {UserError} When the file is missing, corrupt, or not a feature shard.
 * @example
 * ```ts ignore
 * const shard = await loadFeatureShard("runs/eval/shard-00000-of-00004.safetensors");
 * ```
 */
export async function loadFeatureShard(path: string): Promise<FeatureShard> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UserError(
      `cannot read feature shard ${path} (${(e as Error).message.split(":")[0]})`,
    );
  }
  return decodeFeatureShard(bytes, path);
}

function encodeChunks(s: FeatureShard): Uint8Array[] {
  const tensors: Record<string, ExactTensor> = {};
  const d = s.featureDim;
  for (const [name, p] of [["samples", s.samples], ["reference", s.reference]] as const) {
    const m = p.ids.length;
    if (p.sums.count !== m || p.features.length !== m * d) {
      throw new RangeError(
        `${name}: ${m} ids, ${p.sums.count} summed and ${
          p.features.length / d
        } feature rows disagree`,
      );
    }
    tensors[`${name}.shift`] = { data: p.sums.shift, shape: [d] };
    tensors[`${name}.sum`] = { data: p.sums.sum, shape: [d] };
    tensors[`${name}.scatter`] = { data: p.sums.scatter, shape: [d, d] };
    tensors[`${name}.features`] = { data: p.features, shape: [m, d] };
    if (s.numClasses > 0) {
      tensors[`${name}.logits`] = { data: p.logits!, shape: [m, s.numClasses] };
    }
    tensors[`${name}.ids`] = { data: p.ids, shape: [m] };
  }
  return exactSafetensorsChunks(tensors, {
    format: FEATURE_SHARD_FORMAT,
    version: "1",
    network: s.network,
    featureDim: String(d),
    numClasses: String(s.numClasses),
    shardIndex: String(s.shard.index),
    shardCount: String(s.shard.count),
    config: JSON.stringify(s.config),
  });
}
