/**
 * From a `train:ddpm` checkpoint (Ho et al. 2020) to its eps predictor eps_theta(x_t, t), its
 * process (T and the beta schedule it was trained with), and the same model as an EDM denoiser
 * (`ddpmDenoiser`, EDM Table 1's VP/iDDPM column), so DDPM's samplers and bound and every EDM
 * sampler run on it.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { buildModel, sampleShape } from "../models/build_network.ts";
import { ddpmDenoiser, ddpmEpsNetwork, type EpsPredictor } from "../models/ddpm_param.ts";
import type { Preconditioned } from "../models/precond.ts";
import { type DdpmProcess, ddpmProcess } from "../schedules/ddpm.ts";
import { checkCheckpointKind, readRunCheckpoint, type RunCheckpoint } from "./run_checkpoint.ts";
import type { DdpmRunState } from "./train_ddpm.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Options of {@linkcode loadDdpm}. */
export interface LoadDdpmOptions {
  /** Which weights: the exponential moving average or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
  /** The task loading it, named when the checkpoint is of another kind. @default "sample:ddpm" */
  task?: string;
}

// Longest DDPM chain a checkpoint may declare (the process tables have T entries).
const MAX_T = 100_000;

/** A loaded DDPM model. */
export interface LoadedDdpm {
  /** The noise predictor on the training process's time axis (steps 1..T). */
  eps: EpsPredictor;
  /** The training process. */
  process: DdpmProcess;
  /** The model as an EDM denoiser on `process`'s noise levels. */
  denoiser: Preconditioned;
  /** Shape of one sample, e.g. [28, 28, 1] or [2]. */
  shape: number[];
  /** The run state stored with the weights (config, step, ...). */
  state: DdpmRunState;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:ddpm`).
 *
 * @param path The checkpoint file.
 * @param options Which weights.
 * @returns The predictor, process, denoiser and shape; call `dispose` when done.
 * @throws {UserError} For a missing, corrupt or mismatched checkpoint, or one that `train:ddpm`
 *   did not write.
 * @example
 * ```ts ignore
 * const { eps, process, denoiser, shape, dispose } = await loadDdpm("runs/ddpm-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadDdpm(path: string, options: LoadDdpmOptions = {}): Promise<LoadedDdpm> {
  requireBackend("loadDdpm");
  const { weights = "ema" } = options;
  if (weights !== "ema" && weights !== "raw") {
    throw new RangeError(`weights must be "ema" or "raw", got ${JSON.stringify(weights)}`);
  }
  const ckpt = await readRunCheckpoint<DdpmRunState>(path, {
    hint: "train first with `deno task train:ddpm` or pass --checkpoint",
  });
  try {
    checkCheckpointKind(ckpt.state, path, {
      accept: ["diffuse-ddpm/1"],
      task: options.task ?? "sample:ddpm",
    });
  } catch (e) {
    ckpt.dispose();
    throw e;
  }
  return ddpmFromCheckpoint(ckpt, { weights });
}

/**
 * The DDPM model of an already loaded `train:ddpm` checkpoint (its kind checked by the caller);
 * the checkpoint's host tensors are copied into new weights and it is disposed.
 *
 * @param ckpt A checkpoint whose format is "diffuse-ddpm/1".
 * @param options Which weights.
 * @returns As {@linkcode loadDdpm}.
 * @example
 * ```ts ignore
 * const model = ddpmFromCheckpoint(await readRunCheckpoint(path), { weights: "ema" });
 * ```
 */
export function ddpmFromCheckpoint(
  ckpt: RunCheckpoint<DdpmRunState>,
  options: LoadDdpmOptions = {},
): LoadedDdpm {
  const { weights = "ema" } = options;
  const { state } = ckpt;
  const T = state.config?.T;
  if (!Number.isInteger(T) || T < 1 || T > MAX_T) {
    ckpt.dispose();
    throw new UserError(
      `checkpoint's DDPM chain length T = ${JSON.stringify(T)} is not an integer in 1..${MAX_T}: ` +
        `it is damaged; pass the run's checkpoint`,
    );
  }
  let process: DdpmProcess;
  try {
    process = ddpmProcess({ T: state.config.T, schedule: state.config.schedule });
  } catch (e) {
    ckpt.dispose();
    throw new UserError(`checkpoint's DDPM process: ${(e as Error).message} (the file is damaged)`);
  }
  const model = buildModel(state.model);
  const params: Params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  ckpt.dispose();
  const eps = ddpmEpsNetwork(model.network(params));
  const shape = sampleShape(state.model);
  return {
    eps,
    process,
    denoiser: ddpmDenoiser(eps, process),
    shape,
    state,
    dispose: () => disposeParams(params),
  };
}
