/**
 * A configurable U-Net in the style of DDPM++ (Song et al. 2021) as EDM re-implements it
 * (EDM, Karras et al. 2022, Appendix B.1 and Table 7, config F's network `SongUNet`), written as
 * pure functions over a flat {@linkcode Params} map: {@linkcode initUNetParams} makes the weights,
 * {@linkcode unetNetwork} turns any weights of the same config (raw or EMA) into the raw network
 * `F(x; c_noise)` that EDM's preconditioning (eq. 7) wraps.
 *
 * Architecture (shared/bench/unet-bench.md defines the miniature exactly; this is its general form):
 * - Mapping: `c_noise` -> positional or Fourier embedding (`modelChannels` wide) [+ Linear(labels)]
 *   [+ Linear(augment labels, no bias)] -> Linear -> SiLU -> Linear -> SiLU = `emb`
 *   (`channelMultEmb * modelChannels` wide).
 * - Residual block: `h = conv3x3(SiLU(GN(x)))`, `h += Linear(emb)`, `h = conv3x3(dropout(SiLU(GN(h))))`,
 *   `out = (h + skip(x)) / sqrt(2)`, skip a 1x1 conv when channels change; at a resolution in
 *   `attnResolutions` it is followed by `out = (out + proj(attn(GN(out)))) / sqrt(2)`.
 * - Encoder: conv3x3 at full resolution, then per level a down block (2x2 average pool after the
 *   first GN+SiLU and on the skip) except at level 0, then `numBlocks` blocks. Every output is kept.
 * - Decoder: per level from the coarsest, an up block (nearest 2x) except at the coarsest, then
 *   `numBlocks + 1` blocks, each on the concatenation of the running features and the last kept
 *   encoder output. Output: conv3x3(SiLU(GN(h))).
 *
 * Where this differs from EDM's SongUNet, it follows unet-bench: no extra bottleneck blocks
 * (`in0`, `in1`); attention after every decoder block at an attention resolution (not only the
 * last); down/up blocks resample the skip without a 1x1 projection; GroupNorm eps 1e-5; the
 * positional embedding is `[cos, sin]` with frequencies `(1/10000)^(i/half)` (no end point).
 *
 * Initialization follows SongUNet: Xavier-uniform weights and zero biases everywhere; the second
 * conv of each block, the attention output projection and the final conv scaled by 1e-5
 * ("init_zero"), the q|k|v projection by sqrt(0.2); GroupNorm weight 1, bias 0.
 *
 * The Fourier embedding's fixed frequencies are not parameters: they are recomputed from
 * `fourierSeed` (see `fourierFrequencies`), so they never reach an optimizer or EMA and a
 * checkpoint's config alone restores them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import type { ApplyOptions, Conditioning, Network } from "../core/types.ts";
import {
  conv2d,
  defaultGroups,
  type DenseWeights,
  downsample,
  dropout,
  fourierEmbedding,
  fourierFrequencies,
  groupNorm,
  linear,
  type NormWeights,
  positionalEmbedding,
  scaledAdd,
  selfAttention,
  silu,
  upsample,
} from "./layers.ts";
import {
  checkParams,
  convSpecs,
  initParams,
  linearSpecs,
  normSpecs,
  type ParamSpec,
} from "./param_specs.ts";

/** Configuration of a U-Net; optional fields have the documented defaults. */
export interface UNetConfig {
  /** Height and width of the square images; must divide by `2^(channelMult.length - 1)`. */
  imgResolution: number;
  /** Channels of the input images. */
  inChannels: number;
  /** Channels of the output. */
  outChannels: number;
  /** Base channel count (even); level `i` has `modelChannels * channelMult[i]` channels. */
  modelChannels: number;
  /** Channel multiplier per resolution level; its length is the number of levels. */
  channelMult: readonly number[];
  /** Residual blocks per level in the encoder (the decoder has one more). */
  numBlocks: number;
  /** Resolutions (e.g. 16 for 16x16) whose blocks are followed by self-attention. */
  attnResolutions: readonly number[];
  /** Width of `emb` in multiples of `modelChannels`. @default 4 */
  channelMultEmb?: number;
  /** Dropout probability before each block's second conv, when training. @default 0 */
  dropout?: number;
  /** Noise embedding: "positional" (DDPM++) or "fourier" (NCSN++). @default "positional" */
  embedding?: "positional" | "fourier";
  /** Standard deviation of the Fourier frequencies. @default 16 */
  fourierScale?: number;
  /** Seed the Fourier frequencies are drawn from (not stored as parameters). @default 0 */
  fourierSeed?: number;
  /** Class-label width (one-hot); 0 = unconditional. @default 0 */
  labelDim?: number;
  /** Probability of dropping a row's class label when training (classifier-free guidance). @default 0 */
  labelDropout?: number;
  /** Augmentation-label width (EDM's augment pipe gives 9); 0 = none. @default 0 */
  augmentDim?: number;
}

