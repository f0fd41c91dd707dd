/**
 * TensorFlow.js kernels (BatchMatMul, _FusedMatMul, Conv2D, FusedConv2D, Conv2DBackpropInput,
 * Conv2DBackpropFilter) computed by a native `sgemm` on the backend's own memory.
 *
 * Not tied to a paper: engine work (shared/bench/ENGINE-NOTES.md lists these as the slow or
 * missing kernels of a U-Net training step on wasm). Gradients are untouched: tfjs-core defines
 * them in terms of these same kernel names. Inputs a kernel does not handle (NCHW, dilation > 1,
 * non-float32, broadcasting matmul batches other than 1-vs-n, fused activations other than
 * linear, prelu) go to the kernel it replaced.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BlasLibrary, Sgemm } from "./openblas.ts";
import { conv2dBackpropFilterGemm, conv2dBackpropInputGemm, conv2dGemm } from "./conv_gemm.ts";
import { type TensorViews, tensorViews, type ViewableBackend } from "./tensor_views.ts";
import type { DnnlConv, DnnlConvGeometry } from "../dnnl/conv.ts";
import type { DnnlMatMul } from "../dnnl/matmul.ts";
import { type DnnlElementwise, SILU_GRAD_KERNEL, SILU_KERNEL } from "../dnnl/elementwise.ts";
import type { DnnlBinary } from "../dnnl/binary.ts";
import type { DnnlConcat } from "../dnnl/concat.ts";
import { BINARY_KERNELS, binaryKernel, concatKernel } from "./memory_bound_kernels.ts";
import {
  GROUP_NORM_GRAD_KERNEL,
  GROUP_NORM_KERNEL,
  type GroupNormKernels,
} from "../dnnl/group_norm.ts";
import {
  CHANNEL_SUMS_KERNEL,
  GROUP_NORM_SHIFT_KERNEL,
  type NativeKernels,
  POOL_KERNEL,
  SCALED_ADD_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  SOFTMAX_KERNEL,
  UNPOOL_KERNEL,
} from "../native/kernels.ts";

/** Names of the kernels this module provides. */
export const BLAS_KERNEL_NAMES: readonly string[] = [
  "BatchMatMul",
  "_FusedMatMul",
  "Conv2D",
  "FusedConv2D",
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
];

/** Kernels served only when oneDNN's element-wise functions are given (see `elementwise`). */
export const DNNL_KERNEL_NAMES: readonly string[] = [
  "Sigmoid",
  "Softmax",
  SILU_KERNEL,
  SILU_GRAD_KERNEL,
  GROUP_NORM_KERNEL,
  GROUP_NORM_GRAD_KERNEL,
  ...Object.keys(BINARY_KERNELS),
  "Concat",
];

/** Kernels served only when the fused native kernels are given (see `native`). */
export const NATIVE_KERNEL_NAMES: readonly string[] = [
  SCALED_ADD_KERNEL,
  CHANNEL_SUMS_KERNEL,
  SOFTMAX_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  POOL_KERNEL,
  UNPOOL_KERNEL,
  "SplitV",
  GROUP_NORM_SHIFT_KERNEL,
];

/** Options of {@linkcode blasKernelConfigs}. */
export interface BlasKernelOptions {
  /** Backend the kernels run on. */
  backend: ViewableBackend;
  /** The kernels being replaced, by name; used for inputs the BLAS path does not handle. */
  fallbacks: ReadonlyMap<string, tf.KernelConfig | undefined>;
  /**
   * oneDNN convolutions (`core/dnnl/conv.ts`) tried before the `sgemm` lowering; geometries
   * oneDNN declines go to `sgemm`. @default undefined (sgemm only)
   */
  conv?: DnnlConv;
  /** oneDNN matrix products, tried before `sgemm`. @default undefined */
  dnnlMatMul?: DnnlMatMul;
  /**
   * oneDNN sigmoid and softmax; when given, {@linkcode DNNL_KERNEL_NAMES} are served too.
   * @default undefined
   */
  elementwise?: DnnlElementwise;
  /**
   * Group normalization (oneDNN's or the fused native one), served as
   * {@linkcode GROUP_NORM_KERNEL} and {@linkcode GROUP_NORM_GRAD_KERNEL}. @default undefined
   */
  groupNorm?: GroupNormKernels;
  /** oneDNN binary operations, serving Add, Sub and Multiply. @default undefined */
  binary?: DnnlBinary;
  /** oneDNN concatenation, serving Concat. @default undefined */
  concat?: DnnlConcat;
  /**
   * Fused native kernels (core/native/kernels.ts); when given, {@linkcode NATIVE_KERNEL_NAMES}
   * are served too. @default undefined
   */
  native?: NativeKernels;
}

