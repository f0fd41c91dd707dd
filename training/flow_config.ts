/**
 * Training configuration of the normalizing flows (Glow, Kingma & Dhariwal 2018, Section 5 and
 * openai/glow `train.py`; RealNVP, Dinh et al. 2017, Section 4.1): maximum likelihood with Adam,
 * linear learning-rate warm-up (Glow: `epochs_warmup`; it is what prevents NaN at the start of
 * training), global gradient-norm clipping (chrischute/real-nvp clips at 100 on its per-image
 * loss), EMA of the weights for the sample grids, and the run cadence of every trainer. The
 * clip default, 500 on the bits/dim loss, sits above the typical norm measured on `glow-mnist`
 * (about 300 at 60 kimg), so it only cuts spikes; Adam is invariant to a constant gradient
 * scale, so a clip that is always active mostly re-weights batches.
 *
 * Glow's reference optimizer is Adamax (`optimizer = "adamax"`, lr 1e-3); rosinality/glow-pytorch
 * uses Adam with lr 1e-4. Adam is used here (the toolkit's one optimizer).
 *
 * @module
 */
import { FLOW_ARCHS, type FlowArch } from "../flows/presets.ts";
import { type RunConfigBase, validateRunConfig } from "./run_config.ts";

/** Everything that defines a flow training run. */
export interface FlowTrainConfig extends RunConfigBase {
  /** Dataset spec (see data/load_dataset.ts): images are dequantized, 2-D points are not. */
  data: string;
  /** The flow architecture. */
  arch: FlowArch;
  /** Quantisation levels of the data (Glow's 2^n_bits_x). */
  nBins: number;
  /** Global gradient-norm clip (0: off). */
  clipGradNorm: number;
  /** EMA half-life ramp-up ratio. */
  emaRampupRatio: number;
  /** Temperatures of the sample grids, one block of `gridImages` images each. */
  gridTemperatures: number[];
  /** Examples of the ActNorm data-dependent initialisation batch (Glow: `n_batch_init = 256`). */
  initBatch: number;
  /** Seed of weights, batches and dequantization noise. */
  seed: number;
}

const BASE: Omit<FlowTrainConfig, "data" | "arch"> = {
  batchSize: 64,
  kimg: 100,
  lr: 1e-3,
  lrRampupKimg: 5,
  emaHalfLifeKimg: 2,
  emaRampupRatio: 0.05,
  clipGradNorm: 500,
  nBins: 256,
  dropout: 0,
  seed: 0,
  checkpointKimg: 10,
  sampleKimg: 20,
  logEvery: 20,
  gridImages: 16,
  gridSteps: 1,
  gridTemperatures: [0.5, 0.7, 1],
  initBatch: 256,
  maxMinutes: 0,
};

/**
 * Named starting points. `mnist` (Glow) is the default of `deno task train:glow`, sized for about
 * 15 minutes on 2 cores; `mnist-realnvp` the RealNVP counterpart; `toy` a 2-D two-moons run;
 * `dinof-cifar10` the DiNof prior architecture (L = 3, K = 16, hidden 256) on CIFAR-10.
 *
 * @example
 * ```ts
 * import { FLOW_TRAIN_PRESETS } from "./flow_config.ts";
 * const config = { ...FLOW_TRAIN_PRESETS.mnist, kimg: 5 };
 * ```
 */
export const FLOW_TRAIN_PRESETS = {
  mnist: {
    ...BASE,
    data: "mnist:train",
    arch: FLOW_ARCHS["glow-mnist-wide"],
    kimg: 200,
    maxMinutes: 14,
  },
  "mnist-realnvp": {
    ...BASE,
    data: "mnist:train",
    arch: FLOW_ARCHS["realnvp-mnist"],
    maxMinutes: 14,
  },
  toy: {
    ...BASE,
    data: "toy:two-moons",
    arch: FLOW_ARCHS["glow-points"],
    batchSize: 256,
    kimg: 200,
    lr: 2e-3,
    lrRampupKimg: 5,
    checkpointKimg: 50,
    sampleKimg: 50,
    gridImages: 1000,
    gridTemperatures: [1],
  },
  "dinof-cifar10": {
    ...BASE,
    data: "cifar10:data/cifar-10-batches-bin",
    arch: FLOW_ARCHS["glow-dinof"],
    kimg: 50_000,
    lrRampupKimg: 500,
    emaHalfLifeKimg: 500,
    checkpointKimg: 500,
    sampleKimg: 500,
  },
} as const satisfies Record<string, FlowTrainConfig>;

/** Names of {@linkcode FLOW_TRAIN_PRESETS}. */
export type FlowPresetName = keyof typeof FLOW_TRAIN_PRESETS;

/**
 * Checks a flow training config.
 *
 * @param config The config.
 * @throws {RangeError} Naming the first invalid field and its valid range.
 * @example
 * ```ts
 * import { FLOW_TRAIN_PRESETS, validateFlowConfig } from "./flow_config.ts";
 * validateFlowConfig({ ...FLOW_TRAIN_PRESETS.mnist });
 * ```
 */
export function validateFlowConfig(config: FlowTrainConfig): void {
  validateRunConfig(config);
  const { arch } = config;
  const ints: [string, number, number][] = [["levels", arch.levels, 1], ["hidden", arch.hidden, 1]];
  if (arch.kind === "glow") ints.push(["steps", arch.steps, 1]);
  ints.push(["initBatch", config.initBatch, 1]);
  for (const [key, v, min] of ints) {
    if (!(Number.isInteger(v) && v >= min)) {
      throw new RangeError(`${key} must be an integer >= ${min}, got ${v}`);
    }
  }
  if (!(Number.isInteger(config.nBins) && config.nBins >= 2 && config.nBins <= 256)) {
    throw new RangeError(`nBins must be an integer in 2..256, got ${config.nBins}`);
  }
  if (!(config.clipGradNorm >= 0)) {
    throw new RangeError(`clipGradNorm must be >= 0, got ${config.clipGradNorm}`);
  }
  if (
    config.gridTemperatures.length === 0 ||
    !config.gridTemperatures.every((t) => t >= 0 && Number.isFinite(t))
  ) {
    throw new RangeError(`gridTemperatures must be numbers >= 0, got ${config.gridTemperatures}`);
  }
}