/** A {@linkcode UNetConfig} with every default filled in. */
export type ResolvedUNetConfig = Readonly<Required<UNetConfig>>;

/**
 * Fills in defaults and validates a config.
 *
 * @returns A new, fully specified config.
 * @throws {RangeError} For a resolution that does not divide by `2^(levels - 1)`, an attention
 *   resolution that no level has, channel counts GroupNorm cannot split, or out-of-range values.
 * @throws {TypeError} For an unknown embedding.
 * @example Validate an MNIST config
 * ```ts
 * import { resolveUNetConfig } from "./unet.ts";
 * const cfg = resolveUNetConfig({
 *   imgResolution: 28, inChannels: 1, outChannels: 1, modelChannels: 32,
 *   channelMult: [1, 2, 2], numBlocks: 1, attnResolutions: [7],
 * });
 * ```
 */
export function resolveUNetConfig(config: UNetConfig): ResolvedUNetConfig {
  const {
    imgResolution,
    inChannels,
    outChannels,
    modelChannels,
    channelMult,
    numBlocks,
    attnResolutions,
    channelMultEmb = 4,
    dropout = 0,
    embedding = "positional",
    fourierScale = 16,
    fourierSeed = 0,
    labelDim = 0,
    labelDropout = 0,
    augmentDim = 0,
  } = config;
  positiveInt("imgResolution", imgResolution);
  positiveInt("inChannels", inChannels);
  positiveInt("outChannels", outChannels);
  positiveInt("modelChannels", modelChannels);
  if (modelChannels % 2 !== 0) {
    throw new RangeError(`modelChannels ${modelChannels} must be even (the embedding is cos|sin)`);
  }
  if (!Array.isArray(channelMult) || channelMult.length === 0) {
    throw new RangeError(`channelMult must list one multiplier per level, e.g. [1, 2, 2]`);
  }
  channelMult.forEach((m, i) => positiveInt(`channelMult[${i}]`, m));
  positiveInt("numBlocks", numBlocks);
  positiveInt("channelMultEmb", channelMultEmb);
  nonNegativeInt("labelDim", labelDim);
  nonNegativeInt("augmentDim", augmentDim);
  probability("dropout", dropout);
  probability("labelDropout", labelDropout);
  if (embedding !== "positional" && embedding !== "fourier") {
    throw new TypeError(`embedding "${embedding}" is unknown: use "positional" or "fourier"`);
  }
  if (!(fourierScale > 0)) throw new RangeError(`fourierScale ${fourierScale} must be > 0`);
  if (!Number.isFinite(fourierSeed)) {
    throw new RangeError(`fourierSeed ${fourierSeed} must be finite`);
  }
  const levels = channelMult.length;
  const factor = 2 ** (levels - 1);
  if (imgResolution % factor !== 0) {
    throw new RangeError(
      `imgResolution ${imgResolution} does not divide by 2^(${levels} levels - 1) = ${factor}: ` +
        `use a multiple of ${factor} or fewer channelMult levels`,
    );
  }
  const resolutions = channelMult.map((_, l) => imgResolution / 2 ** l);
  for (const r of attnResolutions) {
    if (!resolutions.includes(r)) {
      throw new RangeError(
        `attnResolutions has ${r}, but the levels are at ${resolutions.join(", ")}: ` +
          `list only these resolutions`,
      );
    }
  }
  return {
    imgResolution,
    inChannels,
    outChannels,
    modelChannels,
    channelMult: [...channelMult],
    numBlocks,
    attnResolutions: [...attnResolutions],
    channelMultEmb,
    dropout,
    embedding,
    fourierScale,
    fourierSeed,
    labelDim,
    labelDropout,
    augmentDim,
  };
}

