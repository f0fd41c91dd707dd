/**
 * Crash-safe file writes (DESIGN.md "Checkpoints and files"): the bytes go to a temporary file in
 * the target's folder, are flushed to disk with fsync, and the temporary file is then renamed over
 * the target. A rename within one file system is atomic, so a reader (or a crash) sees either the
 * old file or the complete new one, never a partial file. On any failure the temporary file is
 * removed and the old target is left untouched.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { UserError } from "./errors.ts";

/** What {@linkcode writeFileAtomic} can write: bytes, text (UTF-8), or a stream of byte chunks. */
export type AtomicWriteData =
  | Uint8Array
  | string
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

/** Options of {@linkcode writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of a newly created file (the process umask applies). @default 0o666 */
  mode?: number;
  /** Also fsync the folder after the rename, so the rename itself survives a power cut. @default true */
  syncDir?: boolean;
}

let counter = 0;

/**
 * Writes `data` to `path` atomically: temp file in the same folder, fsync, rename.
 *
 * Chunks from an (async) iterable are written as they come, so large files need not be held in
 * memory at once; if the iterable throws, the write is abandoned and the error rethrown.
 *
 * @param path The target file; its folder must exist.
 * @param data Bytes, a string (written as UTF-8), or an iterable of byte chunks.
 * @param options See {@linkcode AtomicWriteOptions}.
 * @throws Whatever the file system or `data` throws; the target keeps its old content and no
 *   temporary file remains.
 * @example Replace a file safely
 * ```ts
 * import { writeFileAtomic } from "./atomic_write.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/state.json`, JSON.stringify({ step: 1 }));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: AtomicWriteData,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { mode = 0o666, syncDir = true } = options;
  if (typeof path !== "string" || path === "") {
    throw new TypeError(`writeFileAtomic needs a file path, got ${JSON.stringify(path)}`);
  }
  const dir = dirname(path);
  let created;
  try {
    created = await createTemp(dir, basename(path), mode);
  } catch (e) {
    throw describeWriteError(e, path);
  }
  const { file, tempPath } = created;
  let open = true;
  try {
    for await (const chunk of chunksOf(data)) await writeAll(file, chunk);
    await file.sync();
    file.close();
    open = false;
    await Deno.rename(tempPath, path);
  } catch (e) {
    if (open) {
      try {
        file.close();
      } catch { /* already closed: nothing to release */ }
    }
    await Deno.remove(tempPath).catch(() => {});
    throw describeWriteError(e, path);
  }
  if (syncDir) await syncFolder(dir);
}

/**
 * The error to report for a failed write of `path`: disk full, quota, read-only file system and
 * permission errors become a {@linkcode UserError} naming the file, the cause and the fix (the
 * previous file, if any, is untouched: writes are atomic); anything else is returned unchanged.
 *
 * @param e What the file system threw.
 * @param path The file being written.
 * @returns A UserError for an environment problem, else `e`.
 * @example
 * ```ts
 * import { describeWriteError } from "./atomic_write.ts";
 * const e = Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
 * console.assert(describeWriteError(e, "runs/x/checkpoint.safetensors") instanceof Error);
 * ```
 */
export function describeWriteError(e: unknown, path: string): unknown {
  if (e instanceof UserError) return e;
  const code = (e as { code?: string })?.code;
  const why = code === "ENOSPC"
    ? "the disk is full (ENOSPC); free some space"
    : code === "EDQUOT"
    ? "the disk quota is exceeded (EDQUOT); free some space"
    : code === "EROFS"
    ? "the file system is read-only (EROFS); choose a writable folder"
    : e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM"
    ? "permission denied; choose a folder you can write to or fix its permissions"
    : e instanceof Deno.errors.IsADirectory || code === "EISDIR"
    ? "it is a folder; give a file path"
    : undefined;
  if (why === undefined) return e;
  return new UserError(`cannot write ${path}: ${why} (any previous version is kept)`, { cause: e });
}

/**
 * Removes the temporary files that an interrupted {@linkcode writeFileAtomic} of `path` left in
 * its folder (`.<name>.<pid>.<n>.<hex>.tmp`, e.g. after kill -9). Call it only when no other
 * process writes `path` (a run holds its folder's lock).
 *
 * @param path The target file whose leftovers to remove.
 * @returns The temporary files removed.
 * @example
 * ```ts ignore
 * const removed = await removeLeftoverTemps("runs/x/checkpoint.safetensors");
 * ```
 */
export async function removeLeftoverTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.startsWith(prefix) && entry.name.endsWith(".tmp")) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
        removed.push(join(dir, entry.name));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/**
 * Removes every temporary file an interrupted {@linkcode writeFileAtomic} left in `dir`
 * (`.<name>.<pid>.<n>.<hex>.tmp`, whatever the target), e.g. a run folder's checkpoint, its
 * history index and numbered copies after kill -9. Call it only when no other process writes
 * into `dir` (a run holds its folder's lock).
 *
 * @param dir The folder to clean.
 * @returns The temporary files removed.
 * @example
 * ```ts ignore
 * const removed = await removeLeftoverTempsIn("runs/x");
 * ```
 */
export async function removeLeftoverTempsIn(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && TEMP_NAME.test(entry.name)) {
        await Deno.remove(join(dir, entry.name)).catch(() => {});
        removed.push(join(dir, entry.name));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

// The names createTemp gives: a dot, the target's name, then pid, counter and hex tag.
const TEMP_NAME = /^\..+\.\d+\.\d+\.[0-9a-f]+\.tmp$/;

async function createTemp(
  dir: string,
  base: string,
  mode: number,
): Promise<{ file: Deno.FsFile; tempPath: string }> {
  // A dot-prefixed name in the same folder keeps the rename on one file system; createNew makes
  // a name clash (another writer) an error we retry rather than a shared file.
  for (let attempt = 0;; attempt++) {
    const tag = `${Deno.pid}.${counter++}.${randomHex()}`;
    const tempPath = join(dir, `.${base}.${tag}.tmp`);
    try {
      const file = await Deno.open(tempPath, { write: true, createNew: true, mode });
      return { file, tempPath };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt >= 10) throw e;
    }
  }
}

async function* chunksOf(data: AtomicWriteData): AsyncGenerator<Uint8Array> {
  if (typeof data === "string") yield new TextEncoder().encode(data);
  else if (data instanceof Uint8Array) yield data;
  else {
    for await (const chunk of data as AsyncIterable<Uint8Array>) {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`writeFileAtomic chunks must be Uint8Array, got ${typeof chunk}`);
      }
      yield chunk;
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  // FsFile.write may write fewer bytes than asked.
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

async function syncFolder(dir: string): Promise<void> {
  // Not every platform can open or fsync a folder (Windows); the rename has happened either way.
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch { /* best effort */ }
}

function randomHex(): string {
  // Only for a unique file name, not for any numerics.
  const b = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
