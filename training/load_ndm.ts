/**
 * From a `train:ndm` checkpoint (NDM paper) to its noise predictor eps_theta, its transformation
 * F (learned F_phi or the identity), its DDPM chain, and the model as an EDM denoiser on that
 * chain (`ddpmDenoiser`), so Algorithm 2 (`sampleNdm`) and the NELBO (`ndmBound`) run on it.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { disposeParams } from "../core/params.ts";
import { ddpmDenoiser, type EpsPredictor } from "../models/ddpm_param.ts";
import { initNdmParams, type NdmModelSpec, ndmNetworks } from "../models/ndm_model.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { Preconditioned } from "../models/precond.ts";
import { type DdpmProcess, ddpmProcess } from "../schedules/ddpm.ts";
import { readRunCheckpoint } from "./run_checkpoint.ts";
import { type NdmRunState, ndmTrainingChain } from "./train_ndm.ts";

/** A loaded NDM. */
export interface LoadedNdm {
  /** eps_theta on the training chain's time axis. */
  eps: EpsPredictor;
  /** F. */
  transform: NdmTransform;
  /** The T-step process (the network's time axis). */
  process: DdpmProcess;
  /** The chain the model was trained on (`process`, or its respacing to `config.steps`). */
  chain: DdpmProcess;
  /** eps_theta as an EDM denoiser on `process` (what `sampleNdm` takes). */
  denoiser: Preconditioned;
  /** Shape of one sample. */
  shape: number[];
  /** The stored run state. */
  state: NdmRunState;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:ndm`).
 *
 * @param path The checkpoint file.
 * @param options Which weights. @default { weights: "ema" }
 * @returns The model; call `dispose` when done.
 * @throws {UserError} For a missing, corrupt or mismatched checkpoint, or one that `train:ndm`
 *   did not write (naming the task that did).
 * @example
 * ```ts ignore
 * const { eps, transform, process, dispose } = await loadNdm("runs/ndm-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadNdm(
  path: string,
  options: { weights?: "ema" | "raw" } = {},
): Promise<LoadedNdm> {
  const { weights = "ema" } = options;
  if (weights !== "ema" && weights !== "raw") {
    throw new RangeError(`weights must be "ema" or "raw", got ${JSON.stringify(weights)}`);
  }
  const ckpt = await readRunCheckpoint<NdmRunState>(path);
  const { state } = ckpt;
  if (state?.format !== "diffuse-ndm/1") {
    ckpt.dispose();
    const by = state?.format === "diffuse-ddpm/1"
      ? "train:ddpm; use sample:ddpm / eval:ddpm"
      : state?.format === "diffuse-edm/1"
      ? "train:edm; use sample:edm"
      : "another tool; give a checkpoint written by train:ndm";
    throw new UserError(`${path} is not an NDM checkpoint: it was written by ${by}`);
  }
  const spec: NdmModelSpec = { denoiser: state.model, transform: state.transformModel };
  const params = initNdmParams(spec, new Rng(0));
  try {
    ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  } finally {
    ckpt.dispose();
  }
  const process = ddpmProcess({ T: state.config.T, schedule: state.config.schedule });
  const { eps, transform } = ndmNetworks(spec, params);
  const m = state.model;
  const shape = m.kind === "mlp"
    ? [m.config.dim]
    : [m.config.imgResolution, m.config.imgResolution, m.config.inChannels];
  return {
    eps,
    transform,
    process,
    chain: ndmTrainingChain(process, state.config),
    denoiser: ddpmDenoiser(eps, process),
    shape,
    state,
    dispose: () => disposeParams(params),
  };
}
