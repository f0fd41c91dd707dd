/**
 * Contracts shared by the samplers (DESIGN.md "Core interfaces", STYLE.md "one signature for every
 * sampler"): common options, the per-step record handed to `onStep`, and the result.
 *
 * Every sampler is `async (denoiser, x, options) => Promise<SampleResult>`, where `x` is the
 * initial sample at the first time step (the caller scales the noise) and the steps are a
 * required option.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import type { Conditioning } from "../core/types.ts";
import type { SigmaSchedule } from "../schedules/types.ts";
import type { NoiseSource } from "../core/noise.ts";

/**
 * What a sampler reports after each step. The tensors belong to the sampler and are valid only
 * during the callback: clone what you keep.
 */
export interface StepRecord {
  /** Step index i, 0-based; the step goes from t_i to t_{i+1}. */
  i: number;
  /** Time t_i at the start of the step (equals sigma_i when sigma(t) = t). */
  t: number;
  /** Time t_{i+1} at the end of the step. */
  tNext: number;
  /** Noise level sigma(t_i). */
  sigma: number;
  /** Noise level sigma(t_{i+1}). */
  sigmaNext: number;
  /** Noise level the step starts from after churn (EDM Algorithm 2 t-hat); equals `sigma` in ODE samplers. */
  sigmaHat: number;
  /** The sample x_{i+1} after the step, in the sampler's (possibly scaled) space. */
  x: tf.Tensor;
  /** The denoiser's first estimate of the clean data in this step, D(x-hat_i / s; sigma-hat). */
  denoised: tf.Tensor;
  /** Denoiser evaluations so far, this step included. */
  nfe: number;
}

/** What a sampler returns. */
export interface SampleResult {
  /** The final sample x_N; the caller owns it and disposes it. */
  x: tf.Tensor;
  /** Number of denoiser evaluations (NFE) made. */
  nfe: number;
}

/** Options every sampler accepts. */
export interface SamplerOptions {
  /** Conditioning passed unchanged to every denoiser call. @default undefined */
  cond?: Conditioning;
  /** Called after each step with a {@linkcode StepRecord}; must not dispose its tensors. @default undefined */
  onStep?: (record: StepRecord) => void;
  /** Stops sampling between steps; the sampler rejects with `signal.reason`. @default undefined */
  signal?: AbortSignal;
  /**
   * Inpainting (sigma space, s(t) = 1): after every step the known pixels are replaced by the
   * known image noised to the step's end, `mask y + (1 - mask) x` with `y + sigma_{i+1} n`
   * (RePaint's / SDEdit's replacement, without resampling). @default undefined
   */
  known?: KnownRegion;
}

/** The known part of an image for inpainting (see {@linkcode SamplerOptions.known}). */
export interface KnownRegion {
  /** The known image y, shaped like x (or broadcastable to it). Not disposed by the sampler. */
  image: tf.Tensor;
  /** 1 where a pixel is known, 0 where it is to be generated, broadcastable to x. Not disposed. */
  mask: tf.Tensor;
  /** Noise for the known region, one generator per image. */
  noise: NoiseSource;
}

/**
 * Options of the ODE samplers (EDM Algorithm 1 and its Euler variant). Give either `sigmas`
 * (EDM's sigma(t) = t, s(t) = 1) or `timeSteps` together with `schedule` (any sigma(t), s(t),
 * e.g. the VP and VE rows of EDM Table 1); giving both, or neither, throws a TypeError.
 */
export interface OdeSamplerOptions extends SamplerOptions {
  /**
   * Noise levels sigma_0, ..., sigma_N, usually decreasing and ending in 0 (see `karrasSigmas`).
   * All but the last must be positive. @default undefined
   */
  sigmas?: Float64Array;
  /** Times t_0, ..., t_N for `schedule`; sigma(t_i) must be positive for i < N. @default undefined */
  timeSteps?: Float64Array;
  /** The process x(t) = s(t) (y + sigma(t) n) that `timeSteps` refers to. @default undefined */
  schedule?: SigmaSchedule;
}

/** Options of the samplers that step through a list of noise levels in sigma space (k-diffusion's). */
export interface SigmaStepOptions extends SamplerOptions {
  /** Noise levels sigma_0 > ... > sigma_N, usually ending in 0 (see `karrasSigmas`). Required. */
  sigmas: Float64Array;
}

/** Options of the stochastic k-diffusion samplers. */
export interface AncestralOptions extends SigmaStepOptions {
  /** Amount of fresh noise per step (0 is deterministic). @default 1 */
  eta?: number;
  /** Scale of the fresh noise (S_noise). @default 1 */
  sNoise?: number;
  /** Source of the fresh noise, one generator per image (`perImageNoise`); required when eta > 0. @default undefined */
  noise?: NoiseSource;
}
