/**
 * Typed training configurations for DiNof (shared/papers/dinof.txt, Section 3.2; the authors'
 * `configs/default_cifar10.py`): the score model's process and DSM options, T_m, the flow, the
 * weight w of the flow's NLL in the joint objective, gradient clipping, and either joint training
 * (`scoreCheckpoint: null`) or the two-stage mode (a frozen `train:sde` / `train:edm` checkpoint).
 * Presets are typed constants: spread one to override.
 *
 * The authors' defaults: T_m = 0.6, Glow L = 3, K = 16, 256 hidden channels, w = [1, 1] (fixed in
 * their `runner.py`), Adam lr 2e-4 with 5000 warm-up steps, gradient clipping at norm 1, EMA
 * 0.9999 on both networks. Warm-up and EMA here are the shared loop's (in images, EDM-style).
 *
 * @module
 */
import { type RunConfigBase, validateRunConfig } from "./run_config.ts";
import type { SdeObjectiveOptions } from "./objective.ts";
import { SCORE_SDE_NAMES, type ScoreSdeName } from "../schedules/score_sde.ts";
import { FLOW_ARCHS } from "../flows/presets.ts";
import type { DinofFlowArch } from "../models/dinof.ts";

/** DiNof's own flows besides the `flows/` presets (see `DinofFlowArch`). */
const EXTRA_FLOWS: Record<string, DinofFlowArch> = { affine: { kind: "affine" } };

/** Flow names a DiNof config may use: the `flows/` presets and `"affine"`. */
export const DINOF_FLOW_NAMES: readonly string[] = [
  ...Object.keys(FLOW_ARCHS),
  ...Object.keys(EXTRA_FLOWS),
];

/** Everything a DiNof training run needs; stored in every checkpoint. */
export interface DinofTrainConfig extends RunConfigBase {
  /** Dataset spec for `loadDataset`: "mnist", "cifar10:<path>", "png:<folder>", "toy:<name>". */
  data: string;
  /** Score network (joint): a U-Net preset name from `UNET_PRESETS`, or "mlp" for 2-D data. */
  model: string;
  /** Base channels of the U-Net (overrides the preset when set). */
  channels?: number;
  /** Channel multipliers per level (overrides the preset when set). */
  channelMult?: number[];
  /** Residual blocks per level (overrides the preset when set). */
  numBlocks?: number;
  /** Seed of the one generator behind init, batches, times, noise and dropout. */
  seed: number;
  /** The process (and, when joint, the score network's preconditioner). */
  process: ScoreSdeName;
  /** DSM options of the joint score loss (its tMax is always T_m). */
  sde: Omit<SdeObjectiveOptions, "tMax">;
  /** The switch time T_m in (0, T]. */
  tm: number;
  /** The flow: a name of {@linkcode DINOF_FLOW_NAMES}. */
  flow: string;
  /** Weight w of the flow's NLL (nats per example) in the joint loss DSM + w NLL. */
  nllWeight: number;
  /** Global gradient-norm clip (0: off). */
  clipGradNorm: number;
  /** A frozen score checkpoint (two-stage: only the flow trains), or null (joint training). */
  scoreCheckpoint: string | null;
  /** EMA ramp-up ratio. */
  emaRampupRatio: number;
}

const BASE: Omit<DinofTrainConfig, "data" | "model" | "flow"> = {
  process: "vp",
  sde: { weighting: "sigma2", reduce: "mean" },
  tm: 0.6,
  nllWeight: 1,
  clipGradNorm: 1,
  scoreCheckpoint: null,
  batchSize: 64,
  kimg: 100,
  lr: 1e-3,
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
 * Named starting points. `mnist` is the default of `deno task train:dinof`.
 *
 * @example
 * ```ts
 * import { DINOF_PRESETS, type DinofTrainConfig } from "./dinof_config.ts";
 * const config: DinofTrainConfig = { ...DINOF_PRESETS.mnist, tm: 0.5 };
 * ```
 */
export const DINOF_PRESETS = {
  mnist: {
    ...BASE,
    data: "mnist:train",
    model: "mnist-small",
    flow: "glow-mnist",
    kimg: 120,
    lr: 2e-3,
    maxMinutes: 13,
  },
  toy: {
    ...BASE,
    data: "toy:two-moons",
    model: "mlp",
    flow: "glow-points",
    batchSize: 256,
    kimg: 300,
    lr: 2e-3,
    lrRampupKimg: 5,
    emaHalfLifeKimg: 10,
    checkpointKimg: 100,
    sampleKimg: 100,
    gridImages: 1000,
    gridSteps: 50,
  },
} as const satisfies Record<string, DinofTrainConfig>;

/**
 * The flow architecture of a config's flow name.
 *
 * @param name A name of {@linkcode DINOF_FLOW_NAMES}.
 * @returns The architecture.
 * @throws {RangeError} For an unknown name.
 * @example
 * ```ts
 * import { dinofFlowArch } from "./dinof_config.ts";
 * const arch = dinofFlowArch("glow-mnist");
 * ```
 */
export function dinofFlowArch(name: string): DinofFlowArch {
  const arch = EXTRA_FLOWS[name] ?? (FLOW_ARCHS as Record<string, DinofFlowArch>)[name];
  if (!arch) {
    throw new RangeError(`unknown flow "${name}": use one of ${DINOF_FLOW_NAMES.join(", ")}`);
  }
  return arch;
}

/**
 * Checks a config and returns it, throwing a RangeError naming the field and the fix.
 *
 * @param config A DiNof config.
 * @returns The same config.
 * @throws {RangeError} For the first invalid field.
 * @example
 * ```ts
 * import { DINOF_PRESETS, validateDinofConfig } from "./dinof_config.ts";
 * validateDinofConfig({ ...DINOF_PRESETS.mnist });
 * ```
 */
export function validateDinofConfig(config: DinofTrainConfig): DinofTrainConfig {
  validateRunConfig(config);
  if (!(SCORE_SDE_NAMES as readonly string[]).includes(config.process)) {
    throw new RangeError(
      `process must be one of ${SCORE_SDE_NAMES.join(", ")}, got "${config.process}"`,
    );
  }
  if (!(config.tm > 0 && config.tm <= 1)) {
    throw new RangeError(`tm (T_m) must lie in (0, 1], got ${config.tm}`);
  }
  dinofFlowArch(config.flow);
  if (!(config.nllWeight > 0) || !Number.isFinite(config.nllWeight)) {
    throw new RangeError(`nllWeight (w) must be a finite number > 0, got ${config.nllWeight}`);
  }
  if (!(config.clipGradNorm >= 0)) {
    throw new RangeError(`clipGradNorm must be >= 0 (0: off), got ${config.clipGradNorm}`);
  }
  return config;
}
