/**
 * Flag specs that several tasks share, written once so their names, defaults and help agree.
 *
 * @module
 */
import { BACKEND_CHOICES } from "../core/engine.ts";

/** `--backend`: the tfjs backend, overriding `DIFFUSE_BACKEND`. */
export const BACKEND_FLAG = {
  type: "string",
  choices: BACKEND_CHOICES,
  help: "tfjs backend (env DIFFUSE_BACKEND)",
} as const;

/** `--seeds`: one image per seed. */
export const SEEDS_FLAG = {
  type: "string",
  default: "0-63",
  help: "seeds, one image each: 0-63 or 1,5,9",
} as const;

/** `--batch` for sampling and evaluation. */
export const SAMPLE_BATCH_FLAG = {
  type: "int",
  default: 64,
  min: 1,
  help: "images per batch",
} as const;

/** `--weights`: EMA or raw weights of a checkpoint. */
export const WEIGHTS_FLAG = {
  type: "string",
  default: "ema",
  choices: ["ema", "raw"],
  help: "which weights",
} as const;

/** `--images-dir`: one PNG per image, named after its seed. */
export const IMAGES_DIR_FLAG = {
  type: "string",
  help: "also write one PNG per image here",
} as const;