/** One residual block of the plan. */
interface BlockPlan {
  name: string;
  inChannels: number;
  outChannels: number;
  resample: "none" | "down" | "up";
  attention: boolean;
  /** Decoder blocks first concatenate the last kept encoder output. */
  takesSkip: boolean;
}

interface UNetPlan {
  cfg: ResolvedUNetConfig;
  inConv: string;
  enc: BlockPlan[];
  dec: BlockPlan[];
  finalChannels: number;
  specs: ParamSpec[];
}

const INIT_ZERO = 1e-5; // SongUNet's init_weight for layers that start near zero
const INIT_ATTN = Math.sqrt(0.2); // SongUNet's init_weight for the q|k|v projection
const SKIP_SCALE = Math.SQRT1_2;

function planUNet(config: UNetConfig): UNetPlan {
  const cfg = resolveUNetConfig(config);
  const { imgResolution: r, modelChannels: mc, channelMult, numBlocks } = cfg;
  const levels = channelMult.length;
  const res = (l: number) => r / 2 ** l;
  const attn = (l: number) => cfg.attnResolutions.includes(res(l));
  const enc: BlockPlan[] = [];
  const kept = [mc];
  let c = mc;
  for (let l = 0; l < levels; l++) {
    const tag = `enc.${res(l)}x${res(l)}`;
    if (l > 0) {
      enc.push(block(`${tag}_down`, c, c, "down", false, false));
      kept.push(c);
    }
    for (let i = 0; i < numBlocks; i++) {
      const co = mc * channelMult[l];
      enc.push(block(`${tag}_block${i}`, c, co, "none", attn(l), false));
      c = co;
      kept.push(c);
    }
  }
  const dec: BlockPlan[] = [];
  for (let l = levels - 1; l >= 0; l--) {
    const tag = `dec.${res(l)}x${res(l)}`;
    if (l < levels - 1) dec.push(block(`${tag}_up`, c, c, "up", false, false));
    for (let i = 0; i <= numBlocks; i++) {
      const co = mc * channelMult[l];
      dec.push(block(`${tag}_block${i}`, c + kept.pop()!, co, "none", attn(l), true));
      c = co;
    }
  }
  const inConv = `enc.${r}x${r}_conv`;
  const specs = unetSpecs(cfg, inConv, [...enc, ...dec], c);
  return { cfg, inConv, enc, dec, finalChannels: c, specs };
}

function block(
  name: string,
  inChannels: number,
  outChannels: number,
  resample: BlockPlan["resample"],
  attention: boolean,
  takesSkip: boolean,
): BlockPlan {
  for (const ch of [inChannels, outChannels]) {
    if (ch % defaultGroups(ch) !== 0) {
      throw new RangeError(
        `${name}: GroupNorm cannot split ${ch} channels into min(32, floor(${ch} / 4)) = ` +
          `${defaultGroups(ch)} groups: choose modelChannels and channelMult so that every ` +
          `channel count (and every sum of two at the decoder's concatenations) divides evenly`,
      );
    }
  }
  return { name, inChannels, outChannels, resample, attention, takesSkip };
}

