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
  const { file, tempPath } = await createTemp(dir, basename(path), mode);
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
    throw e;
  }
  if (syncDir) await syncFolder(dir);
}

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
