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
import type { DdpmTrainConfig } from "./ddpm_config.ts";

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

const BASE: Omit<NdmTrainConfig, "data" | "model"> = {
  T: 1000,
  schedule: "linear",
  transform: "learned",
  continuous: false,
  eta: 1,
  batchSize: 64,
  kimg: 200,
  lr: 2e-4,
  lrRampupKimg: 2,
  emaHalfLifeKimg: 5,
  emaRampupRatio: 0.05,
  dropout: 0,
  seed: 0,
  checkpointKimg: 10,
  sampleKimg: 20,
  logEvery: 20,
  gridImages: 64,
  gridSteps: 100,
  maxMinutes: 0,
};

/**
 * Named starting points. `mnist` is the default of `deno task train:ndm`: two `mnist-small`
 * U-Nets (denoiser and F_phi), stopped by the clock at 13 minutes on a 2-core machine.
 *
 * @example
 * ```ts
 * import { NDM_PRESETS, type NdmTrainConfig } from "./ndm_config.ts";
 * const ddpm: NdmTrainConfig = { ...NDM_PRESETS.mnist, transform: "identity" };
 * ```
 */
export const NDM_PRESETS = {
  mnist: {
    ...BASE,
    data: "mnist:train",
    model: "mnist-small",
    kimg: 50,
    lr: 2e-3,
    checkpointKimg: 5,
    sampleKimg: 10,
    gridSteps: 50,
    maxMinutes: 13,
  },
  toy: {
    ...BASE,
    data: "toy:checkerboard",
    model: "mlp",
    batchSize: 256,
    kimg: 300,
    lr: 2e-3,
    lrRampupKimg: 5,
    emaHalfLifeKimg: 10,
    checkpointKimg: 100,
    sampleKimg: 100,
    gridImages: 1000,
  },
} as const satisfies Record<string, NdmTrainConfig>;

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
