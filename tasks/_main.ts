/**
 * The shared entry point of every task: runs `main`, and turns errors into one line on stderr
 * with an exit code (2 for a {@linkcode UserError}: bad flags, paths, files; 1 for anything else),
 * never a stack trace from deep inside tfjs unless `DIFFUSE_DEBUG=1`.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";

/**
 * Runs a task's `main(args)` and exits with the right code.
 *
 * @example
 * ```ts ignore
 * import { runTask } from "./_main.ts";
 * await runTask(async (args) => console.log(args));
 * ```
 */
export async function runTask(main: (args: string[]) => Promise<void>): Promise<void> {
  try {
    await main(Deno.args);
  } catch (e) {
    const debug = readDebug();
    if (e instanceof UserError) {
      console.error(`error: ${e.message}`);
      if (debug) console.error(e.stack);
      Deno.exit(2);
    }
    const err = e as Error;
    if (isOutOfMemory(err)) {
      console.error(
        `error: out of memory (${
          err.message.split("\n")[0]
        }); lower --batch, or use a smaller model`,
      );
      if (debug) console.error(err?.stack);
      Deno.exit(2);
    }
    console.error(`error: ${err?.message?.split("\n")[0] ?? String(e)}`);
    if (debug) console.error(err?.stack);
    else console.error("(internal error; set DIFFUSE_DEBUG=1 for the stack trace and report it)");
    Deno.exit(1);
  }
}

function readDebug(): boolean {
  try {
    return Deno.env.get("DIFFUSE_DEBUG") === "1";
  } catch {
    return false;
  }
}

// What running out of memory looks like from tfjs and its wasm backend.
function isOutOfMemory(e: Error): boolean {
  const m = String(e?.message ?? "");
  return e instanceof RangeError &&
      /allocation failed|Invalid array length|Invalid typed array length/i.test(m) ||
    /^Aborted\(|out of memory|Cannot enlarge memory|memory access out of bounds/i.test(m);
}
