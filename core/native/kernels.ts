/**
 * The fused kernels of core/native/kernels.c through Deno FFI: GroupNorm (+ SiLU) forward and
 * gradient in two multi-threaded passes each, the U-Net's scaled residual sum, per-channel sums
 * over pixels (bias and shift gradients), the attention's scaled softmax and its gradient, 2x
 * pooling and upsampling, the pieces of a split along channels, and Adam's in-place step
 * (training/adam.ts).
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). The group normalization
 * has the contract of core/dnnl/group_norm.ts (same formulas, statistics in float64), so
 * core/blas/register.ts serves `DiffuseGroupNorm` and `DiffuseGroupNormGrad` from whichever is
 * available, this one first. `DIFFUSE_NATIVE=0` turns these kernels off; `DIFFUSE_NATIVE=PATH`
 * loads a prebuilt library instead of building one (core/native/build.ts).
 *
 * @module
 */
import { chooseOpenMpWait } from "../_openmp.ts";
import { pinLibrary } from "../_pin_library.ts";
import type { GroupNormKernels, GroupNormShape, GroupNormStats } from "../dnnl/group_norm.ts";
import { buildNativeKernels } from "./build.ts";
import { readEnv } from "../_permissions.ts";

/**
 * Name of the tfjs kernel `out = scale (x + y)` (inputs `x`, `y` of one shape; attr `scale`),
 * registered with the other native kernels (`core/blas/register.ts`); its gradient is `scale dy`
 * for both inputs (models/layers.ts `scaledAdd`).
 */
export const SCALED_ADD_KERNEL = "DiffuseScaledAdd";

/**
 * Name of the tfjs kernel of per-image, per-channel sums over the pixels (input `x` `[N, H, W, C]`
 * or `[rows, C]` as one image; output `[N, C]`, or `[C]` for rows): the gradients of the U-Net's
 * embedding shift and of bias additions, on all threads (tfjs-backend-wasm's Sum runs on one).
 */
export const CHANNEL_SUMS_KERNEL = "DiffuseChannelSums";

/**
 * Name of the tfjs kernel `y = softmax(scale x)` along the last axis (input `x`, attr `scale`):
 * self-attention's weights with the `1 / sqrt(C)` logit scale folded in. Its gradient is
 * {@linkcode SOFTMAX_GRAD_KERNEL} (models/layers.ts `scaledSoftmax`).
 */
export const SOFTMAX_KERNEL = "DiffuseSoftmax";

/**
 * Name of the tfjs kernel `dx = scale y (dy - sum(dy y))` along the last axis (inputs `y`, the
 * forward's output, and `dy`; attr `scale`): the gradient of {@linkcode SOFTMAX_KERNEL}.
 */
export const SOFTMAX_GRAD_KERNEL = "DiffuseSoftmaxGrad";

/**
 * Name of the tfjs kernel `y = scale * sum of x over each 2x2 window` (input `x` `[N, 2H, 2W, C]`,
 * attr `scale`; output `[N, H, W, C]`): average pooling (scale 1/4) and the gradient of nearest
 * upsampling (scale 1).
 */
export const POOL_KERNEL = "DiffusePool2x";

/**
 * Name of the tfjs kernel of GroupNorm (+ SiLU) on `x + shift` (inputs `x` `[N, H, W, C]`,
 * `shift` `[N, C]`, `gamma`, `beta`; attrs and outputs those of `DiffuseGroupNorm`), the sum never
 * written out: the U-Net's embedding shift and second normalization in one kernel when no
 * gradient is recorded (sampling). Registered with the fused kernels only.
 */
export const GROUP_NORM_SHIFT_KERNEL = "DiffuseGroupNormShift";

/**
 * Name of the tfjs kernel `y = scale * x` repeated over 2x2 windows (input `x` `[N, H, W, C]`,
 * attr `scale`; output `[N, 2H, 2W, C]`): nearest upsampling (scale 1) and the gradient of average
 * pooling (scale 1/4).
 */
export const UNPOOL_KERNEL = "DiffuseUnpool2x";

