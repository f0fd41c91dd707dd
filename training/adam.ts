/**
 * Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", Algorithm 1) with bias
 * correction, plus the learning-rate warm-up and gradient sanitizing of NVlabs/edm's training loop
 * (EDM Appendix F.1, `training/training_loop.py`: `lr * min(imagesSeen / rampup, 1)` and
 * `nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5)`).
 *
 * For step `t` with gradient `g` (Algorithm 1):
 * `m = beta1 m + (1 - beta1) g`, `v = beta2 v + (1 - beta2) g^2`,
 * `theta -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)`.
 * The bias corrections are folded into two scalars computed in float64 (as PyTorch does). On the
 * `wasm` and `cpu` backends the update runs as one JavaScript loop per parameter over the
 * backend's own memory, in place (as PyTorch's `foreach` Adam does): a network of 150 parameter
 * tensors otherwise costs about 1,500 tiny kernels per step, 75-110 ms of engine overhead on
 * unet-bench. Other backends, and buffers another tensor shares, take the element-wise kernels.
 *
 * The state is explicit: {@linkcode createAdam} returns the moment variables and the step count,
 * {@linkcode adamStep} updates them and the parameters in place, and
 * {@linkcode adamStateTensors} / {@linkcode adamScalars} / {@linkcode restoreAdam} move it through
 * checkpoints.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import { inPlaceViews } from "../core/blas/tensor_views.ts";
import {
  type AdamStepScalars,
  loadedNativeKernels,
  type NativeKernels,
  SCALED_ADD_KERNEL,
} from "../core/native/kernels.ts";

/** Hyperparameters of {@linkcode createAdam} and {@linkcode restoreAdam}. */
export interface AdamOptions {
  /** Decay of the first-moment estimate, in [0, 1). @default 0.9 */
  beta1?: number;
  /** Decay of the second-moment estimate, in [0, 1). @default 0.999 */
  beta2?: number;
  /** Added to the root of the second moment for numerical stability, > 0. @default 1e-8 */
  eps?: number;
  /**
   * Replace NaN gradients by 0 and +-Infinity by +-1e5 before the update, as EDM's training loop
   * does (`torch.nan_to_num`). @default true
   */
  nanToNum?: boolean;
}

/** Explicit Adam state: the parameters it updates, their moments and the step count. */
export interface AdamState {
  /** The parameters this state updates (the caller's variables, not copies). */
  readonly params: Params;
  /** First-moment estimates, one non-trainable variable per parameter name. Owned by the state. */
  readonly m: Record<string, tf.Variable>;
  /** Second-moment estimates, one non-trainable variable per parameter name. Owned by the state. */
  readonly v: Record<string, tf.Variable>;
  /** Number of steps taken so far (Algorithm 1's `t`). */
  t: number;
  /** Resolved hyperparameters. */
  readonly beta1: number;
  /** Resolved hyperparameters. */
  readonly beta2: number;
  /** Resolved hyperparameters. */
  readonly eps: number;
  /** Whether gradients are sanitized before the update. */
  readonly nanToNum: boolean;
}

/** Scalar (JSON) part of an Adam checkpoint. */
export interface AdamScalars {
  /** Steps taken so far. */
  t: number;
}

/** Options of {@linkcode adamStep}. */
export interface AdamStepOptions {
  /** Base learning rate, >= 0 (EDM: 10e-4 for CIFAR-10). Required. */
  lr: number;
  /**
   * Images seen before this step's batch (EDM's `cur_nimg`); when given, the learning rate is
   * ramped up linearly over `rampupImages` (see {@linkcode rampedLearningRate}).
   * @default undefined (no warm-up)
   */
  imagesSeen?: number;
  /** Warm-up length in images (EDM: `lr_rampup_kimg = 10000`); 0: none. @default 10_000_000 */
  rampupImages?: number;
  /**
   * Update in place on the `wasm` and `cpu` backends (one loop per parameter); `false` forces
   * the element-wise kernels. Both give the same values to float32 rounding. @default true
   */
  inPlace?: boolean;
}

/** Options of {@linkcode rampedLearningRate}. */
export interface RampOptions {
  /** Images seen before this step's batch, >= 0. Required. */
  imagesSeen: number;
  /** Warm-up length in images, >= 0; 0 turns the warm-up off. @default 10_000_000 */
  rampupImages?: number;
}

