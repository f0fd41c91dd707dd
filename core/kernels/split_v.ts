/**
 * SplitV for the wasm backend: one {@linkcode sliceOnHeap} per piece, reading each piece's rows
 * straight from the input's buffer. tfjs-backend-wasm runs its Slice per piece, which copies the
 * whole input out of the heap every time; SplitV is the gradient of `tf.concat`, so the U-Net
 * decoder's skip concatenations paid for it in every training step (140-200 ms at batch 32).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";
import { onHeap } from "./_copy_rows.ts";
import { sliceOnHeap } from "./slice.ts";

/**
 * Makes a SplitV kernel function that slices numeric data with {@linkcode sliceOnHeap} and
 * leaves strings to `original` (wasm's kernel).
 *
 * @example Replace wasm's SplitV
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeSplitVWasm } from "./split_v.ts";
 * const original = tf.getKernel("SplitV", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("SplitV", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeSplitVWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeSplitVWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    if (!onHeap(x.dtype)) return original(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as {
      numOrSizeSplits: number | number[];
      axis: number;
    };
    const [a] = tf.util.parseAxisParam(axis, x.shape);
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, a);
    const backend = args.backend as WasmBackendLike;
    const begin = new Array<number>(x.shape.length).fill(0);
    const outs: TensorInfo[] = [];
    try {
      for (const s of sizes) {
        const size = [...x.shape];
        size[a] = s;
        outs.push(sliceOnHeap(backend, x, begin, size));
        begin[a] += s;
      }
    } catch (e) {
      for (const o of outs) backend.disposeData(o.dataId);
      throw e;
    }
    return outs;
  };
}
