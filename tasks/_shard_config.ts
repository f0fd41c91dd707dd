/**
 * The configuration a shard records (core/shards.ts): the task's flags that decide its output,
 * with input files named by content hash instead of path (a checkpoint mounted at another path
 * on another node is the same checkpoint), so shards of one job can be checked to agree.
 *
 * @module
 */
import { sha256File } from "../core/file_hash.ts";
export { configDifferences, describeDifferences } from "../core/shards.ts";

/** Flags that never change what a shard computes: where it writes, how it batches, its slice. */
const NEUTRAL_FLAGS = [
  "out",
  "out-dir",
  "images-dir",
  "resume",
  "partial-grid",
  "shard",
  "shard-mode",
  "batch",
  "backend",
  "help",
];

/**
 * The shard configuration of a task's parsed flags: every flag except {@linkcode NEUTRAL_FLAGS},
 * undefined ones dropped, keys sorted, and each of `files` (when given) replaced by
 * `sha256:<hex>` of its content.
 *
 * @param task The task name, recorded as `task`.
 * @param flags The parsed flags.
 * @param files Flags that name input files.
 * @returns A plain JSON-able record.
 * @example
 * ```ts ignore
 * const config = await shardConfig("sample:edm", f, ["checkpoint"]);
 * ```
 */
export async function shardConfig(
  task: string,
  flags: Record<string, unknown>,
  files: readonly string[],
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { task };
  for (const key of Object.keys(flags).sort()) {
    const v = flags[key];
    if (v === undefined || NEUTRAL_FLAGS.includes(key)) continue;
    out[key] = files.includes(key) && typeof v === "string" ? `sha256:${await sha256File(v)}` : v;
  }
  return out;
}
