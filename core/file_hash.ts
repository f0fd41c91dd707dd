/**
 * Content hashes of input files (a checkpoint, an init image), so that records written on
 * different machines name the same inputs even where their paths differ (core/shards.ts).
 *
 * @module
 */
import { UserError } from "./errors.ts";

/**
 * The SHA-256 of a file's bytes, as lowercase hex.
 *
 * @param path The file.
 * @returns 64 hex digits.
 * @throws {UserError} When the file cannot be read.
 * @example
 * ```ts
 * import { sha256File } from "./file_hash.ts";
 * const path = await Deno.makeTempFile();
 * console.assert((await sha256File(path)).startsWith("e3b0c442"));
 * await Deno.remove(path);
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UserError(`cannot read ${path} to hash it (${(e as Error).message.split(":")[0]})`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
