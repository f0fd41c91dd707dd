/**
 * Running a task as a user does (a subprocess with the tasks' permissions, wasm backend, no
 * colour) and checking its one-line user errors. Shared by the task tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

/** Runs `tasks/<name>.ts` with `args`; returns its exit code and output. */
export async function runTaskFile(
  name: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "tasks", `${name}.ts`), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DIFFUSE_BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Asserts exit code 2 and a single `error:` line matching `pattern`, with no stack trace. */
export function assertUserError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}