function unetSpecs(
  cfg: ResolvedUNetConfig,
  inConv: string,
  blocks: BlockPlan[],
  finalChannels: number,
): ParamSpec[] {
  const mc = cfg.modelChannels, embCh = cfg.channelMultEmb * mc;
  const specs: ParamSpec[] = [];
  if (cfg.labelDim > 0) {
    specs.push(...linearSpecs("map.label", { inFeatures: cfg.labelDim, outFeatures: mc }));
  }
  if (cfg.augmentDim > 0) {
    specs.push(
      ...linearSpecs("map.augment", { inFeatures: cfg.augmentDim, outFeatures: mc, bias: false }),
    );
  }
  specs.push(...linearSpecs("map.layer0", { inFeatures: mc, outFeatures: embCh }));
  specs.push(...linearSpecs("map.layer1", { inFeatures: embCh, outFeatures: embCh }));
  specs.push(...convSpecs(inConv, { inChannels: cfg.inChannels, outChannels: mc }));
  for (const b of blocks) {
    const { name, inChannels: ci, outChannels: co } = b;
    specs.push(...normSpecs(`${name}.norm0`, ci));
    specs.push(...convSpecs(`${name}.conv0`, { inChannels: ci, outChannels: co }));
    specs.push(...linearSpecs(`${name}.affine`, { inFeatures: embCh, outFeatures: co }));
    specs.push(...normSpecs(`${name}.norm1`, co));
    specs.push(...convSpecs(`${name}.conv1`, { inChannels: co, outChannels: co, gain: INIT_ZERO }));
    if (ci !== co) {
      specs.push(...convSpecs(`${name}.skip`, { inChannels: ci, outChannels: co, kernel: 1 }));
    }
    if (b.attention) {
      specs.push(...normSpecs(`${name}.norm2`, co));
      specs.push(
        ...convSpecs(`${name}.qkv`, {
          inChannels: co,
          outChannels: 3 * co,
          kernel: 1,
          gain: INIT_ATTN,
        }),
      );
      specs.push(
        ...convSpecs(`${name}.proj`, {
          inChannels: co,
          outChannels: co,
          kernel: 1,
          gain: INIT_ZERO,
        }),
      );
    }
  }
  specs.push(...normSpecs("out.norm", finalChannels));
  specs.push(
    ...convSpecs("out.conv", {
      inChannels: finalChannels,
      outChannels: cfg.outChannels,
      gain: INIT_ZERO,
    }),
  );
  return specs;
}

/**
 * The names, shapes and initializers of a U-Net's parameters, in init order.
 *
 * @returns A new list; sum the shape products for the parameter count without allocating.
 * @throws {RangeError} As {@linkcode resolveUNetConfig}.
 * @example Count parameters without making them
 * ```ts
 * import { unetParamSpecs } from "./unet.ts";
 * import { UNET_PRESETS } from "./unet_presets.ts";
 * const n = unetParamSpecs(UNET_PRESETS["unet-bench"])
 *   .reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0); // 1592643
 * ```
 */
export function unetParamSpecs(config: UNetConfig): ParamSpec[] {
  return planUNet(config).specs;
}

/**
 * Creates a U-Net's parameters with SongUNet's initialization, drawing from `rng`.
 *
 * @param config The architecture.
 * @param rng Source of the random weights (advanced by the draws).
 * @returns New variables named like "enc.32x32_block0.conv0.weight"; the caller owns them
 *   (free them with `disposeParams`).
 * @throws {RangeError} As {@linkcode resolveUNetConfig}.
 * @example Initialize the MNIST preset
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Rng } from "../core/rng.ts";
 * import { initUNetParams } from "./unet.ts";
 * import { UNET_PRESETS } from "./unet_presets.ts";
 * const params = initUNetParams(UNET_PRESETS["mnist-small"], new Rng(0));
 * ```
 */
export function initUNetParams(config: UNetConfig, rng: Rng): Params {
  return initParams(planUNet(config).specs, rng);
}

