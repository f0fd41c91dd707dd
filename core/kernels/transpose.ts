/**
 * Transpose on the wasm heap in plain JavaScript, for the permutations where wasm's own kernel is
 * slow: it moves about one element per 30 ns in a matrix transpose with power-of-two strides
 * (15 ms for 8192 x 64) and is slower still at rank >= 5, while walking the output in order with
 * strided reads from the input moves one per ~1 ns. The permutation is first simplified: size-1
 * axes are dropped and input axes that stay adjacent and in order are merged, so most
 * permutations a network uses become a 2-D or 3-D transpose, often of contiguous channel chunks.
 *
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";

type Heap = Float32Array | Int32Array | Uint8Array;

/** Chunks at least this long are moved with `copyWithin` rather than element by element. */
const LONG_CHUNK = 16;

/**
 * Drops size-1 axes and merges runs of input axes that stay adjacent and in order: an equivalent
 * permutation of lowest rank.
 *
 * @example An NHWC to HWNC transpose is a 3-D one
 * ```ts
 * import { simplifyPermutation } from "./transpose.ts";
 * simplifyPermutation([8, 32, 32, 64], [1, 2, 0, 3]); // { shape: [8, 1024, 64], perm: [1, 0, 2] }
 * ```
 */
export function simplifyPermutation(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const kept = perm.filter((p) => shape[p] !== 1);
  // Groups of consecutive input axes, in output order.
  const groups: number[][] = [];
  for (const p of kept) {
    const last = groups.at(-1);
    if (last !== undefined && nextKept(shape, last.at(-1)!) === p) last.push(p);
    else groups.push([p]);
  }
  const byInput = [...groups].sort((a, b) => a[0] - b[0]);
  return {
    shape: byInput.map((g) => g.reduce((s, p) => s * shape[p], 1)),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

function nextKept(shape: readonly number[], axis: number): number {
  let next = axis + 1;
  while (next < shape.length && shape[next] === 1) next++;
  return next;
}

/**
 * Writes `src` (of `shape`) permuted by `perm` into `dst`, which must have the same length.
 * Kernels call {@linkcode transposeOnHeap}; this is the loop, on plain typed arrays.
 *
 * @example Transpose a 2 x 3 matrix
 * ```ts
 * import { transposeInto } from "./transpose.ts";
 * const dst = new Float32Array(6);
 * transposeInto(Float32Array.from([1, 2, 3, 4, 5, 6]), dst, [2, 3], [1, 0]);
 * // dst: 1, 4, 2, 5, 3, 6
 * ```
 */
export function transposeInto(
  src: Heap,
  dst: Heap,
  shape: readonly number[],
  perm: readonly number[],
): void {
  const s = simplifyPermutation(shape, perm);
  let rank = s.perm.length;
  if (rank <= 1) {
    dst.set(src.subarray(0, dst.length));
    return;
  }
  // A last axis that stays last is copied as contiguous chunks.
  const chunk = s.perm[rank - 1] === rank - 1 ? s.shape[rank - 1] : 1;
  if (chunk > 1) rank--;
  const inStrides = new Array<number>(rank);
  let stride = chunk;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = stride;
    stride *= s.shape[d];
  }
  const outShape = s.perm.slice(0, rank).map((p) => s.shape[p]);
  const steps = s.perm.slice(0, rank).map((p) => inStrides[p]);
  const inner = outShape[rank - 1], innerStep = steps[rank - 1];
  const sameBuffer = src.buffer === dst.buffer && src.BYTES_PER_ELEMENT === dst.BYTES_PER_ELEMENT;
  const heap = sameBuffer ? new (src.constructor as Float32ArrayConstructor)(src.buffer) : dst;
  const srcBase = src.byteOffset / src.BYTES_PER_ELEMENT;
  const dstBase = dst.byteOffset / dst.BYTES_PER_ELEMENT;
  const idx = new Array<number>(rank).fill(0);
  let from = 0;
  for (let o = 0; o < dst.length;) {
    if (chunk === 1) {
      for (let j = 0, at = from; j < inner; j++, at += innerStep) dst[o++] = src[at];
    } else if (chunk < LONG_CHUNK || !sameBuffer) {
      for (let j = 0, at = from; j < inner; j++, at += innerStep) {
        for (let c = 0; c < chunk; c++) dst[o++] = src[at + c];
      }
    } else {
      // Both views share the wasm heap: a native memmove per chunk.
      for (let j = 0, at = from; j < inner; j++, at += innerStep, o += chunk) {
        heap.copyWithin(dstBase + o, srcBase + at, srcBase + at + chunk);
      }
    }
    // Odometer over the outer output axes.
    for (let d = rank - 2; d >= 0; d--) {
      from += steps[d];
      if (++idx[d] < outShape[d]) break;
      from -= steps[d] * outShape[d];
      idx[d] = 0;
    }
  }
}

function heapView(backend: WasmBackendLike, info: TensorInfo): Heap {
  return backend.typedArrayFromHeap(info) as unknown as Heap;
}

/**
 * Transposes a float32, int32 or bool buffer on the wasm heap into a new buffer the caller owns.
 *
 * @example Transpose a matrix's buffer
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * import { transposeOnHeap } from "./transpose.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
 * const xT = transposeOnHeap(backend, x, [1, 0]); // [3, 2]: 1, 4, 2, 5, 3, 6
 * backend.disposeData(xT.dataId);
 * x.dispose();
 * ```
 */
export function transposeOnHeap(
  backend: WasmBackendLike,
  x: TensorInfo,
  perm: readonly number[],
): TensorInfo {
  const out = backend.makeOutput(perm.map((p) => x.shape[p]), x.dtype);
  // Views after the allocation, which may grow (and detach) the heap.
  transposeInto(heapView(backend, x), heapView(backend, out), x.shape, perm);
  return out;
}

/**
 * Whether {@linkcode transposeOnHeap} beats wasm's kernel for this permutation: measured for a
 * (batched) matrix transpose, where wasm's kernel slows to ~30 ns per element on power-of-two
 * strides, and for rank >= 5 after simplification (67 ms against 0.2 ms for a 6-D interleave of
 * 0.5 M elements). wasm's kernel is faster for the rank-3 and rank-4 rest.
 *
 * @example Choose
 * ```ts
 * import { jsTransposeIsFaster } from "./transpose.ts";
 * jsTransposeIsFaster([8192, 64], [1, 0]); // true
 * jsTransposeIsFaster([8, 256, 4, 32], [0, 2, 1, 3]); // false
 * ```
 */
export function jsTransposeIsFaster(shape: readonly number[], perm: readonly number[]): boolean {
  const p = simplifyPermutation(shape, perm).perm;
  return p.length >= 5 || p.join() === "1,0" || p.join() === "0,2,1";
}

/**
 * Makes a Transpose kernel function that runs {@linkcode transposeOnHeap} for numeric data where
 * {@linkcode jsTransposeIsFaster}, and `original` (wasm's kernel) for anything else.
 *
 * @example Replace wasm's Transpose
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { makeTransposeWasm } from "./transpose.ts";
 * const original = tf.getKernel("Transpose", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Transpose", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeTransposeWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeTransposeWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    const { perm } = args.attrs as unknown as { perm: number[] };
    const numeric = x.dtype === "float32" || x.dtype === "int32" || x.dtype === "bool";
    if (!numeric || !jsTransposeIsFaster(x.shape, perm)) return original(args);
    return transposeOnHeap(args.backend as WasmBackendLike, x, perm);
  };
}
