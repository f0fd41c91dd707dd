/**
 * The check behind `requireBackend` (re-exported by core/engine.ts), in a module that imports
 * only tfjs-core, so that library modules can call it without loading every backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Throws our message, not tfjs's, when no backend has been started yet: library entry points
 * (sampling, training, evaluation, checkpoint loading) call it first, so forgetting
 * {@linkcode selectBackend} says what to do.
 *
 * @param what The function the user called, named in the message.
 * @throws {Error} When no tfjs backend is active.
 * @example
 * ```ts
 * import { requireBackend, selectBackend } from "./engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * requireBackend("generateSamples"); // passes
 * ```
 */
export function requireBackend(what: string): void {
  if (tf.engine().backendName) return;
  try {
    // A synchronous backend (cpu) starts on first use; an async one (wasm) throws here.
    if (tf.getBackend()) return;
  } catch {
    // not started: our message below
  }
  throw new Error(
    `${what} needs a tfjs backend: call \`await selectBackend()\` (from @diffuse/diffuse, ` +
      `core/engine.ts) once before using the library`,
  );
}
