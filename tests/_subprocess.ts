/**
 * Running a task as a user does, by subprocess, and checking its one-line errors (exit 2).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** The permissions `deno task` gives the tasks (and the driver's `--allow-run`). */
export const PERMS: string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-run",
];

/**
 * Runs `tasks/<name>.ts` with `args` and only `env` in its environment (plus Deno's own).
 *
 * @param name The file name without `.ts`, e.g. "sample_edm".
 * @param args The flags.
 * @param env The environment.
 * @returns Exit code and the decoded output.
 */
export async function runTaskFile(
  name: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "tasks", `${name}.ts`), ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Asserts exit code 2 and a single `error:` line matching `pattern`, with no stack trace.
 *
 * @param r What {@linkcode runTaskFile} returned.
 * @param pattern What the error line says.
 */
export function assertUserError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}
