/**
 * Loading a flow checkpoint written by `trainFlow` for sampling and evaluation: the model rebuilt
 * from the stored spec, its EMA or raw weights, the run's state.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { Rng } from "../core/rng.ts";
import type { FlowModel } from "../flows/multiscale.ts";
import { buildFlow, type FlowModelSpec } from "./flow_model_spec.ts";
import { readRunCheckpoint } from "./run_checkpoint.ts";
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

/**
 * Loads a `train:glow` checkpoint.
 *
 * @param path The checkpoint file.
 * @param options Which weights. `weights`: `"ema"` or `"raw"`, @default "ema"
 * @returns The flow.
 * @throws {UserError} For a missing, corrupt or non-flow checkpoint.
 * @example
 * ```ts ignore
 * const { model, params, dispose } = await loadFlow("runs/glow-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadFlow(
  path: string,
  options: { weights?: "ema" | "raw" } = {},
): Promise<LoadedFlow> {
  const { weights = "ema" } = options;
  const ckpt = await readRunCheckpoint<FlowRunState>(path);
  const { state } = ckpt;
  if (state?.format !== "diffuse-flow/1") {
    throw new UserError(
      `${path} is not a flow checkpoint (format ${
        JSON.stringify(state?.format)
      }): pass one written by train:glow`,
    );
  }
  const model = buildFlow(state.model);
  const params = model.init(new Rng(0));
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  return { model, params, spec: state.model, state, dispose: () => disposeParams(params) };
}
