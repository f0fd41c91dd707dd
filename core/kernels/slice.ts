/**
 * Slice for the wasm backend as strided row copies on the heap. tfjs-backend-wasm's Slice first
 * copies the whole input out of the heap (`readSync`), then copies each innermost row with a new
 * `subarray` view: a channel slice of an NHWC tensor costs ~10 ns per element of the input, and
 * SplitV (the gradient of every decoder concatenation) slices the same input once per piece.
 * Here the axes after the innermost partial one are merged into one contiguous row, the rows are
 * copied straight from the input's buffer (see `_copy_rows.ts`), and a slice that keeps the
 * whole input shares its buffer instead of copying it.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";
import { copyRows, heapOf, onHeap, shareBuffer } from "./_copy_rows.ts";

/**
 * Slices a float32, int32 or bool buffer on the wasm heap into a new buffer the caller owns
 * (the input's own buffer, with one more reference, when the slice keeps all of it). `begin` and
 * `size` must be explicit and in range (as after `slice_util.parseSliceParams`).
 *
 * @example Take the last channel of an NHWC tensor
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { sliceOnHeap } from "./slice.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 2, 2]);
 * const y = sliceOnHeap(backend, x, [0, 0, 0, 1], [1, 1, 2, 1]); // 2, 4
 * backend.disposeData(y.dataId);
 * x.dispose();
 * ```
 */
export function sliceOnHeap(
  backend: WasmBackendLike,
  x: TensorInfo,
  begin: readonly number[],
  size: readonly number[],
): TensorInfo {
  const shape = x.shape, rank = shape.length;
  // The innermost axis the slice cuts; every axis after it is kept whole.
  let cut = rank - 1;
  while (cut >= 0 && size[cut] === shape[cut]) cut--;
  if (cut < 0) return shareBuffer(backend, x);
  const out = backend.makeOutput([...size], x.dtype);
  const count = size.reduce((p, d) => p * d, 1);
  if (count === 0) return out;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  const length = size[cut] * strides[cut];
  let from = 0;
  for (let d = 0; d <= cut; d++) from += begin[d] * strides[d];
  // Heap views after the allocation, which may grow (and detach) the heap.
  const src = heapOf(backend, x), dst = heapOf(backend, out);
  if (cut === 0) {
    copyRows(src.heap, {
      src: src.offset + from,
      srcStride: length,
      dst: dst.offset,
      dstStride: length,
      rows: 1,
      length,
    });
    return out;
  }
  // Rows along axis cut - 1, an odometer over the axes before it.
  const rows = size[cut - 1], rowStride = strides[cut - 1];
  const outer = size.slice(0, cut - 1), idx = new Array<number>(cut - 1).fill(0);
  for (let o = dst.offset, end = dst.offset + count; o < end; o += rows * length) {
    copyRows(src.heap, {
      src: src.offset + from,
      srcStride: rowStride,
      dst: o,
      dstStride: length,
      rows,
      length,
    });
    for (let d = cut - 2; d >= 0; d--) {
      from += strides[d];
      if (++idx[d] < outer[d]) break;
      from -= strides[d] * outer[d];
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Makes a Slice kernel function that runs {@linkcode sliceOnHeap} for numeric data and
 * `original` (wasm's kernel) for strings.
 *
 * @example Replace wasm's Slice
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeSliceWasm } from "./slice.ts";
 * const original = tf.getKernel("Slice", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Slice", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeSliceWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeSliceWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    if (!onHeap(x.dtype)) return original(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceOnHeap(args.backend as WasmBackendLike, x, b, s);
  };
}