type Args = Parameters<tf.KernelFunc>[0];
type ConvAttrs = {
  strides: number | [number, number];
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dilations?: number | [number, number];
  dimRoundingMode?: "floor" | "round" | "ceil";
  activation?: string;
};

/**
 * Builds the kernel configs for `tf.registerKernel`, one per name in {@linkcode BLAS_KERNEL_NAMES}
 * (and {@linkcode DNNL_KERNEL_NAMES} with `elementwise`).
 * Each carries its fallback's setup and dispose functions, so the backend can still initialize
 * the kernel it replaced.
 *
 * @returns Kernel configs; registering them is the caller's job (see `register.ts`).
 * @example Build the configs
 * ```ts
 * import { blasKernelConfigs } from "./kernels.ts";
 * import { loadBlas } from "./openblas.ts";
 * const r = loadBlas();
 * if (r.ok) blasKernelConfigs(r.blas, { backend: "wasm", fallbacks: new Map() });
 * ```
 */
export function blasKernelConfigs(
  blas: BlasLibrary,
  options: BlasKernelOptions,
): tf.KernelConfig[] {
  const { backend, fallbacks, conv, dnnlMatMul, elementwise, groupNorm, native } = options;
  const { binary, concat } = options;
  const sgemm = blas.sgemm;
  const plainGroupNorm = groupNorm && plainForward(groupNorm);
  const funcs: Record<
    string,
    (args: Args, views: TensorViews) => tf.TensorInfo | tf.TensorInfo[] | null
  > = {
    BatchMatMul: (args, views) => matMul(sgemm, dnnlMatMul, args, views, false),
    _FusedMatMul: (args, views) => matMul(sgemm, dnnlMatMul, args, views, true),
    Conv2D: (args, views) => conv2D(sgemm, conv, args, views, false),
    FusedConv2D: (args, views) => conv2D(sgemm, conv, args, views, true),
    Conv2DBackpropInput: (args, views) => conv2DBackpropInput(sgemm, conv, args, views),
    Conv2DBackpropFilter: (args, views) => conv2DBackpropFilter(sgemm, conv, args, views),
    Sigmoid: (args, views) => sigmoid(elementwise!, args, views),
    Softmax: (args, views) => softmax(elementwise!, args, views),
    [SILU_KERNEL]: (args, views) => siluKernel(elementwise!, args, views),
    [SILU_GRAD_KERNEL]: (args, views) => siluGradKernel(elementwise!, args, views),
    [GROUP_NORM_KERNEL]: (args, views) => groupNormKernel(plainGroupNorm!, args, views),
    [GROUP_NORM_GRAD_KERNEL]: (args, views) => groupNormGradKernel(groupNorm!, args, views),
    ...Object.fromEntries(
      Object.entries(BINARY_KERNELS).map((
        [name, op],
      ) => [name, (args: Args, views: TensorViews) => binaryKernel(binary!, op, args, views)]),
    ),
    Concat: (args, views) => concatKernel(concat!, args, views),
    [SCALED_ADD_KERNEL]: (args, views) => scaledAddKernel(native!, args, views),
    [CHANNEL_SUMS_KERNEL]: (args, views) => channelSumsKernel(native!, args, views),
    [SOFTMAX_KERNEL]: (args, views) => softmaxKernel(native!, args, views),
    [SOFTMAX_GRAD_KERNEL]: (args, views) => softmaxGradKernel(native!, args, views),
    [POOL_KERNEL]: (args, views) => resampleKernel(native!, "pool", args, views),
    [UNPOOL_KERNEL]: (args, views) => resampleKernel(native!, "unpool", args, views),
    SplitV: (args, views) => splitLastAxis(native!, args, views),
    [GROUP_NORM_SHIFT_KERNEL]: (args, views) =>
      groupNormKernel(native!.groupNormShifted, args, views),
  };
  const names = [
    ...BLAS_KERNEL_NAMES,
    ...(elementwise && groupNorm && binary && concat
      ? DNNL_KERNEL_NAMES
      : groupNorm
      ? [GROUP_NORM_KERNEL, GROUP_NORM_GRAD_KERNEL]
      : []),
    ...(native ? NATIVE_KERNEL_NAMES : []),
  ];
  return names.map((kernelName) => {
    const original = fallbacks.get(kernelName);
    const compute = funcs[kernelName];
    const kernelFunc = ((args: Args) => {
      const out = compute(args, tensorViews(args.backend, backend));
      if (out !== null) return out;
      if (original === undefined) {
        throw new Error(
          `${kernelName} on ${backend}: these inputs need a kernel the BLAS path lacks ` +
            `(NCHW, dilation > 1, non-float32 or a fused activation); set DIFFUSE_BLAS=0`,
        );
      }
      return original.kernelFunc(args);
    }) as tf.KernelFunc;
    return {
      kernelName,
      backendName: backend,
      kernelFunc,
      setupFunc: original?.setupFunc,
      disposeFunc: original?.disposeFunc,
    };
  });
}

