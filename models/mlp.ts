/**
 * A small MLP network `F(x; c_noise)` for low-dimensional data (`[N, dim]` rows, e.g. 2-D toy
 * distributions), the vector counterpart of the U-Net: wrapped by a preconditioner (EDM eq. 7) it
 * is a denoiser for the toy experiments of EDM, DDPM and S2N.
 *
 * `h = SiLU(Linear([x, embed(c_noise), labels]))`, then `layers - 1` times
 * `h = SiLU(Linear(h))`, then `F = Linear(h)`. The noise embedding is EDM's positional (or random
 * Fourier) embedding; class labels, when `labelDim > 0`, are concatenated to the input (zeros when
 * missing). Initialization as EDM's SongUNet: Xavier-uniform weights, zero biases, and the output
 * layer scaled by 1e-5 so that a fresh network starts at `F ~ 0`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import type { ApplyOptions, Conditioning, Network } from "../core/types.ts";
import {
  type DenseWeights,
  fourierEmbedding,
  fourierFrequencies,
  linear,
  positionalEmbedding,
  silu,
} from "./layers.ts";
import { checkParams, initParams, linearSpecs, type ParamSpec } from "./param_specs.ts";

/** Configuration of an MLP network; optional fields have the documented defaults. */
export interface MlpConfig {
  /** Width D of the data rows (input and output). */
  dim: number;
  /** Width of the hidden layers. @default 128 */
  hidden?: number;
  /** Number of hidden layers (each Linear + SiLU). @default 3 */
  layers?: number;
  /** Width of the noise embedding (even). @default 32 */
  embedDim?: number;
  /** Noise embedding: "positional" or "fourier" (frequencies from `fourierSeed`). @default "positional" */
  embedding?: "positional" | "fourier";
  /** Standard deviation of the Fourier frequencies. @default 16 */
  fourierScale?: number;
  /** Seed of the Fourier frequencies (not stored as parameters). @default 0 */
  fourierSeed?: number;
  /** Class-label width (one-hot); 0 = unconditional. @default 0 */
  labelDim?: number;
}

/** An {@linkcode MlpConfig} with every default filled in. */
export type ResolvedMlpConfig = Readonly<Required<MlpConfig>>;

/**
 * Fills in defaults and validates an MLP config.
 *
 * @returns A new, fully specified config.
 * @throws {RangeError} For non-positive widths, an odd `embedDim`, or a negative `labelDim`.
 * @throws {TypeError} For an unknown embedding.
 * @example Defaults of a 2-D config
 * ```ts
 * import { resolveMlpConfig } from "./mlp.ts";
 * const cfg = resolveMlpConfig({ dim: 2 }); // hidden 128, layers 3, embedDim 32
 * ```
 */
