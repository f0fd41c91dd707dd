/**
 * Feature statistics files for the Frechet distance (Heusel et al. 2017, FID): reference
 * statistics of a data set are computed once and compared with those of generated samples later.
 *
 * File format: a safetensors file (readable by PyTorch tooling) holding `mu` (F64, [D]) and
 * `sigma` (F64, [D, D]), with `__metadata__` `{ format: "diffuse.feature-stats", version: "1",
 * network, count }`. The project's safetensors writer only writes F32 and I32, and its reader
 * converts F64 to float32, which would lose the precision the Frechet distance needs; so this
 * module lays out the (tiny) header itself and reads the float64 values straight from the bytes,
 * after `decodeSafetensors` has validated the whole layout.
 *
 * @module
 */
import { writeFileAtomic } from "../core/atomic_write.ts";
import { UserError } from "../core/errors.ts";
import { decodeSafetensors, SafetensorsError } from "../core/safetensors.ts";
import type { FeatureStats } from "./types.ts";

/** The `format` metadata value that marks a feature statistics file. */
export const FEATURE_STATS_FORMAT = "diffuse.feature-stats";

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Options of {@linkcode decodeFeatureStats} and {@linkcode loadFeatureStats}. */
export interface LoadFeatureStatsOptions {
  /**
   * Network the statistics must come from; a file from another network is an error.
   * Undefined accepts any. @default undefined
   */
  network?: string;
  /** Name of the file, for error messages. @default "(in-memory bytes)" */
  source?: string;
}

/**
 * Serializes feature statistics as a safetensors file with float64 tensors (see the module doc).
 *
 * @param stats The statistics; read, not kept.
 * @returns The file's bytes.
 * @throws {RangeError} When `mu` and `sigma` disagree in size or `count` is not an integer >= 2.
 * @example Encode and decode
 * ```ts
 * import { decodeFeatureStats, encodeFeatureStats } from "./feature_stats_file.ts";
 * const stats = { network: "toy", count: 2, mu: new Float64Array([1]), sigma: new Float64Array([2]) };
 * const back = decodeFeatureStats(encodeFeatureStats(stats));
 * console.assert(back.sigma[0] === 2);
 * ```
 */
