/**
 * One writer per run directory: `<runDir>/run.lock` holds an exclusive OS file lock
 * (`FsFile.tryLock`, flock on Linux and macOS, LockFileEx on Windows) for as long as a run trains,
 * and says who holds it (JSON: pid, host, start time). Of two runs started on one `--out` exactly
 * one gets the lock; the other stops with a message naming the owner. The operating system drops
 * the lock when its process dies, even by kill -9, so a lock file left behind is *stale*: the next
 * run takes it over with a note. This needs no permission beyond reading and writing the folder
 * (no pid lookups, which Deno allows only with --allow-all). Not tied to a paper.
 *
 * The lock is per process: a second training call in the same process (tests, recipes that train
 * twice in a row) takes it again. Locks still held when the process exits normally (an error
 * before the training loop started, `Deno.exit`) are removed by one `unload` listener; the open
 * lock files are the only process-wide state here.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../core/errors.ts";
import { describeWriteError } from "../core/atomic_write.ts";

/** File name of the lock inside a run directory. */
export const RUN_LOCK_FILE = "run.lock";

/** What a lock file holds. */
export interface RunLockOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name of the owner ("unknown-host" without the permission to read it). */
  host: string;
  /** ISO time the owner took the lock. */
  since: string;
}

// Lock files this process holds, with their open (locked) handles.
const held = new Map<string, Deno.FsFile>();
let listening = false;

/**
 * Takes `runDir`'s lock (creating the folder), or throws when another process holds it.
 *
 * @param runDir The run directory.
 * @param log Where the note about a taken-over stale lock goes.
 * @returns The lock file's path; {@linkcode releaseRunLock} removes it when the run ends.
 * @throws {UserError} When another live process holds the lock, or the folder cannot be made.
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
  await makeRunDir(runDir);
  const path = join(runDir, RUN_LOCK_FILE);
  const me: RunLockOwner = { pid: Deno.pid, host: hostName(), since: new Date().toISOString() };
  const mine = held.get(path);
  if (mine) {
    await writeOwner(mine, me);
    return path;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true, create: true });
    } catch (e) {
      throw describeWriteError(e, path);
    }
    if (!(await file.tryLock(true))) {
      const owner = await readOwner(file);
      file.close();
      const who = owner ? `pid ${owner.pid} on ${owner.host}, since ${owner.since}` : "starting";
      throw new UserError(
        `${runDir} is in use by another run (${who}): wait for it to finish or choose ` +
          `another --out`,
      );
    }
    // The previous holder may have removed the file between our open and our lock: then we hold
    // a lock on a deleted file, and must try again on the path's current file.
    const [ours, now] = await Promise.all([file.stat(), Deno.stat(path).catch(() => null)]);
    if (now === null || (ours.ino !== null && ours.ino !== now.ino)) {
      file.close();
      continue;
    }
    const previous = await readOwner(file);
    if (previous && previous.pid !== Deno.pid) {
      log(
        `note: taking over the stale lock ${path} of pid ${previous.pid} on ${previous.host} ` +
          `(no longer running)`,
      );
    }
    await writeOwner(file, me);
    held.set(path, file);
    releaseOnExit();
    return path;
  }
  throw new UserError(`could not take the lock ${path}: other runs keep replacing it; retry`);
}

/**
 * Removes `runDir`'s lock file and drops the lock when this process holds it (a lock of another
 * process is left alone).
 *
 * @param runDir The run directory.
 * @example
 * ```ts ignore
 * await releaseRunLock("runs/x");
 * ```
 */
export async function releaseRunLock(runDir: string): Promise<void> {
  const path = join(runDir, RUN_LOCK_FILE);
  const file = held.get(path);
  if (!file) return;
  held.delete(path);
  // Remove first, then unlock: a run waiting on this file retries on the path's new file.
  await Deno.remove(path).catch(() => {});
  try {
    file.close();
  } catch { /* already closed */ }
}

async function makeRunDir(runDir: string): Promise<void> {
  try {
    await Deno.mkdir(runDir, { recursive: true });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = e instanceof Deno.errors.AlreadyExists || code === "ENOTDIR"
      ? "it, or a folder above it, is a file"
      : e instanceof Deno.errors.PermissionDenied || code === "EACCES"
      ? "permission denied"
      : (e as Error).message;
    throw new UserError(`cannot create the run directory ${runDir} (${why}): choose another --out`);
  }
}

function releaseOnExit(): void {
  if (listening) return;
  listening = true;
  globalThis.addEventListener("unload", () => {
    for (const [path, file] of held) {
      try {
        Deno.removeSync(path);
        file.close();
      } catch { /* gone already */ }
    }
    held.clear();
  });
}

async function writeOwner(file: Deno.FsFile, owner: RunLockOwner): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(owner) + "\n");
  await file.truncate(0);
  await file.seek(0, Deno.SeekMode.Start);
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function readOwner(file: Deno.FsFile): Promise<RunLockOwner | null> {
  try {
    await file.seek(0, Deno.SeekMode.Start);
    // An owner line is under 200 bytes; read at most 4 KiB of whatever the file holds.
    const buf = new Uint8Array(4096);
    let n = 0;
    while (n < buf.length) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    const owner = JSON.parse(new TextDecoder().decode(buf.subarray(0, n)));
    return Number.isInteger(owner?.pid) && typeof owner?.host === "string" ? owner : null;
  } catch {
    return null;
  }
}

function hostName(): string {
  // Only with permissions already granted, so that no permission prompt ever appears: the host
  // is for the message only (liveness comes from the OS lock).
  const granted = (d: Deno.PermissionDescriptor) => {
    try {
      return Deno.permissions.querySync(d).state === "granted";
    } catch {
      return false;
    }
  };
  if (granted({ name: "sys", kind: "hostname" })) return Deno.hostname();
  if (granted({ name: "env", variable: "HOSTNAME" })) {
    return Deno.env.get("HOSTNAME") ?? "unknown-host";
  }
  return "unknown-host";
}