export function resolveMlpConfig(config: MlpConfig): ResolvedMlpConfig {
  const {
    dim,
    hidden = 128,
    layers = 3,
    embedDim = 32,
    embedding = "positional",
    fourierScale = 16,
    fourierSeed = 0,
    labelDim = 0,
  } = config;
  for (const [name, v] of [["dim", dim], ["hidden", hidden], ["layers", layers]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${name} ${v} must be a positive integer`);
    }
  }
  if (!Number.isInteger(embedDim) || embedDim < 2 || embedDim % 2 !== 0) {
    throw new RangeError(`embedDim ${embedDim} must be a positive even integer (cos|sin halves)`);
  }
  if (!Number.isInteger(labelDim) || labelDim < 0) {
    throw new RangeError(`labelDim ${labelDim} must be a non-negative integer (0 = unconditional)`);
  }
  if (embedding !== "positional" && embedding !== "fourier") {
    throw new TypeError(`embedding "${embedding}" is unknown: use "positional" or "fourier"`);
  }
  if (!(fourierScale > 0)) throw new RangeError(`fourierScale ${fourierScale} must be > 0`);
  return { dim, hidden, layers, embedDim, embedding, fourierScale, fourierSeed, labelDim };
}

/**
 * The names, shapes and initializers of an MLP's parameters: "in", "hidden{i}" and "out" linears.
 *
 * @returns A new list, in init order.
 * @example Parameter names of a two-layer MLP
 * ```ts
 * import { mlpParamSpecs } from "./mlp.ts";
 * const names = mlpParamSpecs({ dim: 2, layers: 2 }).map((s) => s.name);
 * // ["in.weight", "in.bias", "hidden0.weight", "hidden0.bias", "out.weight", "out.bias"]
 * ```
 */
export function mlpParamSpecs(config: MlpConfig): ParamSpec[] {
  const cfg = resolveMlpConfig(config);
  const h = cfg.hidden;
  const specs = linearSpecs("in", {
    inFeatures: cfg.dim + cfg.embedDim + cfg.labelDim,
    outFeatures: h,
  });
  for (let i = 0; i < cfg.layers - 1; i++) {
    specs.push(...linearSpecs(`hidden${i}`, { inFeatures: h, outFeatures: h }));
  }
  specs.push(...linearSpecs("out", { inFeatures: h, outFeatures: cfg.dim, gain: 1e-5 }));
  return specs;
}

/**
 * Creates an MLP's parameters, drawing from `rng`.
 *
 * @returns New variables; the caller owns them (free them with `disposeParams`).
 * @example Initialize a 2-D MLP
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Rng } from "../core/rng.ts";
 * import { initMlpParams } from "./mlp.ts";
 * const params = initMlpParams({ dim: 2 }, new Rng(0));
 * ```
 */
export function initMlpParams(config: MlpConfig, rng: Rng): Params {
  return initParams(mlpParamSpecs(config), rng);
}

/**
 * The raw network `F(x; c_noise, cond)` of an MLP, applying `params` (e.g. EMA weights) on each
 * call. Inputs: `x` `[N, dim]`, `cNoise` `[N]`, `cond.classLabels` `[N, labelDim]` (zeros when
 * missing). No dropout, so `opts` is accepted and ignored.
 *
 * @param config The architecture the params were made for.
 * @param params Weights from {@linkcode initMlpParams}.
 * @returns A {@linkcode Network}; each call returns a new `[N, dim]` tensor the caller owns.
 * @throws {RangeError} When params do not match the config (at construction) or inputs have wrong
 *   shapes (at call).
 * @example Evaluate a fresh MLP
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { initMlpParams, mlpNetwork } from "./mlp.ts";
 * const net = mlpNetwork({ dim: 2 }, initMlpParams({ dim: 2 }, new Rng(0)));
 * const y = net(tf.zeros([4, 2]), tf.zeros([4])); // [4, 2]
 * ```
 */
export function mlpNetwork(config: MlpConfig, params: Params): Network {
  const cfg = resolveMlpConfig(config);
  checkParams(mlpParamSpecs(cfg), params);
  const freqs = cfg.embedding === "fourier"
    ? fourierFrequencies(cfg.embedDim, { scale: cfg.fourierScale, seed: cfg.fourierSeed })
    : null;
  const dense = (name: string): DenseWeights => ({
    weight: params[`${name}.weight`],
    bias: params[`${name}.bias`],
  });
  return (x: tf.Tensor, cNoise: tf.Tensor1D, cond: Conditioning = {}, _opts: ApplyOptions = {}) => {
    const n = x.shape[0];
    if (x.rank !== 2 || x.shape[1] !== cfg.dim) {
      throw new RangeError(`MLP input has shape [${x.shape}], expected [N, ${cfg.dim}]`);
    }
    if (cNoise.rank !== 1 || cNoise.shape[0] !== n) {
      throw new RangeError(`cNoise has shape [${cNoise.shape}], expected [${n}] (one per row)`);
    }
    const labels = cond.classLabels;
    if (
      labels && (cfg.labelDim === 0 || labels.shape[0] !== n || labels.shape[1] !== cfg.labelDim)
    ) {
      throw new RangeError(
        `cond.classLabels has shape [${labels.shape}], expected [${n}, ${cfg.labelDim}] ` +
          `(labelDim ${cfg.labelDim})`,
      );
    }
    return tf.tidy(() => {
      const emb = freqs
        ? fourierEmbedding(cNoise, freqs)
        : positionalEmbedding(cNoise, { channels: cfg.embedDim });
      const parts: tf.Tensor2D[] = [x as tf.Tensor2D, emb];
      if (cfg.labelDim > 0) parts.push(labels ?? tf.zeros([n, cfg.labelDim]));
      let h = silu(linear(tf.concat(parts, 1), dense("in")));
      for (let i = 0; i < cfg.layers - 1; i++) h = silu(linear(h, dense(`hidden${i}`)));
      return linear(h, dense("out"));
    });
  };
}
