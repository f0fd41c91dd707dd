/**
 * Shards: one job's seeds split over n processes, as NVlabs/edm's `generate.py` splits its seeds
 * over ranks, so that sampling and evaluation run on many machines (a Kubernetes Indexed Job, a
 * Slurm job array, or `deno task shards` here) and merge exactly afterwards.
 *
 * A shard is `i/n` (0 <= i < n), given as `--shard i/n` or read from the scheduler's environment:
 *
 * - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes) is i; Kubernetes sets no
 *   count, so the manifest passes `spec.completions` as `DIFFUSE_SHARD_COUNT` (examples/k8s/).
 * - Slurm job array: i = (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`) / `SLURM_ARRAY_TASK_STEP`,
 *   n = `SLURM_ARRAY_TASK_COUNT`; so `--array=1-4` and `--array=0-6:2` work as well as `0-3`.
 *
 * The partition (the option `mode`):
 * - `contiguous` (the default): shard i takes the i-th of n consecutive runs of the seed list, the
 *   first `len % n` runs one longer (numpy's `array_split`), so each shard's images are a range.
 * - `strided`: shard i takes positions i, i + n, i + 2n, ... (`seeds[i::n]`): shards stay
 *   balanced when the cost grows along the list. edm strides whole batches over ranks instead
 *   (`all_batches[rank :: world_size]`); strided by image gives the same balance without making
 *   the partition depend on the batch size.
 *
 * Either way each seed lands in exactly one shard, and an image depends only on its seed, so the
 * union of the shards' images is the one-process run's.
 *
 * @module
 */
import { UserError } from "./errors.ts";

/** Shard i of n. */
export interface Shard {
  /** 0-based index, below `count`. */
  index: number;
  /** Number of shards, at least 1. */
  count: number;
}

/** How seeds are dealt to shards (see the module doc). */
export type ShardMode = "contiguous" | "strided";

/** The partition modes, for flag choices. */
export const SHARD_MODES: readonly ShardMode[] = ["contiguous", "strided"];

/** The largest shard count accepted (a typo guard, not a scheduler limit). */
export const MAX_SHARDS = 100_000;

/**
 * Parses `--shard i/n`.
 *
 * @param text E.g. "0/4".
 * @returns The shard.
 * @throws {UserError} For anything but two integers with 0 <= i < n <= {@linkcode MAX_SHARDS}.
 * @example
 * ```ts
 * import { parseShard } from "./shards.ts";
 * console.assert(parseShard("3/4").index === 3);
 * ```
 */
export function parseShard(text: string): Shard {
  const m = text.trim().match(/^(\d+)\/(\d+)$/);
  if (!m) {
    throw new UserError(
      `--shard "${text}" is not i/n; write e.g. 0/4 (shard 0 of 4, counted from 0)`,
    );
  }
  return checkShard(Number(m[1]), Number(m[2]), `--shard ${text}`);
}

/**
 * The shard the scheduler's environment names (see the module doc), or undefined when it names
 * none.
 *
 * @param env The environment, e.g. `Deno.env.toObject()`.
 * @returns The shard, or undefined.
 * @throws {UserError} For values that are not integers, an index outside the count, or a
 *   Kubernetes index without `DIFFUSE_SHARD_COUNT`.
 * @example
 * ```ts
 * import { shardFromEnv } from "./shards.ts";
 * const s = shardFromEnv({ SLURM_ARRAY_TASK_ID: "5", SLURM_ARRAY_TASK_MIN: "4", SLURM_ARRAY_TASK_COUNT: "4" });
 * console.assert(s?.index === 1 && s.count === 4);
 * ```
 */
