/**
 * Typed training configurations for Neural Diffusion Models (NDM paper, Algorithm 1, Section 4):
 * the DDPM chain (T, beta schedule), the transformation (learned F_phi or the identity, which is
 * the paper's DDPM baseline trained with the same objective), discrete (eq. 9) or continuous
 * (eq. 11) objective, the posterior noise eta, and the run's length and logging. Presets are
 * typed constants: spread one to override.
 *
 * @module
 */
import { validateRunConfig } from "./run_config.ts";
import type { BetaSchedule } from "../schedules/ddpm.ts";
import { DDPM_PRESETS, type DdpmTrainConfig } from "./ddpm_config.ts";

/** The transformation F: the learned F_phi, or the identity (DDPM). */
export type NdmTransformChoice = "learned" | "identity";

/** Everything an NDM training run needs; stored in every checkpoint. */
export interface NdmTrainConfig extends Omit<DdpmTrainConfig, "loss" | "variance" | "schedule"> {
  /** Beta schedule of the chain (the continuous objective needs "linear": its limit is VP). */
  schedule: BetaSchedule;
  /** The transformation. */
  transform: NdmTransformChoice;
  /** U-Net preset (or "mlp") of F_phi's network. [default: the same as `model`] */
  transformModel?: string;
  /** Train on the continuous-time objective (eq. 11, t ~ 1/g^2) instead of eq. 9. */
  continuous: boolean;
  /** Posterior noise eta of the objective and of the sample grids (1: the DDPM choice). */
  eta: number;
  /**
   * Steps K of the training chain: the T-step process respaced to K steps (`respaceDdpm`), so
   * K = 10 is NDM Table 4's "T = 10" on the same noise levels. [default: T]
   */
  steps?: number;
}

// NDM's own fields; the rest comes from DDPM's presets ("same hyper-parameters", Section 4.3).
const NDM_FIELDS = { transform: "learned", continuous: false, eta: 1 } as const;

// A DDPM preset without its DDPM-only fields.
function fromDdpm<P extends DdpmTrainConfig>(preset: P): Omit<P, "loss" | "variance"> {
  const { loss: _loss, variance: _variance, ...rest } = preset;
  return rest;
}

/**
 * Named starting points: DDPM's presets (`DDPM_PRESETS`) with NDM's fields, so NDM and its
 * DDPM baseline share every hyper-parameter. `mnist` is the default of `deno task train:ndm`:
 * two `mnist-small` U-Nets (denoiser and F_phi), stopped by the clock at 13 minutes on 2 cores.
 *
 * @example
 * ```ts
 * import { NDM_PRESETS, type NdmTrainConfig } from "./ndm_config.ts";
 * const ddpm: NdmTrainConfig = { ...NDM_PRESETS.mnist, transform: "identity" };
 * ```
 */
export const NDM_PRESETS: Readonly<Record<"mnist" | "toy", NdmTrainConfig>> = {
  mnist: { ...fromDdpm(DDPM_PRESETS.mnist), ...NDM_FIELDS },
  toy: { ...fromDdpm(DDPM_PRESETS.toy), ...NDM_FIELDS, data: "toy:checkerboard", kimg: 300 },
};

/**
 * Checks a config and returns it, throwing a RangeError naming the field and the fix.
 *
 * @param config The config.
 * @returns The same config.
 * @throws {RangeError} For a bad field.
 * @example
 * ```ts
 * import { NDM_PRESETS, validateNdmConfig } from "./ndm_config.ts";
 * validateNdmConfig({ ...NDM_PRESETS.mnist });
 * ```
 */
export function validateNdmConfig(config: NdmTrainConfig): NdmTrainConfig {
  validateRunConfig(config);
  if (!Number.isInteger(config.T) || config.T < 2) {
    throw new RangeError(`T must be an integer >= 2, got ${config.T}`);
  }
  const K = config.steps ?? config.T;
  if (!Number.isInteger(K) || K < 2 || K > config.T) {
    throw new RangeError(`steps must be an integer in 2..T (${config.T}), got ${K}`);
  }
  if (!Number.isInteger(config.gridSteps) || config.gridSteps > K) {
    throw new RangeError(
      `gridSteps must be an integer in 1..steps (${K}), got ${config.gridSteps}`,
    );
  }
  if (config.continuous && config.steps !== undefined && config.steps !== config.T) {
    throw new RangeError(
      `steps (${config.steps}) applies to the discrete objective; drop it with continuous`,
    );
  }
  if (config.transform !== "learned" && config.transform !== "identity") {
    throw new RangeError(
      `transform must be "learned" or "identity", got ${JSON.stringify(config.transform)}`,
    );
  }
  if (config.schedule !== "linear" && config.schedule !== "cosine") {
    throw new RangeError(
      `schedule must be "linear" or "cosine", got ${JSON.stringify(config.schedule)}`,
    );
  }
  if (config.continuous && config.schedule !== "linear") {
    throw new RangeError(
      `the continuous objective runs on the VP limit of the linear schedule; use schedule ` +
        `"linear" (got "${config.schedule}") or drop continuous`,
    );
  }
  if (!(config.eta > 0 && config.eta <= 1)) {
    throw new RangeError(
      `eta must be in (0, 1] for training, got ${config.eta} (eta = 0 has no finite KL; ` +
        `sample with eta 0 instead)`,
    );
  }
  return config;
}