function matMul(
  sgemm: Sgemm,
  batched: DnnlMatMul | undefined,
  args: Args,
  views: TensorViews,
  fused: boolean,
) {
  const { a, b } = args.inputs as Record<"a" | "b", tf.TensorInfo>;
  const { bias, preluActivationWeights } = args.inputs;
  const { transposeA = false, transposeB = false, activation = "linear" } = args.attrs as {
    transposeA?: boolean;
    transposeB?: boolean;
    activation?: string;
  };
  if (!allFloat32(a, b, bias) || a.shape.length < 2 || b.shape.length < 2) return null;
  if (fused && (activation !== "linear" || preluActivationWeights !== undefined)) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = size(outerA), batchB = size(outerB);
  if (k !== kb) return null; // the original kernel reports the mismatch
  // Only equal batches or a batch of one on either side; general broadcasting goes to the fallback.
  const outer = batchA === batchB && sameShape(outerA, outerB)
    ? outerA
    : batchA === 1 && outerA.every((d) => d === 1) && outerA.length <= outerB.length
    ? outerB
    : batchB === 1 && outerB.every((d) => d === 1) && outerB.length <= outerA.length
    ? outerA
    : null;
  if (outer === null) return null;
  if (bias !== undefined && !(size(bias.shape) === n && bias.shape[bias.shape.length - 1] === n)) {
    return null;
  }
  const batch = Math.max(batchA, batchB);
  const out = views.alloc([...outer, m, n]);
  const av = views.view(a), bv = views.view(b), cv = views.view(out);
  if (k === 0 || m * n === 0) cv.fill(0);
  else if (
    batched?.run(
      { batchA, batchB, m, n, k, transposeA, transposeB },
      av,
      bv,
      cv,
      bias && views.view(bias),
    )
  ) {
    return out; // bias included
  } else if (batch === 1 && m === 1 && !transposeA && !transposeB) {
    rowTimesMatrix(av, bv, cv, k, n);
  } else {
    for (let i = 0; i < batch; i++) {
      sgemm({
        transA: transposeA,
        transB: transposeB,
        m,
        n,
        k,
        a: av.subarray((batchA === 1 ? 0 : i) * m * k),
        lda: transposeA ? m : k,
        b: bv.subarray((batchB === 1 ? 0 : i) * k * n),
        ldb: transposeB ? k : n,
        c: cv.subarray(i * m * n),
        ldc: n,
      });
    }
  }
  if (bias !== undefined) addRowBias(sgemm, cv, views.view(bias), n);
  return out;
}