/**
 * The raw network `F(x; c_noise, cond)` of a U-Net, applying `params` (for example EMA weights)
 * on each call. The network only reads the variables, so later updates to them are seen.
 *
 * Inputs: `x` `[N, R, R, inChannels]`, `cNoise` `[N]`; `cond.classLabels` `[N, labelDim]` (zeros
 * when missing, i.e. unconditional), `cond.augmentLabels` `[N, augmentDim]` (skipped when missing).
 * With `opts.training`, dropout and label dropout draw their masks from `opts.uniform`.
 * Synchronous tf ops only, so it runs inside `tf.variableGrads`.
 *
 * @param config The architecture the params were made for.
 * @param params Weights from {@linkcode initUNetParams} (or loaded with the same names and shapes).
 * @returns A {@linkcode Network}; each call returns a new `[N, R, R, outChannels]` tensor that the
 *   caller owns, and disposes all its intermediates.
 * @throws {RangeError} When `params` lack a parameter or have a wrong shape (at construction), or
 *   inputs have wrong shapes (at call).
 * @example Evaluate a freshly initialized network
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { initUNetParams, unetNetwork } from "./unet.ts";
 * import { UNET_PRESETS } from "./unet_presets.ts";
 * const config = UNET_PRESETS["mnist-small"];
 * const net = unetNetwork(config, initUNetParams(config, new Rng(0)));
 * const y = net(tf.zeros([2, 28, 28, 1]), tf.tensor1d([0, 0.5])); // [2, 28, 28, 1]
 * ```
 */
export function unetNetwork(config: UNetConfig, params: Params): Network {
  const plan = planUNet(config);
  checkParams(plan.specs, params);
  const { cfg } = plan;
  const freqs = cfg.embedding === "fourier"
    ? fourierFrequencies(cfg.modelChannels, { scale: cfg.fourierScale, seed: cfg.fourierSeed })
    : null;
  const dense = (name: string): DenseWeights => ({
    weight: params[`${name}.weight`],
    bias: params[`${name}.bias`],
  });
  const norm = (name: string): NormWeights => ({
    weight: params[`${name}.weight`],
    bias: params[`${name}.bias`],
  });

  function resBlock(x: tf.Tensor4D, emb: tf.Tensor2D, b: BlockPlan, ctx: CallContext): tf.Tensor4D {
    const resample = (t: tf.Tensor4D) =>
      b.resample === "down" ? downsample(t) : b.resample === "up" ? upsample(t) : t;
    let h = resample(groupNorm(x, norm(`${b.name}.norm0`), { silu: true }));
    h = conv2d(h, dense(`${b.name}.conv0`));
    const shift = linear(emb, dense(`${b.name}.affine`));
    h = groupNorm(h, norm(`${b.name}.norm1`), { silu: true, shift });
    if (ctx.training && cfg.dropout > 0) {
      h = dropout(h, { rate: cfg.dropout, uniform: ctx.uniform! });
    }
    h = conv2d(h, dense(`${b.name}.conv1`));
    let skip = resample(x);
    if (b.inChannels !== b.outChannels) skip = conv2d(skip, dense(`${b.name}.skip`));
    let out = scaledAdd(h, skip, SKIP_SCALE);
    if (b.attention) {
      const a = selfAttention(groupNorm(out, norm(`${b.name}.norm2`)), {
        qkv: dense(`${b.name}.qkv`),
        proj: dense(`${b.name}.proj`),
      });
      out = scaledAdd(out, a, SKIP_SCALE);
    }
    return out;
  }

  function mapping(
    cNoise: tf.Tensor1D,
    n: number,
    cond: Conditioning,
    ctx: CallContext,
  ): tf.Tensor2D {
    let emb = freqs
      ? fourierEmbedding(cNoise, freqs)
      : positionalEmbedding(cNoise, { channels: cfg.modelChannels });
    if (cfg.labelDim > 0) {
      let labels: tf.Tensor2D = cond.classLabels ?? tf.zeros([n, cfg.labelDim]);
      if (ctx.training && cfg.labelDropout > 0) {
        labels = tf.mul(
          labels,
          tf.cast(tf.greaterEqual(ctx.uniform!([n, 1]), cfg.labelDropout), "float32"),
        );
      }
      // SongUNet scales one-hot labels by sqrt(labelDim) so the input has unit mean square.
      emb = tf.add(emb, linear(tf.mul(labels, Math.sqrt(cfg.labelDim)), dense("map.label")));
    }
    if (cfg.augmentDim > 0 && cond.augmentLabels) {
      emb = tf.add(emb, linear(cond.augmentLabels, dense("map.augment")));
    }
    emb = silu(linear(emb, dense("map.layer0")));
    return silu(linear(emb, dense("map.layer1")));
  }

  return (x: tf.Tensor, cNoise: tf.Tensor1D, cond: Conditioning = {}, opts: ApplyOptions = {}) => {
    const n = checkInputs(cfg, x, cNoise, cond);
    const ctx: CallContext = { training: opts.training ?? false, uniform: opts.uniform };
    if (ctx.training && (cfg.dropout > 0 || cfg.labelDropout > 0) && !ctx.uniform) {
      throw new TypeError(
        `training with dropout ${cfg.dropout} / labelDropout ${cfg.labelDropout} needs ` +
          `opts.uniform (shape) => tensor of U[0, 1) draws`,
      );
    }
    return tf.tidy(() => {
      const emb = mapping(cNoise, n, cond, ctx);
      let h = conv2d(x as tf.Tensor4D, dense(plan.inConv));
      const kept: tf.Tensor4D[] = [h];
      for (const b of plan.enc) {
        h = resBlock(h, emb, b, ctx);
        kept.push(h);
      }
      for (const b of plan.dec) {
        if (b.takesSkip) h = tf.concat([h, kept.pop()!], 3);
        h = resBlock(h, emb, b, ctx);
      }
      return conv2d(groupNorm(h, norm("out.norm"), { silu: true }), dense("out.conv"));
    });
  };
}

