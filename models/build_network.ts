/**
 * From a training configuration and its dataset to a network: a typed {@linkcode ModelSpec}
 * (a discriminated union, stored in checkpoints so sampling rebuilds exactly the trained network)
 * and the pure init/forward pair for it. The network never knows which paper trains it.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";
import type { Params } from "../core/params.ts";
import type { Network } from "../core/types.ts";
import type { Dataset } from "../data/dataset.ts";
import { initUNetParams, type UNetConfig, unetNetwork, unetParamSpecs } from "./unet.ts";
import { UNET_PRESETS } from "./unet_presets.ts";
import { initMlpParams, type MlpConfig, mlpNetwork, mlpParamSpecs } from "./mlp.ts";

/** A complete description of a network. */
export type ModelSpec =
  | { kind: "unet"; name: string; config: UNetConfig }
  | { kind: "mlp"; name: string; config: MlpConfig };

/** What {@linkcode modelSpecFor} reads from a training configuration. */
export interface ModelChoice {
  /** A name from `UNET_PRESETS`, or "mlp". */
  model: string;
  /** Base channels override. */
  channels?: number;
  /** Channel multipliers override. */
  channelMult?: readonly number[];
  /** Blocks per level override. */
  numBlocks?: number;
  /** Dropout probability. */
  dropout?: number;
  /** Condition on class labels (when the dataset has them). */
  classConditional?: boolean;
  /** Width of the augmentation labels fed to the network (0: none). */
  augmentDim?: number;
}

/**
 * Resolves the network for `choice` on `dataset`: the preset, with its resolution and channels
 * taken from the data and the user's overrides applied.
 *
 * @throws {RangeError} For an unknown model name, or a U-Net on 2-D points (and vice versa).
 * @example
 * ```ts ignore
 * const spec = modelSpecFor({ model: "mnist-small" }, await loadDataset("mnist"));
 * ```
 */
export function modelSpecFor(choice: ModelChoice, dataset: Dataset): ModelSpec {
  const labelDim = choice.classConditional && dataset.numClasses > 0 ? dataset.numClasses : 0;
  if (choice.model === "mlp") {
    if (dataset.shape.length !== 1) {
      throw new RangeError(
        `model "mlp" is for point data, but ${dataset.name} holds images; use a U-Net preset ` +
          `(${Object.keys(UNET_PRESETS).join(", ")})`,
      );
    }
    const config: MlpConfig = {
      dim: dataset.shape[0],
      hidden: choice.channels ?? 128,
      layers: choice.numBlocks ?? 3,
      labelDim,
    };
    return { kind: "mlp", name: "mlp", config };
  }
  const preset = (UNET_PRESETS as Record<string, UNetConfig>)[choice.model];
  if (!preset) {
    throw new RangeError(
      `unknown model "${choice.model}": use one of ${Object.keys(UNET_PRESETS).join(", ")}, mlp`,
    );
  }
  if (dataset.shape.length !== 3) {
    throw new RangeError(
      `model "${choice.model}" is a U-Net for images; use --model mlp for ${dataset.name}`,
    );
  }
  const [h, w, c] = dataset.shape;
  if (h !== w) throw new RangeError(`the U-Net needs square images; ${dataset.name} has ${h}x${w}`);
  const config: UNetConfig = {
    ...preset,
    imgResolution: h,
    inChannels: c,
    outChannels: c,
    modelChannels: choice.channels ?? preset.modelChannels,
    channelMult: choice.channelMult ? [...choice.channelMult] : [...preset.channelMult],
    numBlocks: choice.numBlocks ?? preset.numBlocks,
    // Keep the preset's attention levels that exist at this resolution.
    attnResolutions: preset.attnResolutions.filter((r) =>
      levelResolutions(h, choice.channelMult?.length ?? preset.channelMult.length).includes(r)
    ),
    dropout: choice.dropout ?? preset.dropout ?? 0,
    labelDim,
    augmentDim: choice.augmentDim ?? 0,
  };
  return { kind: "unet", name: choice.model, config };
}

function levelResolutions(resolution: number, levels: number): number[] {
  return Array.from({ length: levels }, (_, i) => resolution / 2 ** i);
}

/** Init and forward of one {@linkcode ModelSpec}. */
export interface BuiltModel {
  /** Fresh parameters drawn from `rng`. */
  init(rng: Rng): Params;
  /** The network applying `params` (pure; EMA weights go through the same forward). */
  network(params: Params): Network;
}

/**
 * The init/forward pair of a spec.
 *
 * @example
 * ```ts ignore
 * const model = buildModel(spec);
 * const net = model.network(model.init(new Rng(0)));
 * ```
 */