export function shardFromEnv(env: Record<string, string | undefined>): Shard | undefined {
  const int = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    if (!/^\d+$/.test(v.trim())) {
      throw new UserError(
        `${name}="${v}" is not a non-negative integer; fix the job's environment`,
      );
    }
    return Number(v);
  };
  const k8s = int("JOB_COMPLETION_INDEX");
  if (k8s !== undefined) {
    const count = int("DIFFUSE_SHARD_COUNT");
    if (count === undefined) {
      throw new UserError(
        `JOB_COMPLETION_INDEX=${k8s} is set but DIFFUSE_SHARD_COUNT is not; set it to the ` +
          `Job's spec.completions (see examples/k8s/), or pass --shard ${k8s}/<n>`,
      );
    }
    return checkShard(k8s, count, `JOB_COMPLETION_INDEX=${k8s} of DIFFUSE_SHARD_COUNT=${count}`);
  }
  const id = int("SLURM_ARRAY_TASK_ID");
  if (id === undefined) return undefined;
  const count = int("SLURM_ARRAY_TASK_COUNT");
  if (count === undefined) {
    throw new UserError(
      `SLURM_ARRAY_TASK_ID=${id} is set but SLURM_ARRAY_TASK_COUNT is not; run under ` +
        `sbatch --array, or pass --shard <i>/<n>`,
    );
  }
  const min = int("SLURM_ARRAY_TASK_MIN") ?? 0, step = int("SLURM_ARRAY_TASK_STEP") ?? 1;
  const where = `SLURM_ARRAY_TASK_ID=${id} (min ${min}, step ${step}, count ${count})`;
  if (step < 1 || id < min || (id - min) % step !== 0) {
    throw new UserError(`${where} is not on the array's grid; use --array=<min>-<max>[:step]`);
  }
  return checkShard((id - min) / step, count, where);
}

/**
 * The shard to run: `--shard` when given, else the scheduler's environment, else undefined (one
 * process does everything).
 *
 * @param flag The `--shard` text, if any.
 * @param env The environment.
 * @returns The shard, or undefined.
 * @throws {UserError} As {@linkcode parseShard} and {@linkcode shardFromEnv}.
 * @example
 * ```ts
 * import { resolveShard } from "./shards.ts";
 * console.assert(resolveShard("1/2", { JOB_COMPLETION_INDEX: "0" })?.index === 1);
 * console.assert(resolveShard(undefined, {}) === undefined);
 * ```
 */
export function resolveShard(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): Shard | undefined {
  return flag !== undefined ? parseShard(flag) : shardFromEnv(env);
}

/**
 * The positions (indices into the full seed list) of one shard's seeds, in increasing order.
 *
 * @param length Length of the full seed list.
 * @param shard The shard.
 * @param mode See the module doc. @default "contiguous"
 * @returns Indices into the list; empty when there are more shards than seeds.
 * @example
 * ```ts
 * import { shardPositions } from "./shards.ts";
 * console.assert(shardPositions(10, { index: 0, count: 4 }).join() === "0,1,2");
 * console.assert(shardPositions(10, { index: 1, count: 4 }, "strided").join() === "1,5,9");
 * ```
 */
export function shardPositions(
  length: number,
  shard: Shard,
  mode: ShardMode = "contiguous",
): number[] {
  const { index: i, count: n } = shard;
  if (mode === "strided") {
    const out: number[] = [];
    for (let p = i; p < length; p += n) out.push(p);
    return out;
  }
  if (mode !== "contiguous") {
    throw new RangeError(`shard mode must be contiguous or strided, got ${JSON.stringify(mode)}`);
  }
  const base = Math.floor(length / n), extra = length % n;
  const start = i * base + Math.min(i, extra);
  const size = base + (i < extra ? 1 : 0);
  return Array.from({ length: size }, (_, k) => start + k);
}

/**
 * A file name for shard i of n that sorts in index order: `shard-00001-of-00004`.
 *
 * @param shard The shard.
 * @returns The name, without extension.
 * @example
 * ```ts
 * import { shardName } from "./shards.ts";
 * console.assert(shardName({ index: 1, count: 4 }) === "shard-00001-of-00004");
 * ```
 */
export function shardName(shard: Shard): string {
  const pad = (x: number) => String(x).padStart(5, "0");
  return `shard-${pad(shard.index)}-of-${pad(shard.count)}`;
}

/** The schedulers whose environment {@linkcode shardFromEnv} reads. */
export type Scheduler = "k8s" | "slurm";