const SYMBOLS = {
  diffuse_group_norm: {
    parameters: [
      "buffer", // x
      "buffer", // shift ([n, c] added to x, or null)
      "buffer", // gamma
      "buffer", // beta
      "i64", // n
      "i64", // hw
      "i64", // c
      "i64", // groups
      "f32", // eps
      "i32", // silu
      "buffer", // y
      "buffer", // mean
      "buffer", // rstd
    ],
    result: "i32",
  },
  diffuse_group_norm_grad: {
    parameters: [
      "buffer", // dy
      "buffer", // x
      "buffer", // gamma
      "buffer", // beta (null without silu)
      "buffer", // mean
      "buffer", // rstd
      "i64", // n
      "i64", // hw
      "i64", // c
      "i64", // groups
      "i32", // silu
      "buffer", // dx
      "buffer", // dgamma
      "buffer", // dbeta
    ],
    result: "i32",
  },
  diffuse_channel_sums: {
    parameters: ["buffer", "i64", "i64", "i64", "buffer"],
    result: "i32",
  },
  diffuse_scaled_add: {
    parameters: ["buffer", "buffer", "i64", "f32", "buffer"],
    result: "void",
  },
  diffuse_pool2x: {
    parameters: ["buffer", "i64", "i64", "i64", "i64", "f32", "buffer"], // x, n, h, w, c, scale, y
    result: "void",
  },
  diffuse_unpool2x: {
    parameters: ["buffer", "i64", "i64", "i64", "i64", "f32", "buffer"], // x, n, h, w, c, scale, y
    result: "void",
  },
  diffuse_copy_columns: {
    parameters: ["buffer", "i64", "i64", "i64", "i64", "buffer"], // x, rows, c, offset, width, out
    result: "void",
  },
  diffuse_softmax: {
    parameters: ["buffer", "i64", "i64", "f32", "buffer"], // x, rows, cols, scale, y
    result: "void",
  },
  diffuse_softmax_grad: {
    parameters: ["buffer", "buffer", "i64", "i64", "f32", "buffer"], // y, dy, rows, cols, scale, dx
    result: "void",
  },
  diffuse_adam: {
    parameters: [
      "buffer", // p
      "buffer", // m
      "buffer", // v
      "buffer", // g
      "i64", // n
      "f64", // beta1
      "f64", // beta2
      "f64", // eps
      "f64", // stepSize
      "f64", // rootCorrection
      "i32", // nanToNum
    ],
    result: "void",
  },
} as const;

/** The scalars of one Adam step (training/adam.ts): `m = beta1 m + (1 - beta1) g`,
 * `v = beta2 v + (1 - beta2) g^2`, `p -= stepSize m / (sqrt(v) / rootCorrection + eps)`. */
export interface AdamStepScalars {
  /** Decay of the first moment. */
  beta1: number;
  /** Decay of the second moment. */
  beta2: number;
  /** Added to the root of the corrected second moment. */
  eps: number;
  /** `lr / (1 - beta1^t)`. */
  stepSize: number;
  /** `sqrt(1 - beta2^t)`. */
  rootCorrection: number;
  /** NaN gradients count as 0, +-Infinity as +-1e5. */
  nanToNum: boolean;
}

/** The fused kernels of one loaded library. */
export interface NativeKernels {
  /** Path of the library file. */
  path: string;
  /** Whether this process compiled it (else it came from the cache or `DIFFUSE_NATIVE`). */
  built: boolean;
  /** GroupNorm (+ SiLU) forward and gradient (the contract of core/dnnl/group_norm.ts). */
  groupNorm: GroupNormKernels;
  /**
   * The forward of `groupNorm` on `x + shift`, `shift` `[n, c]` per image and channel (or null),
   * without writing the sum out; false when memory runs out or the sizes disagree.
   */
  groupNormShifted(
    shape: GroupNormShape,
    x: Float32Array,
    shift: Float32Array | null,
    gamma: Float32Array,
    beta: Float32Array,
    out: { y: Float32Array } & GroupNormStats,
  ): boolean;
  /** `out = scale (x + y)` element-wise; all three of one length. */
  scaledAdd(x: Float32Array, y: Float32Array, scale: number, out: Float32Array): void;
  /** `out[i, j]` = sum over `hw` pixels of `x[i, :, j]`; false when memory runs out. */
  channelSums(x: Float32Array, n: number, hw: number, c: number, out: Float32Array): boolean;
  /**
   * 2x2 windows of `[n, 2h, 2w, c]` data: `pool` sums each window into `[n, h, w, c]`, `unpool`
   * repeats each value of `[n, h, w, c]` over one; both times `scale`.
   */
  resample(
    mode: "pool" | "unpool",
    x: Float32Array,
    shape: { n: number; h: number; w: number; c: number },
    scale: number,
    y: Float32Array,
  ): void;
  /** `out` = columns `[offset, offset + out.length / rows)` of `x` viewed as `rows` rows. */
  copyColumns(x: Float32Array, rows: number, offset: number, out: Float32Array): void;
  /** `y = softmax(scale x)` over each row of `cols` values; x and y of one length. */
  softmax(x: Float32Array, cols: number, scale: number, y: Float32Array): void;
  /** `dx = scale y (dy - sum(dy y))` per row of `cols` values; all three of one length. */
  softmaxGrad(
    y: Float32Array,
    dy: Float32Array,
    cols: number,
    scale: number,
    dx: Float32Array,
  ): void;
  /**
   * One Adam step in place on `p`, `m`, `v` from the gradient `g` (all of one length), on all
   * threads, with the same float64 arithmetic and float32 roundings as training/adam.ts's loop.
   */
  adam(
    p: Float32Array,
    m: Float32Array,
    v: Float32Array,
    g: Float32Array,
    step: AdamStepScalars,
  ): void;
}