/**
 * EDM's learning-rate warm-up: `lr * min(imagesSeen / rampupImages, 1)` (EDM divides by
 * `max(rampupImages, 1e-8)`; here `rampupImages = 0` simply means no warm-up, full rate from the
 * first step). As in EDM, `imagesSeen` counts images before the current batch, so with a warm-up
 * the first step has rate 0 (Adam's moments still take that step's gradient in).
 *
 * @param lr Base learning rate.
 * @param options The progress and the warm-up length.
 * @returns The learning rate for this step.
 * @throws {RangeError} For a negative or non-finite rate, progress or warm-up length.
 * @example Half-way through the warm-up
 * ```ts
 * import { rampedLearningRate } from "./adam.ts";
 * const lr = rampedLearningRate(1e-3, { imagesSeen: 5e6, rampupImages: 1e7 }); // 5e-4
 * ```
 */
export function rampedLearningRate(lr: number, options: RampOptions): number {
  const { imagesSeen, rampupImages = 10_000_000 } = options;
  checkNonNegative("lr", lr, "pass a learning rate >= 0");
  checkNonNegative("imagesSeen", imagesSeen, "count images seen from 0");
  checkNonNegative("rampupImages", rampupImages, "use 0 to turn the warm-up off");
  // EDM's max(rampup, 1e-8) would give rate 0 at imagesSeen 0 even with no warm-up; 0 means off.
  if (rampupImages === 0) return lr;
  return lr * Math.min(imagesSeen / rampupImages, 1);
}

/**
 * Creates Adam state for `params`: zero moments (non-trainable variables) and `t = 0`.
 *
 * @param params The parameters to optimize; the state keeps a reference to them.
 * @param options Hyperparameters.
 * @returns A new state; the caller owns it and frees it with {@linkcode disposeAdam}.
 * @throws {RangeError} For betas outside [0, 1) or a non-positive eps.
 * @example Optimize one variable
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { adamStep, createAdam, disposeAdam } from "./adam.ts";
 * const params = { w: tf.variable(tf.scalar(1)) };
 * const adam = createAdam(params);
 * const grads = { w: tf.scalar(2) };
 * adamStep(adam, grads, { lr: 0.1 }); // w is now about 0.9
 * grads.w.dispose();
 * disposeAdam(adam);
 * ```
 */
export function createAdam(params: Params, options: AdamOptions = {}): AdamState {
  const hyper = resolveOptions(options);
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const [name, p] of Object.entries(params)) {
    m[name] = zerosVariable(p.shape);
    v[name] = zerosVariable(p.shape);
  }
  return { params, m, v, t: 0, ...hyper };
}

/**
 * One Adam step: updates `state.params`, the moments and `state.t` in place.
 * Parameters without an entry in `grads` are left untouched (like PyTorch's `grad is None`), but
 * the step count still advances.
 *
 * @param state State from {@linkcode createAdam} or {@linkcode restoreAdam}.
 * @param grads Gradients by parameter name; read, never disposed (the caller owns them).
 * @param options The base learning rate and the optional warm-up.
 * @returns The learning rate used in this step (after warm-up).
 * @throws {RangeError} For a gradient with an unknown name or a shape unlike its parameter.
 * @example Warm-up as in EDM
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { adamStep, createAdam } from "./adam.ts";
 * const params = { w: tf.variable(tf.scalar(1)) };
 * const adam = createAdam(params);
 * const grads = { w: tf.scalar(2) };
 * const lr = adamStep(adam, grads, { lr: 1e-3, imagesSeen: 512, rampupImages: 1024 }); // 5e-4
 * ```
 */
