/**
 * Checks of the paths users give tasks (DESIGN.md "Checkpoints and files"): a path must be
 * non-empty and fit the file system's limits (4096 bytes in all, 255 bytes a component, as
 * Linux's PATH_MAX and NAME_MAX), and an output may never be, or overwrite, one of the task's
 * input files (a checkpoint, a dataset image, a statistics file). Not tied to a paper.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { UserError } from "./errors.ts";

/** Longest path accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest path component accepted, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255;

/**
 * The problem with a path's text (empty, too long, a component too long), or undefined when it
 * is fine. Nothing on disk is looked at.
 *
 * @param path The path as the user typed it.
 * @returns One phrase naming the problem and the limit, or undefined.
 * @example
 * ```ts
 * import { pathTextProblem } from "./path_checks.ts";
 * console.assert(pathTextProblem("") === "is empty; give a file or folder path");
 * console.assert(pathTextProblem("runs/x/samples.png") === undefined);
 * ```
 */
export function pathTextProblem(path: string): string | undefined {
  if (path.trim() === "") return "is empty; give a file or folder path";
  const bytes = new TextEncoder().encode(path).length;
  if (bytes > MAX_PATH_BYTES) {
    return `is ${bytes} bytes long, above the ${MAX_PATH_BYTES}-byte path limit; use a shorter path`;
  }
  const long = path.split(/[\\/]/).find((c) => new TextEncoder().encode(c).length > MAX_NAME_BYTES);
  if (long !== undefined) {
    return `has a name of ${new TextEncoder().encode(long).length} bytes ("${
      long.slice(0, 16)
    }..."), above the ${MAX_NAME_BYTES}-byte limit of one file name; use a shorter name`;
  }
  if (path.includes("\0")) return "contains a NUL byte; remove it";
  return undefined;
}

/** Options of {@linkcode checkOutputPath}. */
export interface CheckOutputPathOptions {
  /** Input files of the task (checkpoints, images, statistics); missing ones are skipped. @default [] */
  inputs?: readonly string[];
  /** The flag that gave the output, named in messages. @default "--out" */
  flag?: string;
  /** Task name prefixed to messages, e.g. "sample:edm". @default undefined */
  task?: string;
}

/**
 * Checks an output path before a task spends time computing what goes there: its text
 * ({@linkcode pathTextProblem}), that it is not an existing folder, and that it is not one of the
 * task's input files (same path, or the same file through a link).
 *
 * @param out The output file path.
 * @param options Inputs to protect and the flag name.
 * @throws {UserError} Naming the flag, the path and the fix.
 * @example
 * ```ts ignore
 * await checkOutputPath(f.out!, { inputs: [f.checkpoint!], task: "sample:edm" });
 * ```
 */
export async function checkOutputPath(
  out: string,
  options: CheckOutputPathOptions = {},
): Promise<void> {
  const { inputs = [], flag = "--out", task } = options;
  const fail = (why: string): never => {
    throw new UserError(`${task ? `${task}: ` : ""}${flag} ${JSON.stringify(out)} ${why}`);
  };
  const problem = pathTextProblem(out);
  if (problem) fail(problem);
  const target = await statOrNull(out);
  if (target?.isDirectory) fail("is a folder; give a file path inside it, e.g. samples.png");
  const blocker = await fileAbove(out);
  if (blocker) fail(`is under ${blocker}, which is a file, not a folder: choose another path`);
  for (const input of inputs) {
    const same = resolve(input) === resolve(out) ||
      (target !== null && sameFile(target, await statOrNull(input)));
    if (same) {
      fail(
        `is also an input of this task (${input}); writing it would destroy it: choose another path`,
      );
    }
  }
}

/** The nearest existing ancestor of `path` when it is a file (nothing can be created under it). */
async function fileAbove(path: string): Promise<string | undefined> {
  let dir = dirname(resolve(path));
  for (;;) {
    const info = await statOrNull(dir);
    if (info) return info.isFile ? dir : undefined;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

function sameFile(a: Deno.FileInfo, b: Deno.FileInfo | null): boolean {
  return b !== null && a.ino !== null && a.ino === b.ino && a.dev === b.dev;
}
