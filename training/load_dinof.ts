/**
 * From a `train:dinof` checkpoint to a ready {@linkcode DinofModel} (EMA or raw weights): the
 * score model (the checkpoint's own network when trained jointly, else the frozen score
 * checkpoint it names), the process, the flow and T_m.
 *
 * @module
 */
import { Rng } from "../core/rng.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { buildModel } from "../models/build_network.ts";
import { createDinofFlow, type DinofModel, dinofModel } from "../models/dinof.ts";
import { scoreSdeSchedule } from "../schedules/score_sde.ts";
import { objectiveFor } from "./objective.ts";
import { loadDenoiser } from "./load_denoiser.ts";
import { checkCheckpointKind, readRunCheckpoint } from "./run_checkpoint.ts";
import { dinofFlowArch } from "./dinof_config.ts";
import { prefixParams, unprefixParams } from "./_prefixed.ts";
import type { DinofRunState } from "./train_dinof.ts";

/** A loaded DiNof model and what it was trained on. */
export interface LoadedDinof {
  /** The model. */
  model: DinofModel;
  /** Shape of one sample, e.g. [28, 28, 1] or [2]. */
  shape: number[];
  /** The run state stored with the weights. */
  state: DinofRunState;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Loads `path` (a `checkpoint.safetensors` written by `train:dinof`).
 *
 * @param path The checkpoint.
 * @param options Which weights (`weights`, default "ema") and the task named in messages
 *   (`task`, default "sample:dinof").
 * @returns The model, its data shape and its state.
 * @throws {UserError} For a missing, corrupt or non-DiNof checkpoint, or a missing score checkpoint
 *   (from the checkpoint readers).
 * @example
 * ```ts ignore
 * const { model, shape } = await loadDinof("runs/dinof-mnist/checkpoint.safetensors");
 * ```
 */
export async function loadDinof(
  path: string,
  options: { weights?: "ema" | "raw"; task?: string } = {},
): Promise<LoadedDinof> {
  const { weights = "ema", task = "sample:dinof" } = options;
  const ckpt = await readRunCheckpoint<DinofRunState>(path, {
    hint: "train first with `deno task train:dinof` or pass --checkpoint",
  });
  try {
    checkCheckpointKind(ckpt.state, path, { accept: ["diffuse-dinof/1"], task });
  } catch (e) {
    ckpt.dispose();
    throw e;
  }
  const { state } = ckpt;
  const { config } = state;
  const spec = state.model;
  const shape = spec.kind === "mlp"
    ? [spec.config.dim]
    : [spec.config.imgResolution, spec.config.imgResolution, spec.config.inChannels];
  const flow = createDinofFlow(dinofFlowArch(config.flow), shape);
  const frozen = config.scoreCheckpoint === null
    ? null
    : await loadDenoiser(config.scoreCheckpoint, { weights: "ema" });
  const net = buildModel(spec);
  const params: Params = {
    ...(frozen ? {} : prefixParams("score.", net.init(new Rng(0)))),
    ...prefixParams("flow.", flow.init(new Rng(0))),
  };
  ckpt.assign(weights === "ema" ? "ema." : "net.", params);
  ckpt.dispose();
  const denoiser = frozen?.denoiser ??
    objectiveFor(config.process, { ...config.sde, tMax: config.tm }).precond(
      net.network(unprefixParams("score.", params)),
    );
  const model = dinofModel({
    denoiser,
    schedule: scoreSdeSchedule(config.process),
    flow,
    flowParams: unprefixParams("flow.", params),
    tm: config.tm,
  });
  return {
    model,
    shape,
    state,
    dispose: () => {
      disposeParams(params);
      frozen?.dispose();
    },
  };
}