function conv2D(
  sgemm: Sgemm,
  conv: DnnlConv | undefined,
  args: Args,
  views: TensorViews,
  fused: boolean,
) {
  const { x, filter } = args.inputs as Record<"x" | "filter", tf.TensorInfo>;
  const { bias, preluActivationWeights } = args.inputs;
  const attrs = args.attrs as unknown as ConvAttrs;
  if (!allFloat32(x, filter, bias) || !supported(attrs)) return null;
  if (fused && ((attrs.activation ?? "linear") !== "linear" || preluActivationWeights)) {
    return null;
  }
  const geometry = convInfo(x.shape, filter.shape, attrs);
  if (geometry === null) return null;
  const co = geometry.outChannels;
  if (
    bias !== undefined && !(size(bias.shape) === co && bias.shape[bias.shape.length - 1] === co)
  ) {
    return null;
  }
  const out = views.alloc(geometry.outShape);
  const y = views.view(out), xv = views.view(x), fv = views.view(filter);
  const bv = bias === undefined ? undefined : views.view(bias);
  if (conv?.forward(geometry as DnnlConvGeometry, xv, fv, bv, y)) return out;
  conv2dGemm(sgemm, { geometry, x: xv, filter: fv, y });
  if (bv !== undefined) addRowBias(sgemm, y, bv, co);
  return out;
}

function conv2DBackpropInput(
  sgemm: Sgemm,
  conv: DnnlConv | undefined,
  args: Args,
  views: TensorViews,
) {
  const { dy, filter } = args.inputs as Record<"dy" | "filter", tf.TensorInfo>;
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  if (!allFloat32(dy, filter) || !supported(attrs)) return null;
  const geometry = convInfo(attrs.inputShape, filter.shape, attrs);
  if (geometry === null || !sameShape(geometry.outShape, dy.shape)) return null;
  const out = views.alloc([...attrs.inputShape]);
  const dx = views.view(out), dyv = views.view(dy), fv = views.view(filter);
  if (conv?.backwardData(geometry as DnnlConvGeometry, dyv, fv, dx)) return out;
  conv2dBackpropInputGemm(sgemm, { geometry, dy: dyv, filter: fv, dx });
  return out;
}

function conv2DBackpropFilter(
  sgemm: Sgemm,
  conv: DnnlConv | undefined,
  args: Args,
  views: TensorViews,
) {
  const { x, dy } = args.inputs as Record<"x" | "dy", tf.TensorInfo>;
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  if (!allFloat32(x, dy) || !supported(attrs)) return null;
  const geometry = convInfo(x.shape, attrs.filterShape, attrs);
  if (geometry === null || !sameShape(geometry.outShape, dy.shape)) return null;
  const out = views.alloc([...attrs.filterShape]);
  const dw = views.view(out), xv = views.view(x), dyv = views.view(dy);
  if (conv?.backwardWeights(geometry as DnnlConvGeometry, xv, dyv, dw)) return out;
  conv2dBackpropFilterGemm(sgemm, { geometry, x: xv, dy: dyv, dw });
  return out;
}

function sigmoid(elementwise: DnnlElementwise, args: Args, views: TensorViews) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  if (!allFloat32(x) || size(x.shape) === 0) return null;
  const out = views.alloc([...x.shape]);
  return elementwise.sigmoid(views.view(x), views.view(out)) ? out : release(views, out);
}

function siluKernel(elementwise: DnnlElementwise, args: Args, views: TensorViews) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  const out = views.alloc([...x.shape]);
  if (allFloat32(x) && elementwise.silu(views.view(x), views.view(out))) return out;
  return declined(views, [out], `${SILU_KERNEL}: oneDNN declined x [${x.shape}]`, "SiLU");
}

