/**
 * One writer per run directory: a lock file (`<runDir>/run.lock`, JSON with the owner's pid,
 * host and start time) created with `createNew`, so of two runs started on one `--out` exactly
 * one gets it and the other stops with a message naming the owner. A lock whose process is gone
 * (same host, pid no longer alive, e.g. after kill -9) is taken over with a note. Not tied to a
 * paper.
 *
 * The lock is per process: a second training call in the same process (tests, recipes that train
 * twice in a row) may take it again. Locks still held when the process exits normally (an error
 * before the training loop started, `Deno.exit`) are removed by one `unload` listener, the only
 * process-wide state here; after kill -9 the next run finds the pid dead and takes the lock over.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../core/errors.ts";
import { describeWriteError } from "../core/atomic_write.ts";

// Lock files this process holds, removed on exit by the unload listener.
const held = new Set<string>();
let listening = false;

function holdUntilExit(path: string): void {
  held.add(path);
  if (listening) return;
  listening = true;
  globalThis.addEventListener("unload", () => {
    for (const p of held) {
      try {
        const owner = JSON.parse(Deno.readTextFileSync(p));
        if (owner?.pid === Deno.pid) Deno.removeSync(p);
      } catch { /* gone already */ }
    }
  });
}

/** File name of the lock inside a run directory. */
export const RUN_LOCK_FILE = "run.lock";

/** What a lock file holds. */
export interface RunLockOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name of the owner. */
  host: string;
  /** ISO time the owner took the lock. */
  since: string;
}

/**
 * Takes `runDir`'s lock (creating the folder), or throws when another live process holds it.
 *
 * @param runDir The run directory.
 * @param log Where the note about a taken-over stale lock goes.
 * @returns The lock file's path; {@linkcode releaseRunLock} removes it when the run ends.
 * @throws {UserError} When a live process (or a process on another host) holds the lock.
 * @example
 * ```ts ignore
 * await acquireRunLock("runs/x", console.error);
 * try { ... } finally { await releaseRunLock("runs/x"); }
 * ```
 */
export async function acquireRunLock(
  runDir: string,
  log: (message: string) => void,
): Promise<string> {
  try {
    await Deno.mkdir(runDir, { recursive: true });
  } catch (e) {
    const why =
      e instanceof Deno.errors.AlreadyExists || (e as { code?: string }).code === "ENOTDIR"
        ? "it, or a folder above it, is a file"
        : e instanceof Deno.errors.PermissionDenied || (e as { code?: string }).code === "EACCES"
        ? "permission denied"
        : (e as Error).message;
    throw new UserError(`cannot create the run directory ${runDir} (${why}): choose another --out`);
  }
  const path = join(runDir, RUN_LOCK_FILE);
  const me: RunLockOwner = { pid: Deno.pid, host: hostName(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await Deno.writeTextFile(path, JSON.stringify(me) + "\n", { createNew: true });
      holdUntilExit(path);
      return path;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw describeWriteError(e, path);
    }
    const owner = await readOwner(path);
    if (owner && owner.host === me.host && owner.pid === me.pid) {
      await Deno.writeTextFile(path, JSON.stringify(me) + "\n");
      holdUntilExit(path);
      return path;
    }
    if (!owner && await youngerThan(path, 10_000)) {
      throw new UserError(
        `${runDir} is in use by another run that is just starting (${path} is being written): ` +
          `wait for it to finish or choose another --out`,
      );
    }
    if (owner && (owner.host !== me.host || processAlive(owner.pid))) {
      throw new UserError(
        `${runDir} is in use by another run (pid ${owner.pid} on ${owner.host}, since ` +
          `${owner.since}): wait for it to finish or choose another --out; if that process is ` +
          `gone, delete ${path}`,
      );
    }
    // Stale (dead pid) or unreadable (a crash while writing it): take it over.
    log(
      owner
        ? `note: taking over the stale lock ${path} of pid ${owner.pid} (no longer running)`
        : `note: replacing the unreadable lock file ${path}`,
    );
    await Deno.remove(path).catch(() => {});
  }
  throw new UserError(`could not take the lock ${path}: another run keeps taking it; retry`);
}

/**
 * Removes `runDir`'s lock file when this process holds it (a lock of another process is left).
 *
 * @param runDir The run directory.
 * @example
 * ```ts ignore
 * await releaseRunLock("runs/x");
 * ```
 */
export async function releaseRunLock(runDir: string): Promise<void> {
  const path = join(runDir, RUN_LOCK_FILE);
  const owner = await readOwner(path);
  if (owner && owner.pid === Deno.pid && owner.host === hostName()) {
    await Deno.remove(path).catch(() => {});
  }
  held.delete(path);
}

async function youngerThan(path: string, ms: number): Promise<boolean> {
  try {
    const { mtime } = await Deno.stat(path);
    return mtime !== null && Date.now() - mtime.getTime() < ms;
  } catch {
    return false;
  }
}

async function readOwner(path: string): Promise<RunLockOwner | null> {
  try {
    const owner = JSON.parse(await Deno.readTextFile(path));
    return Number.isInteger(owner?.pid) && typeof owner?.host === "string" ? owner : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists on this host (Linux: /proc; elsewhere: assume yes). */
function processAlive(pid: number): boolean {
  if (Deno.build.os !== "linux") return true;
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function hostName(): string {
  // Deno.hostname() needs --allow-sys; the tasks run without it, so read the kernel's name first.
  try {
    return Deno.readTextFileSync("/proc/sys/kernel/hostname").trim();
  } catch { /* not Linux, or no read permission */ }
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}