export function adamStep(
  state: AdamState,
  grads: Record<string, tf.Tensor>,
  options: AdamStepOptions,
): number {
  const { lr, imagesSeen, rampupImages, inPlace = true } = options;
  const lrNow = imagesSeen === undefined
    ? checkNonNegative("lr", lr, "pass a learning rate >= 0")
    : rampedLearningRate(lr, { imagesSeen, rampupImages });
  for (const [name, g] of Object.entries(grads)) {
    const p = state.params[name];
    if (!p || !state.m[name]) {
      throw new RangeError(
        `gradient "${name}" has no parameter in this Adam state: pass grads keyed like the params`,
      );
    }
    if (!shapesEqual(p.shape, g.shape)) {
      throw new RangeError(
        `gradient "${name}" has shape [${g.shape}] but its parameter has [${p.shape}]`,
      );
    }
  }
  const t = state.t + 1;
  const { beta1, beta2, eps, nanToNum } = state;
  // theta -= stepSize * m / (sqrt(v) / sqrt(1 - beta2^t) + eps), stepSize = lr / (1 - beta1^t).
  const stepSize = lrNow / (1 - beta1 ** t);
  const rootCorrection = Math.sqrt(1 - beta2 ** t);
  const step = { beta1, beta2, eps, nanToNum, stepSize, rootCorrection };
  const inPlaceDone = inPlace ? updateInPlace(state, grads, step) : new Set<string>();
  tf.tidy(() => {
    for (const [name, gIn] of Object.entries(grads)) {
      if (inPlaceDone.has(name)) continue;
      const g = nanToNum ? sanitize(gIn) : gIn;
      const m = state.m[name], v = state.v[name], p = state.params[name];
      const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      const denom = tf.add(tf.div(tf.sqrt(vNew), rootCorrection), eps);
      m.assign(mNew);
      v.assign(vNew);
      p.assign(tf.sub(p, tf.mul(tf.div(mNew, denom), stepSize)));
    }
  });
  state.t = t;
  return lrNow;
}

// The same update as the kernels below, over Float32Array views of the backend's memory. Returns
// the names it updated; a parameter whose p, m or v buffer is shared with another tensor (a
// clone, say) is left to the kernels, which replace buffers instead of writing into them.
function updateInPlace(
  state: AdamState,
  grads: Record<string, tf.Tensor>,
  s: AdamStepScalars,
): Set<string> {
  const done = new Set<string>();
  const update = nativeAdam() ?? adamLoop;
  for (const [key, grad] of Object.entries(grads)) {
    const views = inPlaceViews([state.params[key], state.m[key], state.v[key]], [grad]);
    if (views === null) continue;
    const [p, m, v, g] = views;
    update(p, m, v, g, s);
    done.add(key);
  }
  return done;
}

// One parameter's step in place, on this thread.
function adamLoop(
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  s: AdamStepScalars,
): void {
  const { beta1, beta2, eps, nanToNum, stepSize, rootCorrection } = s;
  const c1 = 1 - beta1, c2 = 1 - beta2;
  for (let i = 0; i < g.length; i++) {
    let gi = g[i];
    // nan_to_num: NaN -> 0, +-Infinity -> +-1e5 (finite float32 values pass unchanged).
    if (nanToNum && !(Math.abs(gi) <= 3.5e38)) gi = gi !== gi ? 0 : gi > 0 ? 1e5 : -1e5;
    const mi = Math.fround(beta1 * m[i] + c1 * gi);
    const vi = Math.fround(beta2 * v[i] + c2 * (gi * gi));
    m[i] = mi;
    v[i] = vi;
    p[i] -= stepSize * (mi / (Math.sqrt(vi) / rootCorrection + eps));
  }
}

// adamLoop on all threads (core/native), where the wasm backend runs the fused kernels: the loop
// is one thread's work beside the network's kernels. Bit for bit the same floats.
function nativeAdam(): NativeKernels["adam"] | null {
  const kernels = loadedNativeKernels();
  const backend = tf.getBackend();
  if (!kernels || backend !== "wasm" || !tf.getKernel(SCALED_ADD_KERNEL, backend)) return null;
  return kernels.adam;
}

/**
 * The tensor part of an Adam checkpoint, named `adam.m.<param>` and `adam.v.<param>`.
 *
 * @param state The state to save.
 * @returns The state's own variables (not copies): read or save them, never dispose them.
 * @example Save beside the weights
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { adamScalars, adamStateTensors, createAdam } from "./adam.ts";
 * const adam = createAdam({ w: tf.variable(tf.zeros([2])) });
 * const tensors = adamStateTensors(adam); // { "adam.m.w": ..., "adam.v.w": ... }
 * const json = JSON.stringify(adamScalars(adam)); // {"t":0}
 * ```
 */
export function adamStateTensors(state: AdamState): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const name of Object.keys(state.m)) {
    out[`adam.m.${name}`] = state.m[name];
    out[`adam.v.${name}`] = state.v[name];
  }
  return out;
}

/**
 * The scalar part of an Adam checkpoint (JSON-serializable).
 *
 * @param state The state to save.
 * @returns `{ t }`, the number of steps taken.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { adamScalars, createAdam } from "./adam.ts";
 * const { t } = adamScalars(createAdam({ w: tf.variable(tf.zeros([1])) })); // 0
 * ```
 */
export function adamScalars(state: AdamState): AdamScalars {
  return { t: state.t };
}