export function buildModel(spec: ModelSpec): BuiltModel {
  if (spec.kind === "mlp") {
    return {
      init: (rng) => initMlpParams(spec.config, rng),
      network: (params) => mlpNetwork(spec.config, params),
    };
  }
  return {
    init: (rng) => initUNetParams(spec.config, rng),
    network: (params) => unetNetwork(spec.config, params),
  };
}

/**
 * The shape of one sample a spec's network maps: `[dim]` for an MLP, `[res, res, channels]` for
 * a U-Net.
 *
 * @param spec The network's spec.
 * @returns The sample shape.
 * @example
 * ```ts
 * import { sampleShape } from "./build_network.ts";
 * const spec = { kind: "mlp", name: "mlp", config: { dim: 2, hidden: 8, layers: 1 } } as const;
 * console.assert(sampleShape(spec).join() === "2");
 * ```
 */
export function sampleShape(spec: ModelSpec): number[] {
  return spec.kind === "mlp"
    ? [spec.config.dim]
    : [spec.config.imgResolution, spec.config.imgResolution, spec.config.inChannels];
}

/** One line describing a spec, for messages. */
export function describeSpec(spec: ModelSpec): string {
  if (spec.kind === "mlp") return `mlp(hidden ${spec.config.hidden}, layers ${spec.config.layers})`;
  const c = spec.config;
  return `${spec.name}(channels ${c.modelChannels}, mult [${c.channelMult}], blocks ${c.numBlocks}, ` +
    `labels ${c.labelDim ?? 0}, augment ${c.augmentDim ?? 0})`;
}

// Caps on a spec read from a file, checked before its parameter list is built (a hostile or
// damaged checkpoint must not make the loader plan a network of any size).
const SPEC_LIMITS = {
  imgResolution: 4096,
  inChannels: 64,
  outChannels: 64,
  modelChannels: 4096,
  numBlocks: 64,
  channelMultEmb: 64,
  labelDim: 100_000,
  augmentDim: 1024,
  dim: 1_000_000,
  hidden: 65_536,
  layers: 256,
  embedDim: 65_536,
} as const;
const UNET_REQUIRED = ["imgResolution", "inChannels", "outChannels", "modelChannels", "numBlocks"];
const MLP_REQUIRED = ["dim"];

/**
 * Checks a {@linkcode ModelSpec} that came from a file (its kind, that every size is an integer
 * in range) and lists its parameter shapes, without allocating any tensor.
 *
 * @param spec The untrusted spec, e.g. a checkpoint's `state.model`.
 * @returns The shape of every parameter, by name.
 * @throws {RangeError} Naming the field, its value and the allowed range.
 * @example
 * ```ts
 * import { modelParamShapes } from "./build_network.ts";
 * const shapes = modelParamShapes({ kind: "mlp", name: "mlp", config: { dim: 2 } });
 * ```
 */
export function modelParamShapes(spec: unknown): Record<string, number[]> {
  const s = spec as { kind?: unknown; config?: Record<string, unknown> } | null;
  if (s === null || typeof s !== "object" || typeof s.config !== "object" || s.config === null) {
    throw new RangeError("has no model description (state.model with kind and config)");
  }
  if (s.kind !== "unet" && s.kind !== "mlp") {
    throw new RangeError(`has unknown model kind ${JSON.stringify(s.kind)} (known: unet, mlp)`);
  }
  const config = s.config;
  for (const [key, max] of Object.entries(SPEC_LIMITS)) {
    const v = config[key];
    const required = (s.kind === "unet" ? UNET_REQUIRED : MLP_REQUIRED).includes(key);
    if (v === undefined && !required) continue;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max) {
      throw new RangeError(
        `has model ${key} = ${JSON.stringify(v)}; it must be an integer in 0..${max}`,
      );
    }
  }
  if (s.kind === "unet") {
    const mult = config.channelMult;
    if (
      !Array.isArray(mult) || mult.length < 1 || mult.length > 8 ||
      !mult.every((m) => Number.isInteger(m) && m >= 1 && m <= 64)
    ) {
      throw new RangeError(
        `has model channelMult = ${JSON.stringify(mult)}; it must be 1 to 8 integers in 1..64`,
      );
    }
    const attn = config.attnResolutions;
    if (!Array.isArray(attn) || attn.length > 16 || !attn.every((r) => Number.isInteger(r))) {
      throw new RangeError(
        `has model attnResolutions = ${JSON.stringify(attn)}; it must be integers`,
      );
    }
  }
  const specs = s.kind === "unet"
    ? unetParamSpecs(config as unknown as UNetConfig)
    : mlpParamSpecs(config as unknown as MlpConfig);
  return Object.fromEntries(specs.map((p) => [p.name, p.shape]));
}
