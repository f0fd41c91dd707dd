/**
 * The checkpoints a run keeps so that divergence loses nothing: after each save of the run's
 * checkpoint (`checkpoint.safetensors`), a hard link `checkpoint-<step>.safetensors` (a copy
 * where links are not possible) keeps that version; the last `keep` of them stay, plus the newest
 * *healthy* one. A checkpoint is healthy once the `confirmSteps` steps after it were all healthy
 * (see `divergence.ts`), so a save made right after an update that already wrecked the weights is
 * never trusted. On divergence, {@linkcode CheckpointHistory.rollback} puts the newest healthy
 * checkpoint back at the run's checkpoint path, so `--resume` picks it. The list lives in
 * `checkpoints.json` beside them. Not tied to a paper.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { sidecarPath } from "../core/checkpoint.ts";

/** One kept checkpoint. */
export interface KeptCheckpoint {
  /** Its step. */
  step: number;
  /** File name in the run directory. */
  file: string;
  /** Whether the steps after it were healthy. */
  healthy: boolean;
}

/** Options of {@linkcode openCheckpointHistory}. */
export interface CheckpointHistoryOptions {
  /** Versions to keep besides the newest healthy one. @default 3 */
  keep?: number;
  /** Healthy steps after a checkpoint that confirm it. @default 4 */
  confirmSteps?: number;
  /** The step a resumed run starts from: its checkpoint, if kept, awaits confirmation. @default undefined */
  resumedAt?: number;
}

/** The kept checkpoints of a run. */
export interface CheckpointHistory {
  /** Records the checkpoint just saved at `step` (links it, prunes old versions). */
  afterSave(step: number): Promise<void>;
  /** Records one step's verdict; confirms checkpoints with enough healthy steps after them. */
  observe(healthy: boolean): Promise<void>;
  /** The newest healthy checkpoint, if any. */
  newestHealthy(): KeptCheckpoint | undefined;
  /**
   * Puts the newest healthy checkpoint back at the run's checkpoint path (newer, unconfirmed
   * versions stay under their own names) and returns it; with none, moves the unconfirmed run
   * checkpoint aside to `checkpoint-unconfirmed.safetensors` and returns undefined.
   */
  rollback(): Promise<KeptCheckpoint | undefined>;
}

const INDEX_FILE = "checkpoints.json";

/**
 * Opens (or starts) the history of the checkpoint at `checkpointPath`.
 *
 * @param checkpointPath The run's checkpoint, e.g. `runs/x/checkpoint.safetensors`.
 * @param options How many to keep and how many healthy steps confirm one.
 * @returns The history.
 * @throws {RangeError} For `keep` or `confirmSteps` that are not positive integers.
 * @example
 * ```ts ignore
 * const history = await openCheckpointHistory("runs/x/checkpoint.safetensors", { keep: 3 });
 * await history.afterSave(120);
 * ```
 */
export async function openCheckpointHistory(
  checkpointPath: string,
  options: CheckpointHistoryOptions = {},
): Promise<CheckpointHistory> {
  const { keep = 3, confirmSteps = 4 } = options;
  if (!Number.isInteger(keep) || keep < 1) {
    throw new RangeError(`keep must be a positive integer, got ${keep}`);
  }
  if (!Number.isInteger(confirmSteps) || confirmSteps < 1) {
    throw new RangeError(`confirmSteps must be a positive integer, got ${confirmSteps}`);
  }
  const dir = dirname(checkpointPath);
  const stem = basename(checkpointPath).replace(/\.safetensors$/, "");
  const indexPath = join(dir, INDEX_FILE);
  let kept: KeptCheckpoint[] = await readIndex(indexPath);
  // Steps since the newest save, while all healthy (-1: a spike since, nothing to confirm).
  let since = kept.length > 0 && kept[kept.length - 1].step === options.resumedAt ? 0 : -1;
  const versionName = (step: number) => `${stem}-${String(step).padStart(8, "0")}.safetensors`;
  const writeIndex = () => writeFileAtomic(indexPath, JSON.stringify({ kept }, null, 2) + "\n");

  return {
    async afterSave(step) {
      const file = versionName(step);
      await linkOrCopy(checkpointPath, join(dir, file));
      await linkOrCopy(sidecarPath(checkpointPath), join(dir, sidecarPath(file))).catch(() => {});
      kept = kept.filter((k) => k.file !== file);
      kept.push({ step, file, healthy: false });
      since = 0;
      await prune();
      await writeIndex();
    },
    async observe(healthy) {
      if (since < 0) return;
      if (!healthy) {
        since = -1;
        return;
      }
      since++;
      const newest = kept[kept.length - 1];
      if (since >= confirmSteps && newest && !newest.healthy) {
        newest.healthy = true;
        since = -1;
        await prune();
        await writeIndex();
      }
    },
    newestHealthy: () => [...kept].reverse().find((k) => k.healthy),
    async rollback() {
      const good = [...kept].reverse().find((k) => k.healthy);
      if (!good) {
        await Deno.rename(checkpointPath, join(dir, `${stem}-unconfirmed.safetensors`))
          .catch(() => {});
        await Deno.remove(sidecarPath(checkpointPath)).catch(() => {});
        return undefined;
      }
      await replaceWith(join(dir, good.file), checkpointPath);
      await replaceWith(join(dir, sidecarPath(good.file)), sidecarPath(checkpointPath))
        .catch(() => {});
      return good;
    },
  };

  async function prune(): Promise<void> {
    const healthy = [...kept].reverse().find((k) => k.healthy);
    const recent = new Set(kept.slice(-keep));
    const drop = kept.filter((k) => !recent.has(k) && k !== healthy);
    for (const k of drop) {
      await Deno.remove(join(dir, k.file)).catch(() => {});
      await Deno.remove(join(dir, sidecarPath(k.file))).catch(() => {});
    }
    kept = kept.filter((k) => !drop.includes(k));
  }
}

async function readIndex(path: string): Promise<KeptCheckpoint[]> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path));
    if (!Array.isArray(parsed?.kept)) return [];
    return parsed.kept.filter((k: KeptCheckpoint) =>
      Number.isInteger(k?.step) && typeof k?.file === "string" && !k.file.includes("/")
    );
  } catch {
    return [];
  }
}

// A hard link shares the bytes; the run's checkpoint is later replaced by rename, so the link
// keeps this version. Where links fail (another file system, Windows shares), copy.
async function linkOrCopy(from: string, to: string): Promise<void> {
  await Deno.remove(to).catch(() => {});
  try {
    await Deno.link(from, to);
  } catch {
    await Deno.copyFile(from, to);
  }
}

// Atomically makes `to` the same file as `from` (link to a temporary name, then rename).
async function replaceWith(from: string, to: string): Promise<void> {
  // Named like writeFileAtomic's temporary files, so a run started later removes a leftover.
  const temp = join(dirname(to), `.${basename(to)}.rollback.tmp`);
  await linkOrCopy(from, temp);
  await Deno.rename(temp, to);
}
