/**
 * What `eval:ddpm` and `eval:ndm` share before they evaluate a bound: the chain the bound runs on
 * (the checkpoint's T steps, or `--steps` respaced from it) and the held-out images (the last
 * `--n` of a dataset of the model's shape). Not tied to a paper.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { heldOutDataset, loadDataset } from "../data/load_dataset.ts";
import type { Dataset } from "../data/dataset.ts";
import { type DdpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";

/**
 * The process the bound runs on: `process` itself for `steps = T`, else respaced to `steps`.
 *
 * @param process The checkpoint's process.
 * @param steps The chain length asked for.
 * @param task Task name for the message, e.g. "eval:ddpm".
 * @returns The chain.
 * @throws {UserError} For more steps than the checkpoint's T.
 * @example
 * ```ts ignore
 * const chain = evalChain(process, f.steps ?? process.T, "eval:ddpm");
 * ```
 */
export function evalChain(process: DdpmProcess, steps: number, task: string): DdpmProcess {
  if (steps > process.T) {
    throw new UserError(
      `${task}: --steps must be at most the checkpoint's T = ${process.T}, got ${steps}`,
    );
  }
  return steps === process.T
    ? process
    : respaceDdpm(process, spaceTimesteps(process.T, { numSteps: steps }));
}

/** Options of {@linkcode loadHeldOut}. */
export interface LoadHeldOutOptions {
  /** `--data`; default: the held-out split of `trainedOn`. @default undefined */
  data?: string;
  /** The dataset the model was trained on (its config's `data`). */
  trainedOn: string;
  /** Shape of one image the model makes. */
  shape: readonly number[];
  /** Images to evaluate: the last `n` of the set. */
  n: number;
  /** Task name for messages, e.g. "eval:ddpm". */
  task: string;
}

/**
 * The evaluation set, checked against the model: same image shape, at least `n` images.
 *
 * @param options The dataset, the model's shape and `n`.
 * @returns The dataset and the index of its first evaluated image (`count - n`).
 * @throws {UserError} For another shape or too few images.
 * @example
 * ```ts ignore
 * const { dataset, first } = await loadHeldOut({ trainedOn: "mnist:train", shape, n: 256, task });
 * ```
 */
export async function loadHeldOut(
  options: LoadHeldOutOptions,
): Promise<{ dataset: Dataset; first: number }> {
  const { shape, n, task } = options;
  const dataset = await loadDataset(options.data ?? heldOutDataset(options.trainedOn));
  if (dataset.shape.join(",") !== shape.join(",")) {
    throw new UserError(
      `${task}: the data has shape [${dataset.shape}] but the model makes [${shape}]; ` +
        `pass the --data it was trained on`,
    );
  }
  if (n > dataset.count) {
    throw new UserError(
      `${task}: --n must be at most ${dataset.count} (${dataset.name}), got ${n}`,
    );
  }
  return { dataset, first: dataset.count - n };
}
