/**
 * BatchMatMul on wasm through its one fast path. wasm's kernel uses XNNPACK only for a plain
 * [1, M, K] x [1, K, N] product; a transposed operand or a batch > 1 falls to a scalar loop
 * (0.6-0.7 GFLOP/s, shared/bench/ENGINE-NOTES.md). Every matmul gradient has a transposed
 * operand, and attention is batched, so this kernel rewrites each product onto the fast path:
 * transposed operands are transposed explicitly (O(size), against O(M K N) for the product), a
 * right operand shared by the batch turns the batch into rows of one product, and otherwise each
 * batch slice is one 2-D product written into its place of the output.
 *
 * @module
 */
import { broadcast_util } from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { composed, type KernelCalls } from "./_kernel_calls.ts";

/** Attributes tfjs passes to BatchMatMul. */
interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

const PLAIN = { transposeA: false, transposeB: false };

/** Below this many multiply-adds per slice, wasm's own loop beats per-slice XNNPACK products. */
const TINY_SLICE = 16384;

function size(shape: number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/** Copies batch slice `i` of a float32 [batch, r, c] buffer into a new [1, r, c] buffer. */
function batchSlice(k: KernelCalls, x: TensorInfo, i: number): TensorInfo {
  const [, r, c] = x.shape;
  const out = k.own(k.backend.makeOutput([1, r, c], "float32"));
  // Views are taken after the allocation, which may grow (and detach) the wasm heap.
  const src = k.backend.typedArrayFromHeap(x);
  k.backend.typedArrayFromHeap(out).set(src.subarray(i * r * c, (i + 1) * r * c));
  return out;
}

/**
 * Makes the BatchMatMul kernel function around wasm's `original`, which still runs plain 2-D
 * products, non-float32 inputs and batch shapes that broadcast both ways. Inputs `a`, `b` of rank
 * >= 2; the engine owns the output.
 *
 * @example Replace wasm's kernel, keeping the original as fallback
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { makeBatchMatMulWasm } from "./batch_mat_mul.ts";
 * const original = tf.getKernel("BatchMatMul", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("BatchMatMul", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeBatchMatMulWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeBatchMatMulWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = args.inputs.a as TensorInfo, b = args.inputs.b as TensorInfo;
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
    const plain = !transposeA && !transposeB && batchA === 1 && batchB === 1;
    const broadcastsBoth = batchA !== batchB && batchA !== 1 && batchB !== 1;
    if (plain || broadcastsBoth || a.dtype !== "float32" || b.dtype !== "float32") {
      return original(args);
    }
    const [aR, aC] = a.shape.slice(-2), [bR, bC] = b.shape.slice(-2);
    const [m, kDim] = transposeA ? [aC, aR] : [aR, aC];
    const n = transposeB ? bR : bC;
    const outer = broadcast_util.assertAndGetBroadcastShape(
      a.shape.slice(0, -2),
      b.shape.slice(0, -2),
    );
    const outShape = [...outer, m, n];
    if (batchB > 1 && batchA === batchB && m * n * kDim < TINY_SLICE) {
      // Per-slice set-up (an XNNPACK operator each) costs more than the loop on tiny slices.
      return original(args);
    }
    return composed(args.backend, (k) => {
      let a3 = k.reshape(a, [batchA, aR, aC]);
      if (transposeA) a3 = k.transpose(a3, [0, 2, 1]); // [batchA, m, kDim]
      let b3 = k.reshape(b, [batchB, bR, bC]);
      if (transposeB) b3 = k.transpose(b3, [0, 2, 1]); // [batchB, kDim, n]
      if (batchB === 1) {
        // One right operand for all: stack the batch as rows of a single product.
        const rows = k.reshape(a3, [1, batchA * m, kDim]);
        return k.reshape(k.call("BatchMatMul", { a: rows, b: b3 }, PLAIN, original), outShape);
      }
      const batch = Math.max(batchA, batchB);
      const out = k.own(k.backend.makeOutput([batch, m, n], "float32"));
      for (let i = 0; i < batch; i++) {
        const ai = batchA === 1 ? a3 : batchSlice(k, a3, i);
        const bi = batchSlice(k, b3, i);
        const oi = k.call("BatchMatMul", { a: ai, b: bi }, PLAIN, original);
        k.backend.typedArrayFromHeap(out).set(k.backend.typedArrayFromHeap(oi), i * m * n);
        k.free(oi);
        k.free(bi);
        if (ai !== a3) k.free(ai);
      }
      return k.reshape(out, outShape);
    });
  };
}
