/**
 * ResizeNearestNeighbor by whole factors for the wasm backend as row copies on the heap.
 * tfjs-backend-wasm computes a source index per output element: a 2x upsampling of
 * [64, 8, 8, 64] took 4.8 ms (about 1 GB/s), 38 ms of a unet-bench sampling step
 * (bench/profile_step.ts). For a whole factor k (no corner alignment) the source of output
 * row i is floor(i / k), with or without half-pixel centers, so each source pixel is copied k
 * times along a row and each finished row k - 1 more times, the bulk of it by `copyWithin`.
 *
 * Not on oneDNN's threads: 2.6.3's resampling primitive crashes on such shapes
 * (core/blas/memory_bound_kernels.ts).
 *
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";
import { heapOf } from "./_copy_rows.ts";

/**
 * Nearest-neighbour upsampling of NHWC `x` to `[n, h * fy, w * fx, c]` on the wasm heap.
 *
 * @param backend The wasm backend.
 * @param x A float32 or int32 NHWC tensor on it.
 * @param fy Whole vertical factor.
 * @param fx Whole horizontal factor.
 * @returns The output, owned by the engine.
 * @example Double a 1 x 1 image
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { upsampleOnHeap } from "./resize_nearest_neighbor.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const x = tf.tensor4d([7], [1, 1, 1, 1]);
 * const y = upsampleOnHeap(backend, x, 2, 2); // [[7, 7], [7, 7]]
 * backend.disposeData(y.dataId);
 * x.dispose();
 * ```
 */
export function upsampleOnHeap(
  backend: WasmBackendLike,
  x: TensorInfo,
  fy: number,
  fx: number,
): TensorInfo {
  const [n, h, w, c] = x.shape;
  const ow = w * fx, rowLength = ow * c;
  const out = backend.makeOutput([n, h * fy, ow, c], x.dtype);
  // Heap views after the allocation, which may grow (and detach) the heap.
  const src = heapOf(backend, x), dst = heapOf(backend, out);
  const heap = src.heap;
  let s = src.offset, d = dst.offset;
  for (let row = 0; row < n * h; row++) {
    const rowStart = d;
    for (let j = 0; j < w; j++, s += c) {
      for (let k = 0; k < fx; k++, d += c) {
        if (c >= 16) heap.copyWithin(d, s, s + c);
        else for (let e = 0; e < c; e++) heap[d + e] = heap[s + e];
      }
    }
    for (let k = 1; k < fy; k++, d += rowLength) heap.copyWithin(d, rowStart, rowStart + rowLength);
  }
  return out;
}

/**
 * Makes a ResizeNearestNeighbor kernel function that runs {@linkcode upsampleOnHeap} for whole
 * factors without corner alignment and `original` (wasm's kernel) otherwise.
 *
 * @example Replace wasm's kernel
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeResizeNearestNeighborWasm } from "./resize_nearest_neighbor.ts";
 * const original = tf.getKernel("ResizeNearestNeighbor", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("ResizeNearestNeighbor", "wasm");
 *   const kernelFunc = makeResizeNearestNeighborWasm(original.kernelFunc);
 *   tf.registerKernel({ ...original, kernelFunc });
 * }
 * ```
 */
export function makeResizeNearestNeighborWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const images = args.inputs.images as TensorInfo;
    const { size: [oh, ow], alignCorners = false } = args.attrs as unknown as {
      size: [number, number];
      alignCorners?: boolean;
    };
    if (images.shape.length !== 4 || alignCorners) return original(args);
    if (images.dtype !== "float32" && images.dtype !== "int32") return original(args);
    const [, h, w] = images.shape;
    const fy = oh / h, fx = ow / w;
    if (!Number.isInteger(fy) || !Number.isInteger(fx) || fy < 1 || fx < 1) return original(args);
    return upsampleOnHeap(args.backend as WasmBackendLike, images, fy, fx);
  };
}