/** What {@linkcode restoreAdam} reads: the saved tensors and scalars, plus hyperparameters. */
export interface RestoreAdamOptions extends AdamOptions {
  /** Tensors from {@linkcode adamStateTensors} (read, never disposed). Required. */
  tensors: Record<string, tf.Tensor>;
  /** Scalars from {@linkcode adamScalars}. Required. */
  scalars: AdamScalars;
}

/**
 * Rebuilds Adam state for `params` from a checkpoint; the next steps equal those the saved state
 * would have taken.
 *
 * @param params The parameters to optimize (already restored by the caller).
 * @param options The saved tensors and scalars, and hyperparameters (as at creation).
 * @returns A new state owning fresh variables; the caller frees it with {@linkcode disposeAdam}.
 * @throws {RangeError} For a missing tensor, a shape mismatch or an invalid step count.
 * @example Round trip
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { adamScalars, adamStateTensors, createAdam, restoreAdam } from "./adam.ts";
 * const params = { w: tf.variable(tf.zeros([2])) };
 * const saved = createAdam(params);
 * const adam = restoreAdam(params, {
 *   tensors: adamStateTensors(saved),
 *   scalars: adamScalars(saved),
 * });
 * ```
 */
export function restoreAdam(params: Params, options: RestoreAdamOptions): AdamState {
  const { tensors, scalars, ...rest } = options;
  const hyper = resolveOptions(rest);
  const { t } = scalars;
  if (!Number.isInteger(t) || t < 0) {
    throw new RangeError(`Adam step count t must be an integer >= 0, got ${t}`);
  }
  for (const [name, p] of Object.entries(params)) {
    for (const key of [`adam.m.${name}`, `adam.v.${name}`]) {
      const saved = tensors[key];
      if (!saved) {
        throw new RangeError(`checkpoint lacks "${key}": save it with adamStateTensors()`);
      }
      if (!shapesEqual(saved.shape, p.shape)) {
        throw new RangeError(
          `checkpoint "${key}" has shape [${saved.shape}] but parameter "${name}" has [${p.shape}]`,
        );
      }
    }
  }
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const name of Object.keys(params)) {
    m[name] = copyVariable(tensors[`adam.m.${name}`]);
    v[name] = copyVariable(tensors[`adam.v.${name}`]);
  }
  return { params, m, v, t, ...hyper };
}

/**
 * Frees the moment variables of `state` (not its parameters).
 *
 * @param state The state to free; unusable afterwards.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { createAdam, disposeAdam } from "./adam.ts";
 * disposeAdam(createAdam({ w: tf.variable(tf.zeros([1])) }));
 * ```
 */
export function disposeAdam(state: AdamState): void {
  for (const x of Object.values(state.m)) x.dispose();
  for (const x of Object.values(state.v)) x.dispose();
}

// EDM's torch.nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5); finite values pass unchanged.
function sanitize(g: tf.Tensor): tf.Tensor {
  const noNan = tf.where(tf.isNaN(g), tf.zerosLike(g), g);
  return tf.where(tf.isInf(noNan), tf.clipByValue(noNan, -1e5, 1e5), noNan);
}

function resolveOptions(options: AdamOptions): Required<AdamOptions> {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, nanToNum = true } = options;
  for (const [name, b] of [["beta1", beta1], ["beta2", beta2]] as const) {
    if (!(b >= 0 && b < 1)) {
      throw new RangeError(`Adam ${name} must be in [0, 1), got ${b}: try 0.9 / 0.999`);
    }
  }
  if (!(eps > 0) || !Number.isFinite(eps)) {
    throw new RangeError(`Adam eps must be a finite number > 0, got ${eps}: try 1e-8`);
  }
  return { beta1, beta2, eps, nanToNum };
}

function zerosVariable(shape: number[]): tf.Variable {
  const z = tf.zeros(shape, "float32");
  const out = tf.variable(z, false);
  z.dispose(); // the variable holds its own reference to the data
  return out;
}

// tfjs tensor data is immutable and assign() swaps it, so sharing the caller's data is safe.
function copyVariable(x: tf.Tensor): tf.Variable {
  const f = x.dtype === "float32" ? x : tf.cast(x, "float32");
  const out = tf.variable(f, false);
  if (f !== x) f.dispose();
  return out;
}

function checkNonNegative(name: string, x: number, fix: string): number {
  if (!(x >= 0) || !Number.isFinite(x)) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${x}: ${fix}`);
  }
  return x;
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
