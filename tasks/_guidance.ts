/**
 * The denoiser `eval` and `sample:edm` sample with, and the checks they make before classifier-free guidance (Ho & Salimans 2022):
 * the guided denoiser mixes the conditional output with the unconditional one (the all-zero
 * label), which only a class-conditional model trained with label dropout has learned.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import type { Denoiser } from "../core/types.ts";
import { guidedDenoiser } from "../models/guidance.ts";

/** What {@linkcode checkGuidance} reads from a loaded checkpoint (`LoadedDenoiser`). */
export interface GuidableCheckpoint {
  /** Classes of a class-conditional model; 0 otherwise. */
  numClasses: number;
  /** The run state; `config.condDrop` is the label-dropout probability it was trained with. */
  state: { config: object };
}

/**
 * Throws a one-line UserError when `--guidance` is given for a checkpoint that cannot be guided:
 * an unconditional one, or a class-conditional one trained without label dropout (its "no class"
 * input was never trained, so the guided mix would be noise).
 *
 * @param task The task name for the message, e.g. "eval".
 * @param loaded The checkpoint's class count and run state.
 * @param scale The `--guidance` value; undefined: nothing to check.
 * @throws {UserError} For a checkpoint that cannot be guided, naming the fix.
 * @example
 * ```ts
 * import { checkGuidance } from "./_guidance.ts";
 * checkGuidance("eval", { numClasses: 10, state: { config: { condDrop: 0.1 } } }, 2); // fine
 * ```
 */
export function checkGuidance(
  task: string,
  loaded: GuidableCheckpoint,
  scale: number | undefined,
): void {
  if (scale === undefined) return;
  if (loaded.numClasses === 0) {
    throw new UserError(
      `${task}: --guidance needs a class-conditional checkpoint; drop --guidance`,
    );
  }
  const drop = (loaded.state.config as { condDrop?: number }).condDrop ?? 0;
  if (!(drop > 0)) {
    throw new UserError(
      `${task}: --guidance needs a checkpoint trained with label dropout (this one: --cond-drop ` +
        `${drop}, so its unconditional branch is untrained); train with --cond-drop 0.1 or drop --guidance`,
    );
  }
}

/**
 * The checkpoint's denoiser, guided with `scale` (`models/guidance.ts`) when `--guidance` is
 * given, after {@linkcode checkGuidance}.
 *
 * @param task The task name for messages.
 * @param loaded The loaded checkpoint (`LoadedDenoiser`).
 * @param scale The `--guidance` value; undefined: the plain denoiser.
 * @returns The denoiser to sample with.
 * @throws {UserError} For a checkpoint that cannot be guided.
 * @example
 * ```ts ignore
 * const denoiser = denoiserFor("eval", await loadDenoiser(path), f.guidance);
 * ```
 */
export function denoiserFor(
  task: string,
  loaded: GuidableCheckpoint & { denoiser: Denoiser },
  scale: number | undefined,
): Denoiser {
  checkGuidance(task, loaded, scale);
  return scale === undefined ? loaded.denoiser : guidedDenoiser(loaded.denoiser, { scale });
}
