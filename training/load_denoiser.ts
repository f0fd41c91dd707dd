/**
 * From a run checkpoint to a ready {@linkcode Preconditioned} denoiser (EMA or raw weights):
 * the shortest path from `deno task train:edm` to any sampler, metric or recipe.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { disposeParams, type Params } from "../core/params.ts";
import type { Preconditioned } from "../models/precond.ts";
import { buildModel } from "../models/build_network.ts";
import { objectiveFor } from "./objective.ts";
import { readRunCheckpoint } from "./run_checkpoint.ts";
import type { EdmRunState } from "./train_edm.ts";

/** Options of {@linkcode loadDenoiser}. */
export interface LoadDenoiserOptions {
  /** Which weights: the exponential moving average (what EDM samples from) or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
}

/** A loaded denoiser and what it was trained on. */
export interface LoadedDenoiser {
  /** The preconditioned network. */
  denoiser: Preconditioned;
  /** Shape of one sample, e.g. [28, 28, 1] or [2]. */
  shape: number[];
  /** Number of classes for class-conditional models (0 otherwise). */
  numClasses: number;
  /** The run state stored with the weights (config, step, ...). */
  state: EdmRunState;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:edm`).
 *
 * @throws {UserError} For a missing, corrupt or mismatched checkpoint.
 * @example
 * ```ts ignore
 * const { denoiser, shape } = await loadDenoiser("runs/edm-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadDenoiser(
  path: string,
  options: LoadDenoiserOptions = {},
): Promise<LoadedDenoiser> {
  const { weights = "ema" } = options;
  const ckpt = await readRunCheckpoint<EdmRunState>(path);
  const { state } = ckpt;
  const model = buildModel(state.model);
  const params: Params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  const denoiser = objectiveFor(state.config.precond, state.config.sde).precond(
    model.network(params),
  );
  const spec = state.model;
  const shape = spec.kind === "mlp"
    ? [spec.config.dim]
    : [spec.config.imgResolution, spec.config.imgResolution, spec.config.inChannels];
  const numClasses = spec.kind === "mlp" ? spec.config.labelDim ?? 0 : spec.config.labelDim ?? 0;
  return { denoiser, shape, numClasses, state, dispose: () => disposeParams(params) };
}