export function encodeFeatureStats(stats: FeatureStats): Uint8Array {
  const chunks = statsChunks(stats);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes feature statistics to `path` (safetensors, float64), atomically.
 *
 * @param path Target file; its folder must exist.
 * @param stats The statistics; read, not kept.
 * @example Save and load reference statistics
 * ```ts
 * import { loadFeatureStats, saveFeatureStats } from "./feature_stats_file.ts";
 * const dir = await Deno.makeTempDir();
 * const stats = { network: "toy", count: 2, mu: new Float64Array([1]), sigma: new Float64Array([2]) };
 * await saveFeatureStats(`${dir}/ref.safetensors`, stats);
 * const back = await loadFeatureStats(`${dir}/ref.safetensors`, { network: "toy" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveFeatureStats(path: string, stats: FeatureStats): Promise<void> {
  await writeFileAtomic(path, statsChunks(stats));
}

/**
 * Parses feature statistics from the bytes of a file written by {@linkcode encodeFeatureStats}.
 *
 * @param bytes The file's contents.
 * @param options See {@linkcode LoadFeatureStatsOptions}.
 * @returns Fresh float64 arrays, bit-for-bit as saved; the caller owns them.
 * @throws {UserError} For a corrupt or truncated file, a safetensors file that is not feature
 *   statistics, or statistics of another network than `options.network`.
 * @example Reject statistics of another network
 * ```ts
 * import { decodeFeatureStats, encodeFeatureStats } from "./feature_stats_file.ts";
 * const stats = { network: "a", count: 2, mu: new Float64Array([1]), sigma: new Float64Array([2]) };
 * try {
 *   decodeFeatureStats(encodeFeatureStats(stats), { network: "b" });
 * } catch (e) {
 *   console.error((e as Error).message);
 * }
 * ```
 */
export function decodeFeatureStats(
  bytes: Uint8Array,
  options: LoadFeatureStatsOptions = {},
): FeatureStats {
  const { network, source = "(in-memory bytes)" } = options;
  const redo = "recompute the statistics";
  const fail = (problem: string): never => {
    throw new UserError(`feature statistics file ${source}: ${problem}`);
  };
  let contents;
  try {
    contents = decodeSafetensors(bytes, { source });
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new UserError(`${e.message}; ${redo}`, { cause: e });
    }
    throw e;
  }
  const { tensors, metadata } = contents;
  if (metadata.format !== FEATURE_STATS_FORMAT) {
    fail(
      `not feature statistics (metadata format is ${JSON.stringify(metadata.format)}, ` +
        `expected "${FEATURE_STATS_FORMAT}"); pass a file written by saveFeatureStats`,
    );
  }
  if (metadata.version !== "1") {
    fail(`unsupported version ${JSON.stringify(metadata.version)} (this reader knows "1")`);
  }
  const count = Number(metadata.count);
  if (!Number.isSafeInteger(count) || count < 2) {
    fail(`metadata count ${JSON.stringify(metadata.count)} is not an integer >= 2; ${redo}`);
  }
  if (typeof metadata.network !== "string" || metadata.network === "") {
    fail(`metadata names no feature network; ${redo}`);
  }
  if (network !== undefined && metadata.network !== network) {
    fail(
      `statistics were computed with network "${metadata.network}" but "${network}" is in use; ` +
        `recompute the statistics with "${network}" or pick the matching network`,
    );
  }
  const { mu, sigma } = tensors;
  if (mu === undefined || sigma === undefined) {
    fail(`missing tensor "${mu === undefined ? "mu" : "sigma"}"; ${redo}`);
  }
  if (mu.dtype !== "F64" || sigma.dtype !== "F64") {
    fail(`mu and sigma must be F64, found ${mu.dtype} and ${sigma.dtype}; ${redo}`);
  }
  const d = mu.shape[0];
  if (
    mu.shape.length !== 1 || sigma.shape.length !== 2 || sigma.shape[0] !== d ||
    sigma.shape[1] !== d || d < 1
  ) {
    fail(`shapes mu [${mu.shape}] and sigma [${sigma.shape}] do not match [D] and [D, D]`);
  }
  // decodeSafetensors validated the layout; read the float64 values from their offsets.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const read = (name: string): Float64Array => {
    const [begin, end] = header[name].data_offsets as [number, number];
    const out = new Float64Array((end - begin) / 8);
    const at = 8 + headerLength + begin;
    for (let i = 0; i < out.length; i++) {
      const v = view.getFloat64(at + 8 * i, true);
      if (!Number.isFinite(v)) fail(`tensor "${name}" holds ${v} at index ${i} (corrupt?)`);
      out[i] = v;
    }
    return out;
  };
  return { network: metadata.network, count, mu: read("mu"), sigma: read("sigma") };
}

/**
 * Reads feature statistics written by {@linkcode saveFeatureStats}.
 *
 * @param path The file.
 * @param options See {@linkcode LoadFeatureStatsOptions} (`source` defaults to `path`).
 * @returns Fresh float64 statistics; the caller owns them.
 * @throws {UserError} When the file is missing, corrupt, not feature statistics, or from another
 *   network than `options.network`.
 * @example Load reference statistics for a network
 * ```ts
 * import { loadFeatureStats, saveFeatureStats } from "./feature_stats_file.ts";
 * const dir = await Deno.makeTempDir();
 * const stats = { network: "toy", count: 3, mu: new Float64Array([0]), sigma: new Float64Array([1]) };
 * await saveFeatureStats(`${dir}/s.safetensors`, stats);
 * const { count } = await loadFeatureStats(`${dir}/s.safetensors`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadFeatureStats(
  path: string,
  options: LoadFeatureStatsOptions = {},
): Promise<FeatureStats> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `no feature statistics file at ${path}; compute it first or check the path`,
        { cause: e },
      );
    }
    throw e;
  }
  return decodeFeatureStats(bytes, { source: path, ...options });
}

function statsChunks(stats: FeatureStats): Uint8Array[] {
  const { network, count, mu, sigma } = stats;
  if (!(mu instanceof Float64Array) || !(sigma instanceof Float64Array)) {
    throw new TypeError("feature statistics mu and sigma must be Float64Array");
  }
  const d = mu.length;
  if (d < 1 || sigma.length !== d * d) {
    throw new RangeError(`sigma has ${sigma.length} values but mu has ${d}; expected ${d * d}`);
  }
  if (!Number.isSafeInteger(count) || count < 2) {
    throw new RangeError(`feature statistics count must be an integer >= 2, got ${count}`);
  }
  if (typeof network !== "string" || network === "") {
    throw new TypeError(`feature statistics need a network name, got ${JSON.stringify(network)}`);
  }
  const header = {
    __metadata__: { format: FEATURE_STATS_FORMAT, version: "1", network, count: String(count) },
    mu: { dtype: "F64", shape: [d], data_offsets: [0, 8 * d] },
    sigma: { dtype: "F64", shape: [d, d], data_offsets: [8 * d, 8 * d + 8 * d * d] },
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data section starts 8-byte aligned (as safetensors does).
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, littleEndian(mu), littleEndian(sigma)];
}

function littleEndian(a: Float64Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const v = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) v.setFloat64(8 * i, a[i], true);
  return out;
}