/** The loaded kernels, or why they are off. */
export type LoadNativeResult = { ok: true; kernels: NativeKernels } | { ok: false; why: string };

let loaded: LoadNativeResult | undefined;

/**
 * Loads (building on first use) the fused kernels; the result is kept for the process.
 * Never throws.
 *
 * @returns The kernels, or why they are off.
 * @example Normalize two channels in one group, then take SiLU
 * ```ts
 * import { loadNativeKernels } from "./kernels.ts";
 * const r = loadNativeKernels();
 * if (r.ok) {
 *   const out = { y: new Float32Array(2), mean: new Float32Array(1), rstd: new Float32Array(1) };
 *   const shape = { n: 1, h: 1, w: 1, c: 2, groups: 1, eps: 0, silu: true };
 *   const ones = new Float32Array([1, 1]), zeros = new Float32Array(2);
 *   r.kernels.groupNorm.forward(shape, new Float32Array([1, 3]), ones, zeros, out);
 *   // out.y is about [-0.27, 0.73] (SiLU of -1 and 1), out.mean [2]
 * }
 * ```
 */
export function loadNativeKernels(): LoadNativeResult {
  if (loaded !== undefined) return loaded;
  const env = readEnv("DIFFUSE_NATIVE")?.trim();
  if (env !== undefined && ["0", "off", "false", "no"].includes(env.toLowerCase())) {
    return loaded = { ok: false, why: `DIFFUSE_NATIVE=${env}` };
  }
  const prebuilt = env !== undefined && !["", "1", "on", "true", "yes"].includes(env.toLowerCase());
  const found = prebuilt ? { ok: true as const, path: env, built: false } : buildNativeKernels();
  if (!found.ok) return loaded = found;
  // Without oneDNN loaded first, libgomp arrives here: beside OpenBLAS's threads, wait passively.
  const undo = chooseOpenMpWait(false);
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(found.path, SYMBOLS);
  } catch (e) {
    undo(); // not loaded, nor libgomp with it
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return loaded = { ok: false, why: `cannot open ${found.path}: ${why}` };
  }
  pinLibrary(found.path);
  return loaded = { ok: true, kernels: bind(lib.symbols, found.path, found.built) };
}

/**
 * The fused kernels if this process has loaded them already, else null; never builds or loads
 * them (for callers with a plain path of their own, such as training/adam.ts).
 *
 * @returns The loaded kernels, or null.
 * @example Use the kernels only where they are already in use
 * ```ts
 * import { loadedNativeKernels } from "./kernels.ts";
 * const kernels = loadedNativeKernels(); // null until something called loadNativeKernels()
 * ```
 */
export function loadedNativeKernels(): NativeKernels | null {
  return loaded?.ok ? loaded.kernels : null;
}