function siluGradKernel(elementwise: DnnlElementwise, args: Args, views: TensorViews) {
  const { x, dy } = args.inputs as Record<"x" | "dy", tf.TensorInfo>;
  const out = views.alloc([...x.shape]);
  const ok = allFloat32(x, dy) && sameShape(x.shape, dy.shape) &&
    elementwise.siluGrad(views.view(x), views.view(dy), views.view(out));
  if (ok) return out;
  return declined(views, [out], `${SILU_GRAD_KERNEL}: oneDNN declined x [${x.shape}]`, "SiLU");
}

function softmax(elementwise: DnnlElementwise, args: Args, views: TensorViews) {
  const { logits } = args.inputs as Record<"logits", tf.TensorInfo>;
  const { dim } = args.attrs as { dim: number };
  const rank = logits.shape.length;
  if (!allFloat32(logits) || size(logits.shape) === 0 || rank === 0) return null;
  if (dim !== -1 && dim !== rank - 1) return null;
  const out = views.alloc([...logits.shape]);
  const ok = elementwise.softmax(views.view(logits), views.view(out), logits.shape[rank - 1]);
  return ok ? out : release(views, out);
}

// GroupNorm (+ SiLU) of x, or with a `shift` input of x + shift (served by `forward`, which
// takes the shift or null: the native kernels' groupNormShifted, or plainForward).
function groupNormKernel(
  forward: NativeKernels["groupNormShifted"],
  args: Args,
  views: TensorViews,
) {
  const inputs = args.inputs as Record<"x" | "gamma" | "beta", tf.TensorInfo> & {
    shift?: tf.TensorInfo;
  };
  const { x, gamma, beta, shift } = inputs;
  const { groups, eps, silu } = args.attrs as { groups: number; eps: number; silu: boolean };
  const [n, h, w, c] = x.shape;
  const outs = [views.alloc([...x.shape]), views.alloc([n, groups]), views.alloc([n, groups])];
  const [y, mean, rstd] = outs.map((t) => views.view(t));
  const ok = allFloat32(x, gamma, beta, shift) && x.shape.length === 4 &&
    forward(
      { n, h, w, c, groups, eps, silu },
      views.view(x),
      shift ? views.view(shift) : null,
      views.view(gamma),
      views.view(beta),
      { y, mean, rstd },
    );
  const what = `${GROUP_NORM_KERNEL}: the native GroupNorm declined x [${x.shape}] with ` +
    `${groups} groups (out of memory?)`;
  return ok ? outs : declined(views, outs, what, "GroupNorm");
}

// A GroupNorm without a shift input (oneDNN's or the native one) as groupNormKernel's forward.
function plainForward(groupNorm: GroupNormKernels): NativeKernels["groupNormShifted"] {
  return (shape, x, shift, gamma, beta, out) =>
    shift === null && groupNorm.forward(shape, x, gamma, beta, out);
}

function groupNormGradKernel(groupNorm: GroupNormKernels, args: Args, views: TensorViews) {
  const inputs = args.inputs as
    & Record<"dy" | "x" | "gamma" | "mean" | "rstd", tf.TensorInfo>
    & { beta?: tf.TensorInfo };
  const { groups, silu = false } = args.attrs as { groups: number; silu?: boolean };
  const { x, gamma, beta } = inputs;
  const [n, h, w, c] = x.shape;
  const outs = [views.alloc([...x.shape]), views.alloc([c]), views.alloc([c])];
  const [dx, dgamma, dbeta] = outs.map((t) => views.view(t));
  const [dyV, xV, gammaV, meanV, rstdV] = [inputs.dy, x, gamma, inputs.mean, inputs.rstd].map((t) =>
    views.view(t)
  );
  const betaV = beta === undefined ? undefined : views.view(beta);
  const ok = allFloat32(...Object.values(inputs)) && x.shape.length === 4 &&
    groupNorm.backward(
      { n, h, w, c, groups, eps: 0, silu },
      { dy: dyV, x: xV, gamma: gammaV, beta: betaV, mean: meanV, rstd: rstdV },
      { dx, dgamma, dbeta },
    );
  const what = `${GROUP_NORM_GRAD_KERNEL}: the native GroupNorm declined x [${x.shape}] with ` +
    `${groups} groups (out of memory?)`;
  return ok ? outs : declined(views, outs, what, "GroupNorm");
}