/** The environment variables {@linkcode shardFromEnv} reads; {@linkcode schedulerEnv} sets them. */
export const SHARD_ENV_VARS: readonly string[] = [
  "JOB_COMPLETION_INDEX",
  "DIFFUSE_SHARD_COUNT",
  "SLURM_ARRAY_JOB_ID",
  "SLURM_ARRAY_TASK_ID",
  "SLURM_ARRAY_TASK_MIN",
  "SLURM_ARRAY_TASK_MAX",
  "SLURM_ARRAY_TASK_STEP",
  "SLURM_ARRAY_TASK_COUNT",
];

/**
 * The variables a scheduler sets for one shard: a Kubernetes Indexed Job's
 * `JOB_COMPLETION_INDEX` (with `DIFFUSE_SHARD_COUNT`, which examples/k8s/ sets from
 * `spec.completions`), or a Slurm array task's `SLURM_ARRAY_*` for `--array=min-(min+n-1)`.
 *
 * @param shard The shard.
 * @param scheduler Which scheduler to imitate.
 * @param options `slurmMin`: the array's first task id (default 0); `jobId`: SLURM_ARRAY_JOB_ID
 *   (default "0").
 * @returns The variables, to add to a process's environment.
 * @example
 * ```ts
 * import { schedulerEnv, shardFromEnv } from "./shards.ts";
 * const env = schedulerEnv({ index: 2, count: 4 }, "slurm", { slurmMin: 1 });
 * console.assert(env.SLURM_ARRAY_TASK_ID === "3" && shardFromEnv(env)?.index === 2);
 * ```
 */
export function schedulerEnv(
  shard: Shard,
  scheduler: Scheduler,
  options: { slurmMin?: number; jobId?: string } = {},
): Record<string, string> {
  const { slurmMin = 0, jobId = "0" } = options;
  if (scheduler === "k8s") {
    return { JOB_COMPLETION_INDEX: String(shard.index), DIFFUSE_SHARD_COUNT: String(shard.count) };
  }
  if (scheduler !== "slurm") {
    throw new RangeError(`scheduler must be k8s or slurm, got ${JSON.stringify(scheduler)}`);
  }
  return {
    SLURM_ARRAY_JOB_ID: jobId,
    SLURM_ARRAY_TASK_ID: String(slurmMin + shard.index),
    SLURM_ARRAY_TASK_MIN: String(slurmMin),
    SLURM_ARRAY_TASK_MAX: String(slurmMin + shard.count - 1),
    SLURM_ARRAY_TASK_STEP: "1",
    SLURM_ARRAY_TASK_COUNT: String(shard.count),
  };
}

/**
 * The keys on which two configurations differ (by JSON value), sorted.
 *
 * @param a One configuration.
 * @param b The other.
 * @returns The differing keys; empty when they agree.
 * @example
 * ```ts
 * import { configDifferences } from "./shards.ts";
 * console.assert(configDifferences({ steps: 2, x: 1 }, { steps: 4, x: 1 }).join() === "steps");
 * ```
 */
export function configDifferences(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/**
 * One line saying how two configurations differ: `steps 2 vs 4, sampler "heun" vs "euler"`.
 *
 * @param a One configuration.
 * @param b The other.
 * @returns The description.
 * @example
 * ```ts
 * import { describeDifferences } from "./shards.ts";
 * console.assert(describeDifferences({ steps: 2 }, { steps: 4 }) === "steps 2 vs 4");
 * ```
 */
export function describeDifferences(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): string {
  const show = (v: unknown) => v === undefined ? "(unset)" : JSON.stringify(v);
  return configDifferences(a, b).map((k) => `${k} ${show(a[k])} vs ${show(b[k])}`).join(", ");
}

function checkShard(index: number, count: number, what: string): Shard {
  if (count < 1 || count > MAX_SHARDS) {
    throw new UserError(`${what}: the shard count must be from 1 to ${MAX_SHARDS}, got ${count}`);
  }
  if (index >= count) {
    throw new UserError(
      `${what}: shard index ${index} is not below the count ${count} (indices run 0 to ${
        count - 1
      })`,
    );
  }
  return { index, count };
}
