/**
 * Paths as the user typed them: relative to the folder the command was started from. `deno task`
 * runs a task in the folder of `deno.json` and passes the caller's folder in `INIT_CWD`, so a
 * relative `--checkpoint` or `--out` typed in `runs/` must be resolved against `INIT_CWD`, not
 * against the process's working directory. Defaults written in the toolkit (`runs/edm-mnist/...`)
 * stay relative to the repository, where the tasks run.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";

/**
 * The caller's folder: `INIT_CWD` when set (by `deno task`, npm and friends), else the working
 * directory.
 *
 * @returns An absolute path.
 * @example
 * ```ts
 * import { callerFolder } from "./paths.ts";
 * console.assert(callerFolder().startsWith("/") || /^[A-Z]:/i.test(callerFolder()));
 * ```
 */
export function callerFolder(): string {
  let init: string | undefined;
  try {
    init = Deno.env.get("INIT_CWD");
  } catch {
    init = undefined; // no --allow-env: the working directory is all we know
  }
  return init && init.length > 0 ? init : Deno.cwd();
}

/**
 * Resolves a path typed by the user against {@linkcode callerFolder}; absolute paths and the
 * empty string (left for the caller to reject) are returned unchanged.
 *
 * @param path As typed.
 * @returns An absolute path, or "".
 * @example
 * ```ts
 * import { callerPath } from "./paths.ts";
 * console.assert(callerPath("/tmp/a.png") === "/tmp/a.png");
 * ```
 */
export function callerPath(path: string): string {
  if (path === "" || isAbsolute(path)) return path;
  return resolve(callerFolder(), path);
}

/**
 * Resolves the path inside a dataset name (`png:<folder>`, `cifar10:<path>`) with
 * {@linkcode callerPath}; other names (`mnist`, `toy:moons`) are returned unchanged.
 *
 * @param spec A dataset name as typed.
 * @returns The name with an absolute path.
 * @example
 * ```ts
 * import { callerDataSpec } from "./paths.ts";
 * console.assert(callerDataSpec("mnist:test") === "mnist:test");
 * console.assert(callerDataSpec("png:/data/x") === "png:/data/x");
 * ```
 */
export function callerDataSpec(spec: string): string {
  const m = spec.match(/^(png|cifar10):(.+)$/);
  return m ? `${m[1]}:${callerPath(m[2])}` : spec;
}
