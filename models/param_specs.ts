/**
 * Parameter specs: each parameter of a network as a dotted name, a shape and the initializer of
 * EDM's networks (Karras et al. 2022, `weight_init` in NVlabs/edm training/networks.py: Xavier-
 * uniform weights scaled by `init_weight`, zero biases, GroupNorm weight 1 and bias 0). A network
 * lists its specs once; init, parameter counts and the checks of loaded weights all read that list.
 *
 * @module
 */
import { constantVariable, type Params, uniformVariable } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";

/** How one parameter is shaped and initialized. */
export interface ParamSpec {
  /** Dotted name, e.g. "enc.32x32_block0.conv0.weight". */
  name: string;
  /** Shape of the tensor. */
  shape: number[];
  /**
   * Initializer: Xavier-uniform `U(-b, b)`, `b = gain * sqrt(6 / (fanIn + fanOut))` (as EDM's
   * `weight_init(mode="xavier_uniform")` times `init_weight`), or a constant.
   */
  init:
    | { kind: "xavierUniform"; fanIn: number; fanOut: number; gain: number }
    | { kind: "constant"; value: number };
}

/** Options of {@linkcode convSpecs}. */
export interface ConvSpecOptions {
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Square kernel size. @default 3 */
  kernel?: number;
  /** Scale of the Xavier-uniform weights (EDM's `init_weight`). @default 1 */
  gain?: number;
  /** Whether the layer has a (zero-initialized) bias. @default true */
  bias?: boolean;
}

/**
 * Parameter specs of a convolution: `name.weight` `[k, k, in, out]` and `name.bias` `[out]`.
 *
 * @example A 3x3 convolution from 3 to 32 channels
 * ```ts
 * import { convSpecs } from "./param_specs.ts";
 * const specs = convSpecs("enc.32x32_conv", { inChannels: 3, outChannels: 32 });
 * ```
 */
export function convSpecs(name: string, options: ConvSpecOptions): ParamSpec[] {
  const { inChannels, outChannels, kernel = 3, gain = 1, bias = true } = options;
  const fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel;
  const specs: ParamSpec[] = [{
    name: `${name}.weight`,
    shape: [kernel, kernel, inChannels, outChannels],
    init: { kind: "xavierUniform", fanIn, fanOut, gain },
  }];
  if (bias) {
    specs.push({
      name: `${name}.bias`,
      shape: [outChannels],
      init: { kind: "constant", value: 0 },
    });
  }
  return specs;
}

/** Options of {@linkcode linearSpecs}. */
export interface LinearSpecOptions {
  /** Input features. */
  inFeatures: number;
  /** Output features. */
  outFeatures: number;
  /** Scale of the Xavier-uniform weights. @default 1 */
  gain?: number;
  /** Whether the layer has a (zero-initialized) bias. @default true */
  bias?: boolean;
}

/**
 * Parameter specs of a linear layer: `name.weight` `[in, out]` and `name.bias` `[out]`.
 *
 * @example The first layer of the noise mapping
 * ```ts
 * import { linearSpecs } from "./param_specs.ts";
 * const specs = linearSpecs("map.layer0", { inFeatures: 32, outFeatures: 128 });
 * ```
 */
export function linearSpecs(name: string, options: LinearSpecOptions): ParamSpec[] {
  const { inFeatures, outFeatures, gain = 1, bias = true } = options;
  const specs: ParamSpec[] = [{
    name: `${name}.weight`,
    shape: [inFeatures, outFeatures],
    init: { kind: "xavierUniform", fanIn: inFeatures, fanOut: outFeatures, gain },
  }];
  if (bias) {
    specs.push({
      name: `${name}.bias`,
      shape: [outFeatures],
      init: { kind: "constant", value: 0 },
    });
  }
  return specs;
}

/**
 * Parameter specs of an affine GroupNorm over `channels`: weight ones, bias zeros.
 *
 * @example A GroupNorm over 32 channels
 * ```ts
 * import { normSpecs } from "./param_specs.ts";
 * const specs = normSpecs("out.norm", 32);
 * ```
 */
export function normSpecs(name: string, channels: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [channels], init: { kind: "constant", value: 1 } },
    { name: `${name}.bias`, shape: [channels], init: { kind: "constant", value: 0 } },
  ];
}

/**
 * Creates the variables of `specs`, drawing random ones from `rng` in list order.
 *
 * @returns New variables; the caller owns them (free with `disposeParams`).
 * @throws {RangeError} When two specs share a name.
 * @example Create the variables of a linear layer
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Rng } from "../core/rng.ts";
 * import { initParams, linearSpecs } from "./param_specs.ts";
 * const params = initParams(linearSpecs("fc", { inFeatures: 2, outFeatures: 4 }), new Rng(0));
 * ```
 */
export function initParams(specs: readonly ParamSpec[], rng: Rng): Params {
  const params: Params = {};
  for (const s of specs) {
    if (s.name in params) throw new RangeError(`duplicate parameter name "${s.name}"`);
    params[s.name] = s.init.kind === "constant"
      ? constantVariable(s.shape, s.init.value, s.name)
      : uniformVariable(
        s.shape,
        s.init.gain * Math.sqrt(6 / (s.init.fanIn + s.init.fanOut)),
        rng,
        s.name,
      );
  }
  return params;
}

/**
 * Checks that `params` holds every spec with the right shape.
 *
 * @throws {RangeError} Naming the first missing or mis-shaped parameter.
 * @example Check freshly made params
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Rng } from "../core/rng.ts";
 * import { checkParams, initParams, normSpecs } from "./param_specs.ts";
 * const specs = normSpecs("n", 8);
 * checkParams(specs, initParams(specs, new Rng(0))); // passes
 * ```
 */
export function checkParams(specs: readonly ParamSpec[], params: Params): void {
  for (const s of specs) {
    const v = params[s.name];
    if (v === undefined) {
      throw new RangeError(`missing parameter "${s.name}": build params with the same config`);
    }
    if (v.shape.length !== s.shape.length || v.shape.some((d, i) => d !== s.shape[i])) {
      throw new RangeError(
        `parameter "${s.name}" has shape [${v.shape}], expected [${s.shape}]: ` +
          `the params were made for another config`,
      );
    }
  }
}

/**
 * Number of scalars the specs describe (the network's parameter count), without allocating.
 *
 * @example Count the scalars of a GroupNorm
 * ```ts
 * import { countSpecs, normSpecs } from "./param_specs.ts";
 * countSpecs(normSpecs("n", 8)); // 16
 * ```
 */
export function countSpecs(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}
