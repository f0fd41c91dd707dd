/**
 * From a `train:ndm` checkpoint (NDM paper) to its noise predictor eps_theta, its transformation
 * F (learned F_phi or the identity), its DDPM chain, and the model as an EDM denoiser on that
 * chain (`ddpmDenoiser`), so Algorithm 2 (`sampleNdm`) and the NELBO (`ndmBound`) run on it.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { disposeParams } from "../core/params.ts";
import { ddpmDenoiser, type EpsPredictor } from "../models/ddpm_param.ts";
import { sampleShape } from "../models/build_network.ts";
import { initNdmParams, type NdmModelSpec, ndmNetworks } from "../models/ndm_model.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { Preconditioned } from "../models/precond.ts";
import { type DdpmProcess, ddpmProcess } from "../schedules/ddpm.ts";
import { checkCheckpointKind, readRunCheckpoint } from "./run_checkpoint.ts";
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

/** Options of {@linkcode loadNdm}. */
export interface LoadNdmOptions {
  /** Which weights: the exponential moving average or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
  /** The task loading it, named when the checkpoint is of another kind. @default "sample:ndm" */
  task?: string;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:ndm`).
 *
 * @param path The checkpoint file.
 * @param options Which weights, and the task for messages.
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
  options: LoadNdmOptions = {},
): Promise<LoadedNdm> {
  const { weights = "ema", task = "sample:ndm" } = options;
  if (weights !== "ema" && weights !== "raw") {
    throw new RangeError(`weights must be "ema" or "raw", got ${JSON.stringify(weights)}`);
  }
  const ckpt = await readRunCheckpoint<NdmRunState>(path);
  const { state } = ckpt;
  try {
    checkCheckpointKind(state, path, { accept: ["diffuse-ndm/1"], task });
  } catch (e) {
    ckpt.dispose();
    throw e;
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
  const shape = sampleShape(state.model);
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
