/**
 * Loading a flow checkpoint written by `trainFlow` for sampling and evaluation: the model rebuilt
 * from the stored spec, its EMA or raw weights, the run's state.
 *
 * @module
 */
import { disposeParams, type Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import { buildFlow, type FlowModelSpec } from "./flow_model_spec.ts";
import { checkCheckpointKind, readRunCheckpoint } from "./run_checkpoint.ts";
import type { FlowRunState } from "./train_flow.ts";

/** A loaded flow. */
export interface LoadedFlow {
  /** The model. */
  model: FlowModel;
  /** Its weights (owned: call `dispose`). */
  params: Params;
  /** The stored description. */
  spec: FlowModelSpec;
  /** The run's state. */
  state: FlowRunState;
  /** Frees the weights. */
  dispose(): void;
}

/** Options of {@linkcode loadFlow}. */
export interface LoadFlowOptions {
  /** Which weights: the exponential moving average or the raw ones. @default "ema" */
  weights?: "ema" | "raw";
  /** The task loading it, named when the checkpoint is of another kind. @default "sample:glow" */
  task?: string;
}

/**
 * Loads a `train:glow` checkpoint.
 *
 * @param path The checkpoint file.
 * @param options Which weights, and the task for messages.
 * @returns The flow.
 * @throws {UserError} For a missing, corrupt or non-flow checkpoint (naming the task to use).
 * @example
 * ```ts ignore
 * const { model, params, dispose } = await loadFlow("runs/glow-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadFlow(
  path: string,
  options: LoadFlowOptions = {},
): Promise<LoadedFlow> {
  const { weights = "ema", task = "sample:glow" } = options;
  const ckpt = await readRunCheckpoint<FlowRunState>(path);
  const { state } = ckpt;
  try {
    checkCheckpointKind(state, path, { accept: ["diffuse-flow/1"], task });
  } catch (e) {
    ckpt.dispose();
    throw e;
  }
  const model = buildFlow(state.model);
  const params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  return { model, params, spec: state.model, state, dispose: () => disposeParams(params) };
}