interface CallContext {
  training: boolean;
  uniform?: (shape: number[]) => tf.Tensor;
}

function checkInputs(
  cfg: ResolvedUNetConfig,
  x: tf.Tensor,
  cNoise: tf.Tensor1D,
  cond: Conditioning,
): number {
  const r = cfg.imgResolution;
  const [n, h, w, c] = x.shape;
  if (x.rank !== 4 || h !== r || w !== r || c !== cfg.inChannels) {
    throw new RangeError(
      `U-Net input has shape [${x.shape}], expected [N, ${r}, ${r}, ${cfg.inChannels}] (NHWC)`,
    );
  }
  if (cNoise.rank !== 1 || cNoise.shape[0] !== n) {
    throw new RangeError(`cNoise has shape [${cNoise.shape}], expected [${n}] (one per image)`);
  }
  const labels: [string, tf.Tensor | undefined, number][] = [
    ["classLabels", cond.classLabels, cfg.labelDim],
    ["augmentLabels", cond.augmentLabels, cfg.augmentDim],
  ];
  for (const [name, t, dim] of labels) {
    if (t === undefined) continue;
    if (dim === 0) {
      throw new RangeError(
        `cond.${name} given, but the config's ${
          name === "classLabels" ? "labelDim" : "augmentDim"
        } is 0`,
      );
    }
    if (t.rank !== 2 || t.shape[0] !== n || t.shape[1] !== dim) {
      throw new RangeError(`cond.${name} has shape [${t.shape}], expected [${n}, ${dim}]`);
    }
  }
  return n;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name} ${v} must be a positive integer`);
  }
}

function nonNegativeInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new RangeError(`${name} ${v} must be a non-negative integer (0 disables it)`);
  }
}

function probability(name: string, v: number): void {
  if (!(v >= 0 && v < 1)) throw new RangeError(`${name} ${v} must be in [0, 1)`);
}
