/**
 * Strided row copies between buffers on the wasm heap, the inner loop of the Slice, SplitV and
 * Concat kernels. tfjs-backend-wasm copies each row with `set(subarray(...))`, which allocates a
 * view per row and costs ~15 ns per element on 4-element rows (a channel slice of an NHWC tensor
 * has one row per pixel); here short rows are copied element by element and long rows with
 * `copyWithin` on one view of the whole heap (a native memmove, no allocation).
 *
 * @module
 */
import type { DataType, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";

/**
 * A typed view of the wasm heap.
 *
 * @example A float32 view
 * ```ts
 * import type { Heap } from "./_copy_rows.ts";
 * const heap: Heap = new Float32Array(4);
 * ```
 */
export type Heap = Float32Array | Int32Array | Uint8Array;

/** Rows at least this long are moved with `copyWithin` (measured break-even: 16 to 32). */
const LONG_ROW = 24;

/**
 * Whether a dtype lives as plain numbers on the wasm heap (strings do not).
 *
 * @example Strings stay with wasm's own kernels
 * ```ts
 * import { onHeap } from "./_copy_rows.ts";
 * onHeap("float32"); // true
 * onHeap("string"); // false
 * ```
 */
export function onHeap(dtype: DataType): boolean {
  return dtype === "float32" || dtype === "int32" || dtype === "bool";
}

/**
 * A view of the whole wasm heap in the element type of `info`, and the element offset of
 * `info`'s buffer in it. Take it after the last allocation: a growing heap detaches old views.
 *
 * @example The heap view of a tensor's buffer
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { heapOf } from "./_copy_rows.ts";
 * await tf.setBackend("wasm");
 * const x = tf.tensor1d([1, 2, 3]);
 * const { heap, offset } = heapOf(tf.engine().backend as unknown as WasmBackendLike, x);
 * heap[offset + 1]; // 2
 * x.dispose();
 * ```
 */
export function heapOf(
  backend: WasmBackendLike,
  info: TensorInfo,
): { heap: Heap; offset: number } {
  const view = backend.typedArrayFromHeap(info) as unknown as Heap;
  const Ctor = view.constructor as Float32ArrayConstructor;
  return { heap: new Ctor(view.buffer), offset: view.byteOffset / view.BYTES_PER_ELEMENT };
}

/**
 * Copies `rows` rows of `length` elements within one heap view: row `i` goes from
 * `src + i * srcStride` to `dst + i * dstStride`. Source and destination must not overlap.
 *
 * @example Interleave two 2-element rows into a 4-wide row
 * ```ts
 * import { copyRows } from "./_copy_rows.ts";
 * const heap = Float32Array.from([1, 2, 3, 4, 0, 0, 0, 0]);
 * copyRows(heap, { src: 0, srcStride: 2, dst: 4, dstStride: 2, rows: 2, length: 2 });
 * // heap: 1, 2, 3, 4, 1, 2, 3, 4
 * ```
 */
export function copyRows(
  heap: Heap,
  plan: {
    src: number;
    srcStride: number;
    dst: number;
    dstStride: number;
    rows: number;
    length: number;
  },
): void {
  const { srcStride, dstStride, rows, length } = plan;
  let s = plan.src, d = plan.dst;
  if (rows === 1 || (srcStride === length && dstStride === length)) {
    heap.copyWithin(d, s, s + rows * length);
  } else if (length >= LONG_ROW) {
    for (let r = 0; r < rows; r++, s += srcStride, d += dstStride) {
      heap.copyWithin(d, s, s + length);
    }
  } else {
    for (let r = 0; r < rows; r++, s += srcStride, d += dstStride) {
      for (let j = 0; j < length; j++) heap[d + j] = heap[s + j];
    }
  }
}

/**
 * The output of a kernel that equals its input: the input's buffer with one more reference, as
 * tfjs backends return a reshape. Tensors are immutable, so sharing is safe.
 *
 * @example Share a buffer
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { shareBuffer } from "./_copy_rows.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const x = tf.tensor1d([1, 2]);
 * const y = shareBuffer(backend, x, [2, 1]); // same data, shape [2, 1]
 * backend.disposeData(y.dataId);
 * x.dispose();
 * ```
 */
export function shareBuffer(
  backend: WasmBackendLike,
  x: TensorInfo,
  shape: readonly number[] = x.shape,
  dtype: DataType = x.dtype,
): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...shape], dtype };
}
