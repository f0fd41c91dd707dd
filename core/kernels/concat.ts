/**
 * Concat for the wasm backend as strided row copies on the heap. tfjs-backend-wasm copies each
 * input row with a new `subarray` view; a channel concatenation of NHWC tensors (every U-Net
 * decoder block) has one short row per pixel and input, ~4-25 ns per element. Here each input is
 * copied as `outer` rows of its inner size into its column block of the output (see
 * `_copy_rows.ts`), and a concatenation with one non-empty input shares that input's buffer.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";
import { copyRows, heapOf, onHeap, shareBuffer } from "./_copy_rows.ts";

/**
 * Concatenates float32, int32 or bool buffers on the wasm heap along `axis` into a new buffer the
 * caller owns. All inputs share a dtype and every dimension but `axis`.
 *
 * @example Concatenate channels
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { concatOnHeap } from "./concat.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const a = tf.tensor2d([[1], [2]]), b = tf.tensor2d([[3, 4], [5, 6]]);
 * const y = concatOnHeap(backend, [a, b], 1); // [[1, 3, 4], [2, 5, 6]]
 * backend.disposeData(y.dataId);
 * tf.dispose([a, b]);
 * ```
 */
export function concatOnHeap(
  backend: WasmBackendLike,
  inputs: readonly TensorInfo[],
  axis: number,
): TensorInfo {
  const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
  const nonEmpty = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  if (nonEmpty.length === 1) return shareBuffer(backend, nonEmpty[0], outShape);
  const out = backend.makeOutput(outShape, inputs[0].dtype);
  if (nonEmpty.length === 0) return out;
  const outer = tf.util.sizeFromShape(outShape.slice(0, axis));
  const width = tf.util.sizeFromShape(outShape.slice(axis));
  // Heap views after the allocation, which may grow (and detach) the heap.
  const dst = heapOf(backend, out);
  let column = 0;
  for (const t of nonEmpty) {
    const length = tf.util.sizeFromShape(t.shape.slice(axis));
    const src = heapOf(backend, t);
    copyRows(dst.heap, {
      src: src.offset,
      srcStride: length,
      dst: dst.offset + column,
      dstStride: width,
      rows: outer,
      length,
    });
    column += length;
  }
  return out;
}

/**
 * Makes a Concat kernel function that runs {@linkcode concatOnHeap} for numeric data and
 * `original` (wasm's kernel) for strings.
 *
 * @example Replace wasm's Concat
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeConcatWasm } from "./concat.ts";
 * const original = tf.getKernel("Concat", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Concat", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeConcatWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeConcatWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const inputs = Object.values(args.inputs) as TensorInfo[];
    if (inputs.length === 0 || !inputs.every((t) => onHeap(t.dtype))) return original(args);
    if (!inputs.every((t) => t.dtype === inputs[0].dtype)) return original(args);
    const [axis] = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, inputs[0].shape);
    tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    return concatOnHeap(args.backend as WasmBackendLike, inputs, axis);
  };
}
