/**
 * From a run checkpoint to a ready {@linkcode Preconditioned} denoiser (EMA or raw weights):
 * the shortest path from `deno task train:edm` (or `train:ddpm`) to any sampler, metric or
 * recipe. A `train:ddpm` checkpoint becomes the EDM denoiser of its eps network on its own
 * discrete noise levels (EDM Table 1's VP/iDDPM column, `models/ddpm_param.ts` `ddpmDenoiser`),
 * so every EDM sampler runs on it within [sigma_1, sigma_T] of its chain.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { disposeParams, type Params } from "../core/params.ts";
import type { Preconditioned } from "../models/precond.ts";
import { buildModel, sampleShape } from "../models/build_network.ts";
import { objectiveFor } from "./objective.ts";
import { checkCheckpointKind, readRunCheckpoint, type RunCheckpoint } from "./run_checkpoint.ts";
import type { EdmRunState } from "./train_edm.ts";
import type { DdpmRunState } from "./train_ddpm.ts";
import { ddpmFromCheckpoint } from "./load_ddpm.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Options of {@linkcode loadDenoiser}. */
export interface LoadDenoiserOptions {
  /** Which weights: the exponential moving average (what EDM samples from) or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
  /** The task loading it, named when the checkpoint is of another kind. @default "sample:edm" */
  task?: string;
}

/** A loaded denoiser and what it was trained on. */
export interface LoadedDenoiser {
  /** The preconditioned network. */
  denoiser: Preconditioned;
  /** Shape of one sample, e.g. [28, 28, 1] or [2]. */
  shape: number[];
  /** Number of classes for class-conditional models (0 otherwise). */
  numClasses: number;
  /** The run state stored with the weights (config, step, ...); `format` tells which trainer. */
  state: EdmRunState | DdpmRunState;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:edm` or `train:ddpm`).
 *
 * @param path The checkpoint file.
 * @param options Which weights, and the task for messages.
 * @returns The denoiser, the sample shape and the class count; call `dispose` when done.
 * @throws {UserError} For a missing, corrupt or mismatched checkpoint, or one of another kind.
 * @example
 * ```ts ignore
 * const { denoiser, shape } = await loadDenoiser("runs/edm-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadDenoiser(
  path: string,
  options: LoadDenoiserOptions = {},
): Promise<LoadedDenoiser> {
  requireBackend("loadDenoiser");
  const { weights = "ema", task = "sample:edm" } = options;
  const ckpt = await readRunCheckpoint<EdmRunState | DdpmRunState>(path);
  let format: string;
  try {
    format = checkCheckpointKind(ckpt.state, path, {
      accept: ["diffuse-edm/1", "diffuse-ddpm/1"],
      task,
    });
  } catch (e) {
    ckpt.dispose();
    throw e;
  }
  const spec = ckpt.state.model;
  const numClasses = spec.config.labelDim ?? 0;
  const shape = sampleShape(spec);
  if (format === "diffuse-ddpm/1") {
    const ddpm = ddpmFromCheckpoint(ckpt as RunCheckpoint<DdpmRunState>, { weights });
    return { denoiser: ddpm.denoiser, shape, numClasses, state: ddpm.state, dispose: ddpm.dispose };
  }
  const state = ckpt.state as EdmRunState;
  let objective;
  try {
    objective = objectiveFor(state.config.precond, state.config.sde);
  } catch (e) {
    ckpt.dispose();
    throw new UserError(`checkpoint ${path}: ${(e as Error).message} (the file is damaged)`);
  }
  const model = buildModel(state.model);
  const params: Params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  ckpt.dispose();
  const denoiser = objective.precond(model.network(params));
  return { denoiser, shape, numClasses, state, dispose: () => disposeParams(params) };
}
