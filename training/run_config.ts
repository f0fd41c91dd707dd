/**
 * The checks every training config shares (`validateEdmConfig`, `validateDdpmConfig`): run
 * length, batch, optimizer, EMA, cadence and grid fields, dropout, warm-up, decay and time limit.
 *
 * Not tied to a paper: input validation for the trainers.
 *
 * @module
 */

/** The fields every training config has. */
export interface RunConfigBase {
  /** Images per step. */
  batchSize: number;
  /** Training length in thousands of images. */
  kimg: number;
  /** Adam learning rate. */
  lr: number;
  /** EMA half-life in kimg. */
  emaHalfLifeKimg: number;
  /** Thousands of images between checkpoints. */
  checkpointKimg: number;
  /** Thousands of images between sample grids. */
  sampleKimg: number;
  /** Steps between metric lines. */
  logEvery: number;
  /** Images in a sample grid. */
  gridImages: number;
  /** Sampler steps of a sample grid. */
  gridSteps: number;
  /** Dropout probability. */
  dropout: number;
  /** Learning-rate warm-up in kimg. */
  lrRampupKimg: number;
  /** Linear learning-rate decay to 0 over the last this many kimg (0 or absent: constant rate). */
  lrDecayKimg?: number;
  /** Time limit in minutes (0: none). */
  maxMinutes: number;
}

/**
 * Checks the shared fields, throwing a RangeError that names the field and the valid range.
 *
 * @param config A training config.
 * @throws {RangeError} For the first invalid field.
 * @example
 * ```ts
 * import { EDM_PRESETS } from "./edm_config.ts";
 * import { validateRunConfig } from "./run_config.ts";
 * validateRunConfig({ ...EDM_PRESETS.mnist });
 * ```
 */
export function validateRunConfig(config: RunConfigBase): void {
  const positive = [
    "batchSize",
    "kimg",
    "lr",
    "emaHalfLifeKimg",
    "checkpointKimg",
    "sampleKimg",
    "logEvery",
    "gridImages",
    "gridSteps",
  ] as const;
  for (const key of positive) {
    const v = config[key];
    if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      throw new RangeError(`${key} must be a positive number, got ${v}`);
    }
  }
  if (!(config.dropout >= 0 && config.dropout < 1)) {
    throw new RangeError(`dropout must be in [0, 1), got ${config.dropout}`);
  }
  if (!(config.lrRampupKimg >= 0)) {
    throw new RangeError(`lrRampupKimg must be >= 0, got ${config.lrRampupKimg}`);
  }
  const decay = config.lrDecayKimg ?? 0;
  if (!(decay >= 0 && decay <= config.kimg)) {
    throw new RangeError(`lrDecayKimg must be in [0, kimg = ${config.kimg}], got ${decay}`);
  }
  if (!(config.maxMinutes >= 0)) {
    throw new RangeError(`maxMinutes must be >= 0, got ${config.maxMinutes}`);
  }
}