// out = scale (x + y) for two float32 tensors of one shape; others go to the composed op (null
// has no fallback here: models/layers.ts only calls this kernel on equal shapes).
function scaledAddKernel(native: NativeKernels, args: Args, views: TensorViews) {
  const { x, y } = args.inputs as Record<"x" | "y", tf.TensorInfo>;
  const { scale } = args.attrs as { scale: number };
  if (!allFloat32(x, y) || size(x.shape) !== size(y.shape)) {
    throw new Error(
      `${SCALED_ADD_KERNEL}: inputs [${x.shape}] and [${y.shape}] differ; ` +
        `add them with tf.add and scale with tf.mul`,
    );
  }
  const out = views.alloc([...x.shape]);
  native.scaledAdd(views.view(x), views.view(y), scale, views.view(out));
  return out;
}

// [N, H, W, C] -> [N, C] or [rows, C] -> [C]: sums over the pixels (rows) per channel.
function channelSumsKernel(native: NativeKernels, args: Args, views: TensorViews) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  const s = x.shape;
  if (!allFloat32(x) || (s.length !== 4 && s.length !== 2)) {
    throw new Error(
      `${CHANNEL_SUMS_KERNEL}: needs a float32 [N, H, W, C] or [rows, C], got [${s}]`,
    );
  }
  const [n, hw, c] = s.length === 4 ? [s[0], s[1] * s[2], s[3]] : [1, s[0], s[1]];
  const out = views.alloc(s.length === 4 ? [n, c] : [c]);
  if (!native.channelSums(views.view(x), n, hw, c, views.view(out))) {
    views.free(out);
    throw new Error(`${CHANNEL_SUMS_KERNEL}: out of memory for [${s}]; lower --batch`);
  }
  return out;
}

// y = softmax(scale x) along the last axis of a float32 tensor (models/layers.ts scaledSoftmax).
function softmaxKernel(native: NativeKernels, args: Args, views: TensorViews) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  const { scale } = args.attrs as { scale: number };
  const cols = x.shape[x.shape.length - 1] ?? 0;
  if (!allFloat32(x) || cols === 0) {
    throw new Error(`${SOFTMAX_KERNEL}: needs float32 rows, got ${x.dtype} [${x.shape}]`);
  }
  const y = views.alloc([...x.shape]);
  native.softmax(views.view(x), cols, scale, views.view(y));
  return y;
}

// dx = scale y (dy - sum(dy y)) along the last axis, y the forward's output.
function softmaxGradKernel(native: NativeKernels, args: Args, views: TensorViews) {
  const { y, dy } = args.inputs as Record<"y" | "dy", tf.TensorInfo>;
  const { scale } = args.attrs as { scale: number };
  const cols = y.shape[y.shape.length - 1] ?? 0;
  if (!allFloat32(y, dy) || cols === 0 || !sameShape(y.shape, dy.shape)) {
    throw new Error(
      `${SOFTMAX_GRAD_KERNEL}: needs float32 y and dy of one shape, got [${y.shape}], [${dy.shape}]`,
    );
  }
  const dx = views.alloc([...y.shape]);
  native.softmaxGrad(views.view(y), views.view(dy), cols, scale, views.view(dx));
  return dx;
}

// 2x2 pooling (sum times scale) or nearest 2x upsampling (times scale) of NHWC float32 data.
function resampleKernel(
  native: NativeKernels,
  mode: "pool" | "unpool",
  args: Args,
  views: TensorViews,
) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  const { scale } = args.attrs as { scale: number };
  const [n, h, w, c] = x.shape;
  const name = mode === "pool" ? POOL_KERNEL : UNPOOL_KERNEL;
  if (!allFloat32(x) || x.shape.length !== 4 || (mode === "pool" && (h % 2 || w % 2))) {
    throw new Error(`${name}: needs float32 [N, H, W, C] (H, W even to pool), got [${x.shape}]`);
  }
  const small = mode === "pool" ? { n, h: h / 2, w: w / 2, c } : { n, h, w, c };
  const k = mode === "pool" ? 1 : 2;
  const y = views.alloc([n, small.h * k, small.w * k, c]);
  native.resample(mode, views.view(x), small, scale, views.view(y));
  return y;
}

