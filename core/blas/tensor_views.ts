/**
 * Float32Array views of tensor data in the backend's own storage, so native BLAS reads inputs
 * and writes outputs in place.
 *
 * Not tied to a paper: an engine adapter. The tfjs wasm backend (4.22) keeps each tensor at
 * `backend.dataIdMap.get(dataId).memoryOffset` in the module's heap (`backend.wasm.HEAPU8`) and
 * allocates outputs with `backend.makeOutput`; an allocation may grow the WebAssembly.Memory,
 * which detaches earlier views, so views are taken after all allocations of a kernel. The cpu
 * backend keeps a typed array per tensor at `backend.data.get(dataId).values`.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { backend as tfBackend, getBackend as tfBackendName } from "@tensorflow/tfjs-core";

/** Backends whose tensors can be viewed. */
export type ViewableBackend = "wasm" | "cpu";

/** Allocation and viewing of float32 tensors on one backend instance. */
export interface TensorViews {
  /**
   * Allocates an uninitialized float32 tensor on the backend; the kernel returns it, so the
   * engine owns it. Views taken before this call may be detached: take them afterwards.
   */
  alloc(shape: number[]): tf.TensorInfo;
  /** A view of a float32 tensor's data, valid until the next `alloc`. */
  view(t: tf.TensorInfo): Float32Array;
  /** Frees a tensor made by `alloc` that the kernel will not return. */
  free(t: tf.TensorInfo): void;
}

interface WasmLike {
  wasm: { HEAPU8: Uint8Array };
  disposeData(id: unknown): void;
  dataIdMap: { get(id: unknown): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

interface CpuLike {
  disposeData(id: unknown): void;
  data: { get(id: unknown): { values?: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: "float32", values: Float32Array): tf.TensorInfo;
}

/**
 * Returns the view adapter of a backend instance (the `backend` argument of a kernel function).
 *
 * @returns An adapter whose views alias the backend's memory.
 * @throws {TypeError} When the instance does not look like the named backend.
 * @example View a cpu tensor
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { tensorViews } from "./tensor_views.ts";
 * await tf.setBackend("cpu");
 * const x = tf.tensor1d([1, 2, 3]);
 * const data = tensorViews(tf.backend(), "cpu").view(x); // Float32Array [1, 2, 3]
 * x.dispose();
 * ```
 */
export function tensorViews(backend: unknown, name: ViewableBackend): TensorViews {
  if (name === "wasm") {
    const b = backend as WasmLike;
    if (!b?.wasm?.HEAPU8 || typeof b.makeOutput !== "function") {
      throw new TypeError("tensorViews: backend is not a tfjs wasm backend");
    }
    return {
      alloc: (shape) => b.makeOutput(shape, "float32"),
      view(t) {
        const entry = b.dataIdMap.get(t.dataId);
        if (entry === undefined) throw new TypeError("tensorViews: tensor is not on this backend");
        const size = t.shape.reduce((p, d) => p * d, 1);
        return new Float32Array(b.wasm.HEAPU8.buffer, entry.memoryOffset, size);
      },
      free: (t) => b.disposeData(t.dataId),
    };
  }
  const b = backend as CpuLike;
  if (typeof b?.makeTensorInfo !== "function" || !b.data) {
    throw new TypeError("tensorViews: backend is not a tfjs cpu backend");
  }
  return {
    alloc: (shape) =>
      b.makeTensorInfo(shape, "float32", new Float32Array(shape.reduce((p, d) => p * d, 1))),
    view(t) {
      const values = b.data.get(t.dataId)?.values;
      if (!(values instanceof Float32Array)) {
        throw new TypeError("tensorViews: cpu tensor has no float32 values");
      }
      return values;
    },
    free: (t) => b.disposeData(t.dataId),
  };
}

/**
 * Float32Array views for updating tensors in place on the active backend: the views of `write`
 * and then of `read`, or `null` when that is not safe or possible (another backend than `wasm`
 * or `cpu`, a non-float32 tensor, or a `write` tensor whose buffer another tensor shares, as
 * clones and variables made from a tensor do). Writing through the views changes those tensors'
 * values without new buffers; nothing may allocate on the backend while they are in use.
 *
 * @param write Tensors to be overwritten (the caller owns them).
 * @param read Tensors only read.
 * @returns Views in the order `[...write, ...read]`, or `null`.
 * @example Double a variable in place
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { inPlaceViews } from "./tensor_views.ts";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const views = inPlaceViews([w], []);
 * if (views) views[0].forEach((x, i, a) => a[i] = 2 * x); // w is now [2, 4]
 * ```
 */
export function inPlaceViews(write: tf.Tensor[], read: tf.Tensor[]): Float32Array[] | null {
  const name = tfBackendName();
  if (name !== "wasm" && name !== "cpu") return null;
  const all = [...write, ...read];
  if (all.some((t) => t.dtype !== "float32" || t.isDisposed)) return null;
  const backend = tfBackend() as unknown as { refCount(dataId: unknown): number };
  if (write.some((t) => backend.refCount(t.dataId) !== 1)) return null;
  const views = tensorViews(backend, name);
  return all.map((t) => views.view(t));
}
