/**
 * The record a sampling shard leaves when all its images are written (core/shards.ts): a JSON
 * file `shard-<i>-of-<n>.json` beside the PNGs, with the shard, its seeds and the run's
 * configuration. A rerun of a finished shard finds it and does nothing; `eval:merge` on the
 * folder checks that the records cover the seeds exactly once with one configuration.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { UserError } from "../core/errors.ts";
import { type Shard, shardName } from "../core/shards.ts";

/** The `format` of a sampling shard record. */
export const SAMPLE_SHARD_FORMAT = "diffuse.sample-shard";

/** What a finished sampling shard records. */
export interface SampleShardRecord {
  /** {@linkcode SAMPLE_SHARD_FORMAT}. */
  format: string;
  /** Record version, 1. */
  version: number;
  /** The shard. */
  shard: Shard;
  /** How the seeds were dealt ("contiguous" or "strided"). */
  mode: string;
  /** The shard's seeds, as `--seeds` text ("16-31"). */
  shardSeeds: string;
  /** Images the shard owns. */
  images: number;
  /** The run's configuration (tasks/_shard_config.ts), the full `--seeds` included. */
  config: Record<string, unknown>;
}

/**
 * Path of a shard's record in an images folder.
 *
 * @param dir The images folder.
 * @param shard The shard.
 * @returns `<dir>/shard-<i>-of-<n>.json`.
 * @example
 * ```ts
 * import { sampleShardPath } from "./_sample_shard.ts";
 * console.assert(sampleShardPath("im", { index: 0, count: 2 }).endsWith("shard-00000-of-00002.json"));
 * ```
 */
export function sampleShardPath(dir: string, shard: Shard): string {
  return join(dir, `${shardName(shard)}.json`);
}

/**
 * Reads a shard record, or undefined when there is none.
 *
 * @param path The record file.
 * @returns The record, or undefined.
 * @throws {UserError} For a file that is not a sampling shard record.
 * @example
 * ```ts ignore
 * const done = await readSampleShard(sampleShardPath(dir, shard));
 * ```
 */
export async function readSampleShard(path: string): Promise<SampleShardRecord | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let record: SampleShardRecord | undefined;
  try {
    record = JSON.parse(text);
  } catch {
    record = undefined;
  }
  if (record?.format !== SAMPLE_SHARD_FORMAT || record.version !== 1) {
    throw new UserError(
      `${path} is not a sampling shard record (${SAMPLE_SHARD_FORMAT} version 1); delete it ` +
        `and rerun that shard`,
    );
  }
  return record;
}

/**
 * Writes a shard record atomically.
 *
 * @param dir The images folder.
 * @param record The record.
 * @returns The path written.
 * @example
 * ```ts ignore
 * await writeSampleShard(dir, record);
 * ```
 */
export async function writeSampleShard(dir: string, record: SampleShardRecord): Promise<string> {
  const path = sampleShardPath(dir, record.shard);
  await writeFileAtomic(path, JSON.stringify(record, null, 2) + "\n");
  return path;
}
