/**
 * Running a task as a user does (a subprocess with the tasks' permissions, wasm backend, no
 * colour) and checking its one-line user errors. Shared by the task tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";

/** The repository root, the subprocesses' working folder. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** The permissions the tasks run with (`deno task` grants the same). */
export const PERMS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
];

/** What a finished subprocess gives back. */
export interface TaskRun {
  /** Exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** The `deno run` command for `file` (relative to the root); `env` is added to the defaults. */
function command(file: string, args: string[], env: Record<string, string>): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, file), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DIFFUSE_BACKEND: "wasm", ...env },
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs the script `file` (a path relative to the repository root, e.g. "recipes/x.ts") with
 * `args`; `env` is added to NO_COLOR=1 and DIFFUSE_BACKEND=wasm (and may override them).
 */
export async function runScript(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<TaskRun> {
  const out = await command(file, args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `tasks/<name>.ts` with `args`; returns its exit code and output. */
export function runTaskFile(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<TaskRun> {
  return runScript(join("tasks", `${name}.ts`), args, env);
}

/** Starts `tasks/<name>.ts` with `args` without waiting (for tests that signal it). */
export function spawnTaskFile(
  name: string,
  args: string[],
  env: Record<string, string> = {},
): Deno.ChildProcess {
  return command(join("tasks", `${name}.ts`), args, env).spawn();
}

/** Asserts exit code 2 and a single `error:` line matching `pattern`, with no stack trace. */
export function assertUserError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}
