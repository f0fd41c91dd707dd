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
import { buildModel } from "../models/build_network.ts";
import { ddpmDenoiser, ddpmEpsNetwork, type EpsPredictor } from "../models/ddpm_param.ts";
import type { Preconditioned } from "../models/precond.ts";
import { type DdpmProcess, ddpmProcess } from "../schedules/ddpm.ts";
import { readRunCheckpoint } from "./run_checkpoint.ts";
import type { DdpmRunState } from "./train_ddpm.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Options of {@linkcode loadDdpm}. */
export interface LoadDdpmOptions {
  /** Which weights: the exponential moving average or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
}

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
  const { state } = ckpt;
  if (state?.format !== "diffuse-ddpm/1") {
    ckpt.dispose();
    const hint = state?.format === "diffuse-edm/1"
      ? "it was written by train:edm; use sample:edm"
      : "give a checkpoint written by train:ddpm";
    throw new UserError(`${path} is not a DDPM checkpoint: ${hint}`);
  }
  const model = buildModel(state.model);
  const params: Params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  ckpt.dispose();
  const process = ddpmProcess({ T: state.config.T, schedule: state.config.schedule });
  const eps = ddpmEpsNetwork(model.network(params));
  const spec = state.model;
  const shape = spec.kind === "mlp"
    ? [spec.config.dim]
    : [spec.config.imgResolution, spec.config.imgResolution, spec.config.inChannels];
  return {
    eps,
    process,
    denoiser: ddpmDenoiser(eps, process),
    shape,
    state,
    dispose: () => disposeParams(params),
  };
}