// SplitV of float32 data along its last axis (the gradient of a channel concatenation), each
// piece on both threads; other splits go to the backend's kernel.
function splitLastAxis(native: NativeKernels, args: Args, views: TensorViews) {
  const { x } = args.inputs as Record<"x", tf.TensorInfo>;
  const { numOrSizeSplits, axis } = args.attrs as {
    numOrSizeSplits: number | number[];
    axis: number;
  };
  const rank = x.shape.length, c = x.shape[rank - 1];
  if (!allFloat32(x) || rank === 0 || (axis !== -1 && axis !== rank - 1) || size(x.shape) === 0) {
    return null;
  }
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, axis);
  const rows = size(x.shape) / c;
  let offset = 0;
  return sizes.map((width) => {
    const out = views.alloc([...x.shape.slice(0, -1), width]);
    // Views after each allocation: a growing wasm heap detaches earlier ones.
    native.copyColumns(views.view(x), rows, offset, views.view(out));
    offset += width;
    return out;
  });
}

// oneDNN and the fused kernels take any float32 shape; should they decline (out of memory), free
// the outputs and say how to go on (these kernels have no backend kernel to fall back to).
function declined(views: TensorViews, outs: tf.TensorInfo[], what: string, op: string): never {
  outs.forEach((t) => views.free(t));
  throw new Error(`${what}; set DIFFUSE_NATIVE=0 DIFFUSE_DNNL=0 to use the composed ${op}`);
}

// A declined call frees its output before the fallback kernel makes its own.
function release(views: TensorViews, out: tf.TensorInfo): null {
  views.free(out);
  return null;
}

// NHWC, dilation 1 only; everything else goes to the fallback.
function supported(attrs: ConvAttrs): boolean {
  const { dataFormat = "NHWC", dilations = 1 } = attrs;
  const d = typeof dilations === "number" ? [dilations] : dilations;
  return dataFormat === "NHWC" && d.every((v) => v === 1);
}

function convInfo(inShape: number[], filterShape: number[], attrs: ConvAttrs) {
  if (inShape.length !== 4 || filterShape.length !== 4) return null;
  if (size(inShape) === 0 || size(filterShape) === 0) return null;
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  return size(info.outShape) === 0 ? null : info;
}

// c (1 x n) = a (1 x k) @ b (k x n), as the bias gradients (ones-row products) of the network
// need: OpenBLAS 0.3.21 runs such products at about 0.2 GFLOP/s (7 ms for k = 32768, n = 32); a
// row-by-row accumulation streams b once.
function rowTimesMatrix(a: Float32Array, b: Float32Array, c: Float32Array, k: number, n: number) {
  const acc = new Float64Array(n);
  for (let r = 0; r < k; r++) {
    const ar = a[r], base = r * n;
    for (let j = 0; j < n; j++) acc[j] += ar * b[base + j];
  }
  for (let j = 0; j < n; j++) c[j] = acc[j];
}

const ones: { data: Float32Array } = { data: new Float32Array(0) };

// c (rows x n) += 1 (rows x 1) @ bias (1 x n): a rank-1 product broadcasts the bias natively.
function addRowBias(sgemm: Sgemm, c: Float32Array, bias: Float32Array, n: number): void {
  const rows = c.length / n;
  if (ones.data.length < rows) ones.data = new Float32Array(rows).fill(1);
  sgemm({ m: rows, n, k: 1, a: ones.data, lda: 1, b: bias, ldb: n, beta: 1, c, ldc: n });
}

function allFloat32(...ts: (tf.TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t === undefined || t.dtype === "float32");
}

function size(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