function bind(
  s: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"],
  path: string,
  built: boolean,
): NativeKernels {
  const sizes = (n: number, h: number, w: number, c: number) =>
    [BigInt(n), BigInt(h * w), BigInt(c)] as const;
  const forward: NativeKernels["groupNormShifted"] = (shape, x, shift, gamma, beta, out) => {
    const { n, h, w, c, groups, eps, silu } = shape;
    const size = n * h * w * c;
    if (size === 0 || c % groups !== 0 || x.length !== size || out.y.length !== size) {
      return false;
    }
    if (gamma.length !== c || beta.length !== c || (shift && shift.length !== n * c)) return false;
    if (out.mean.length !== n * groups || out.rstd.length !== n * groups) return false;
    return s.diffuse_group_norm(
      x,
      shift,
      gamma,
      beta,
      ...sizes(n, h, w, c),
      BigInt(groups),
      eps,
      silu ? 1 : 0,
      out.y,
      out.mean,
      out.rstd,
    ) === 1;
  };
  const groupNorm: GroupNormKernels = {
    forward: (shape, x, gamma, beta, out) => forward(shape, x, null, gamma, beta, out),
    backward({ n, h, w, c, groups, silu }, inputs, out) {
      const { dy, x, gamma, beta, mean, rstd } = inputs;
      const size = n * h * w * c;
      if (size === 0 || c % groups !== 0) return false;
      if ([dy, x, out.dx].some((t) => t.length !== size)) return false;
      if ([gamma, out.dgamma, out.dbeta].some((t) => t.length !== c)) return false;
      if (mean.length !== n * groups || rstd.length !== n * groups) return false;
      if (silu && beta?.length !== c) return false;
      return s.diffuse_group_norm_grad(
        dy,
        x,
        gamma,
        silu ? beta! : null,
        mean,
        rstd,
        ...sizes(n, h, w, c),
        BigInt(groups),
        silu ? 1 : 0,
        out.dx,
        out.dgamma,
        out.dbeta,
      ) === 1;
    },
  };
  return {
    path,
    built,
    groupNorm,
    groupNormShifted: forward,
    scaledAdd(x, y, scale, out) {
      if (x.length !== y.length || x.length !== out.length) {
        throw new RangeError(`scaledAdd: lengths ${x.length}, ${y.length}, ${out.length} differ`);
      }
      s.diffuse_scaled_add(x, y, BigInt(x.length), scale, out);
    },
    channelSums(x, n, hw, c, out) {
      if (x.length !== n * hw * c || out.length !== n * c) {
        throw new RangeError(`channelSums: ${x.length} values are not ${n} x ${hw} x ${c}`);
      }
      if (x.length === 0) return true;
      return s.diffuse_channel_sums(x, BigInt(n), BigInt(hw), BigInt(c), out) === 1;
    },
    resample(mode, x, { n, h, w, c }, scale, y) {
      const small = n * h * w * c;
      if (
        x.length !== (mode === "pool" ? 4 * small : small) ||
        y.length !== (mode === "pool" ? small : 4 * small)
      ) {
        throw new RangeError(
          `resample: ${x.length} and ${y.length} values do not fit ${mode} of [${n}, ${h}, ${w}, ${c}]`,
        );
      }
      const f = mode === "pool" ? s.diffuse_pool2x : s.diffuse_unpool2x;
      f(x, BigInt(n), BigInt(h), BigInt(w), BigInt(c), scale, y);
    },
    copyColumns(x, rows, offset, out) {
      if (out.length === 0) return;
      const c = x.length / rows, width = out.length / rows;
      if (!Number.isInteger(c) || !Number.isInteger(width) || offset < 0 || offset + width > c) {
        throw new RangeError(`copyColumns: ${out.length} values are not columns of ${rows} x ${c}`);
      }
      s.diffuse_copy_columns(x, BigInt(rows), BigInt(c), BigInt(offset), BigInt(width), out);
    },
    softmax(x, cols, scale, y) {
      if (x.length !== y.length || cols <= 0 || x.length % cols !== 0) {
        throw new RangeError(`softmax: ${x.length} values are not rows of ${cols}`);
      }
      s.diffuse_softmax(x, BigInt(x.length / cols), BigInt(cols), scale, y);
    },
    softmaxGrad(y, dy, cols, scale, dx) {
      if (y.length !== dy.length || y.length !== dx.length || cols <= 0 || y.length % cols !== 0) {
        throw new RangeError(`softmaxGrad: ${y.length} values are not rows of ${cols}`);
      }
      s.diffuse_softmax_grad(y, dy, BigInt(y.length / cols), BigInt(cols), scale, dx);
    },
    adam(p, m, v, g, { beta1, beta2, eps, stepSize, rootCorrection, nanToNum }) {
      if ([p, m, v].some((t) => t.length !== g.length)) {
        throw new RangeError(
          `adam: lengths ${p.length}, ${m.length}, ${v.length}, ${g.length} differ`,
        );
      }
      if (g.length === 0) return;
      const n = BigInt(g.length);
      s.diffuse_adam(p, m, v, g, n, beta1, beta2, eps, stepSize, rootCorrection, nanToNum ? 1 : 0);
    },
  };
}
