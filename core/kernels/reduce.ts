/**
 * Sum and Mean over leading or middle axes for the wasm backend, in one pass over the input on
 * the heap. tfjs-backend-wasm reduces only over innermost axes: for any other it first transposes
 * the input with its own Transpose (~30 ns per element on power-of-two strides; the registry's
 * faster Transpose is not used). A sum over the pixels of NHWC activations, which every
 * broadcast bias or embedding addition needs in its gradient, took 6 ms per [32, 32, 32, 32]
 * tensor. Here the axes are merged into alternating kept and reduced runs and the input is read
 * in order, accumulating rows of kept elements (or runs of reduced ones) in float64.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";

/**
 * The reductions this module provides.
 *
 * @example A kind
 * ```ts
 * import type { ReduceKind } from "./reduce.ts";
 * const kind: ReduceKind = "Mean";
 * ```
 */
export type ReduceKind = "Sum" | "Mean";

/**
 * Drops size-1 axes and merges neighbouring axes that are both reduced or both kept: an
 * equivalent reduction of lowest rank, as alternating kept and reduced runs.
 *
 * @example A sum over the pixels of an NHWC tensor
 * ```ts
 * import { reducePlan } from "./reduce.ts";
 * reducePlan([8, 32, 32, 64], [1, 2]); // { dims: [8, 1024, 64], reduced: [false, true, false] }
 * ```
 */
export function reducePlan(
  shape: readonly number[],
  axes: readonly number[],
): { dims: number[]; reduced: boolean[] } {
  const dims: number[] = [], reduced: boolean[] = [];
  shape.forEach((size, axis) => {
    if (size === 1) return;
    const r = axes.includes(axis);
    if (reduced.length > 0 && reduced.at(-1) === r) dims[dims.length - 1] *= size;
    else {
      dims.push(size);
      reduced.push(r);
    }
  });
  return { dims, reduced };
}

/**
 * Whether {@linkcode reduceOnHeap} beats wasm's kernel: when a reduced axis comes before a kept
 * one, which wasm transposes first. Reductions over the innermost axes stay with wasm.
 *
 * @example Choose
 * ```ts
 * import { jsReduceIsFaster } from "./reduce.ts";
 * jsReduceIsFaster([8, 32, 32, 64], [1, 2]); // true
 * jsReduceIsFaster([8, 32, 32, 64], [3]); // false
 * ```
 */
export function jsReduceIsFaster(shape: readonly number[], axes: readonly number[]): boolean {
  const { reduced } = reducePlan(shape, axes);
  return reduced.some((r, i) => r && reduced.slice(i + 1).includes(false));
}

/**
 * Sums (or averages) a float32 buffer on the wasm heap over `axes` into a new float32 buffer the
 * caller owns, shaped like the input without the reduced axes (with them as 1 if `keepDims`).
 *
 * @example Per-channel sums over pixels
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { reduceOnHeap } from "./reduce.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 1, 2]);
 * const y = reduceOnHeap(backend, x, { axes: [1, 2], kind: "Sum" }); // [1, 2]: 4, 6
 * backend.disposeData(y.dataId);
 * x.dispose();
 * ```
 */
export function reduceOnHeap(
  backend: WasmBackendLike,
  x: TensorInfo,
  options: { axes: readonly number[]; kind: ReduceKind; keepDims?: boolean },
): TensorInfo {
  const { axes, kind, keepDims = false } = options;
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = backend.makeOutput(
    keepDims ? outShape : x.shape.filter((_, i) => !axes.includes(i)),
    "float32",
  );
  const total = tf.util.sizeFromShape(x.shape);
  const outCount = tf.util.sizeFromShape(outShape);
  const acc = new Float64Array(outCount);
  const { dims, reduced } = reducePlan(x.shape, axes);
  const rank = dims.length;
  const dst = backend.typedArrayFromHeap(out);
  if (total === 0 || rank === 0) {
    // Nothing to add, or nothing reduced over more than one element.
    dst.set(total === 0 ? acc : backend.typedArrayFromHeap(x).subarray(0, outCount));
    if (total === 0 && kind === "Mean") dst.fill(NaN);
    return out;
  }
  // Output strides of the merged axes: 0 along reduced ones.
  const outStrides = new Array<number>(rank);
  for (let d = rank - 1, s = 1; d >= 0; d--) {
    outStrides[d] = reduced[d] ? 0 : s;
    if (!reduced[d]) s *= dims[d];
  }
  const src = backend.typedArrayFromHeap(x);
  const inner = dims[rank - 1], innerReduced = reduced[rank - 1];
  const idx = new Array<number>(rank).fill(0);
  let o = 0;
  for (let i = 0; i < total; i += inner) {
    if (innerReduced) {
      let s = 0;
      for (let j = 0; j < inner; j++) s += src[i + j];
      acc[o] += s;
    } else {
      for (let j = 0; j < inner; j++) acc[o + j] += src[i + j];
    }
    // Odometer over the outer merged axes.
    for (let d = rank - 2; d >= 0; d--) {
      o += outStrides[d];
      if (++idx[d] < dims[d]) break;
      o -= outStrides[d] * dims[d];
      idx[d] = 0;
    }
  }
  const scale = kind === "Mean" ? outCount / total : 1;
  for (let k = 0; k < outCount; k++) dst[k] = acc[k] * scale;
  return out;
}

/**
 * Makes a Sum or Mean kernel function that runs {@linkcode reduceOnHeap} on float32 input where
 * {@linkcode jsReduceIsFaster}, and `original` (wasm's kernel) otherwise.
 *
 * @example Replace wasm's Sum
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeReduceWasm } from "./reduce.ts";
 * const original = tf.getKernel("Sum", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Sum", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeReduceWasm("Sum")(original.kernelFunc) });
 * }
 * ```
 */
export function makeReduceWasm(kind: ReduceKind): (original: KernelFunc) => KernelFunc {
  return (original) => (args) => {
    const x = args.inputs.x as TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as {
      axis: number | number[];
      keepDims: boolean;
    };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    if (x.dtype !== "float32" || !jsReduceIsFaster(x.shape, axes)) return original(args);
    return reduceOnHeap(args.backend as WasmBackendLike, x, { axes, kind, keepDims });
  };
}
