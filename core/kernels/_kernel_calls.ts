/**
 * Composes a kernel out of other registered kernels of the same backend, on raw `TensorInfo`s.
 *
 * A kernel function must not create engine tensors (it would run tf ops inside another op's
 * gradient tape and tidy scope), so it calls the backend's registered kernel functions directly,
 * exactly as tfjs backends compose their own kernels. Every intermediate buffer is recorded and
 * freed with `backend.disposeData` when the composed kernel finishes or throws, so nothing leaks:
 * neither engine tensors (`tf.memory().numTensors`) nor backend buffers (`numDataIds()`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type {
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from "@tensorflow/tfjs-core";
import { jsTransposeIsFaster, transposeOnHeap } from "./transpose.ts";

/**
 * The parts of tfjs-backend-wasm's `BackendWasm` that composed kernels use.
 *
 * @example From a kernel's `backend` argument
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import type { WasmBackendLike } from "./_kernel_calls.ts";
 * await tf.setBackend("wasm");
 * const backend = tf.engine().backend as unknown as WasmBackendLike;
 * ```
 */
export interface WasmBackendLike extends tf.KernelBackend {
  /** Allocates an output buffer on the wasm heap (refCount 1). */
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view of a buffer on the wasm heap; invalid after the heap grows, so take it late. */
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

/**
 * Kernel-level 2-D convolution attributes (NHWC, explicit padding allowed).
 *
 * @example A 'same' 3x3 convolution written with explicit padding
 * ```ts
 * import type { ConvAttrs } from "./_kernel_calls.ts";
 * const attrs: ConvAttrs = {
 *   strides: [1, 1],
 *   pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
 *   dilations: [1, 1],
 * };
 * ```
 */
export interface ConvAttrs {
  /** [strideHeight, strideWidth]. */
  strides: [number, number];
  /** `valid`, or explicit [[0, 0], [top, bottom], [left, right], [0, 0]] (all >= 0). */
  pad: "valid" | [[number, number], [number, number], [number, number], [number, number]];
  /** [dilationHeight, dilationWidth]. */
  dilations: [number, number];
}

/**
 * Calls registered kernels of one backend and frees every intermediate it made. The caller owns
 * only the `TensorInfo` passed to {@linkcode KernelCalls.finish}. Use it through
 * {@linkcode composed}, which also frees on error.
 *
 * @example Transpose then reshape, keeping only the result
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { KernelCalls } from "./_kernel_calls.ts";
 * await tf.setBackend("wasm");
 * const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
 * const k = new KernelCalls(tf.engine().backend);
 * const out = k.finish(k.reshape(k.transpose(x, [1, 0]), [6]));
 * k.backend.disposeData(out.dataId);
 * x.dispose();
 * ```
 */
export class KernelCalls {
  readonly backend: WasmBackendLike;
  readonly #backendName: string;
  readonly #made: TensorInfo[] = [];

  /** Records calls on `backend` (a kernel's `backend` argument), registered as `backendName`. */
  constructor(backend: unknown, backendName = "wasm") {
    this.backend = backend as WasmBackendLike;
    this.#backendName = backendName;
  }

  /** Runs a single-output kernel; `kernelFunc` overrides the registry lookup (e.g. an original). */
  call(
    kernelName: string,
    inputs: NamedTensorInfoMap,
    attrs: NamedAttrMap = {},
    kernelFunc?: KernelFunc,
  ): TensorInfo {
    const fn = kernelFunc ?? tf.getKernel(kernelName, this.#backendName)?.kernelFunc;
    if (fn === undefined) {
      throw new Error(`kernel ${kernelName} is not registered for ${this.#backendName}`);
    }
    const out = fn({ inputs, attrs, backend: this.backend }) as TensorInfo;
    this.#made.push(out);
    return out;
  }

  /** Records a buffer this scope allocated by hand (e.g. with `makeOutput`). */
  own(info: TensorInfo): TensorInfo {
    this.#made.push(info);
    return info;
  }

  /** Frees one intermediate now (e.g. inside a loop) instead of at the end. */
  free(info: TensorInfo): void {
    const i = this.#made.lastIndexOf(info);
    if (i < 0) return; // not ours: a caller's input is never freed
    this.#made.splice(i, 1);
    this.backend.disposeData(info.dataId);
  }

  /** `tf.transpose`, by the backend's kernel or, where wasm's is slow, {@linkcode transposeOnHeap}. */
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    if (this.#backendName !== "wasm" || !jsTransposeIsFaster(x.shape, perm)) {
      return this.call("Transpose", { x }, { perm });
    }
    return this.own(transposeOnHeap(this.backend, x, perm));
  }

  /** `tf.reshape` at kernel level (shares the buffer; freeing it only drops a reference). */
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.call("Reshape", { x }, { shape });
  }

  /** `tf.reverse` at kernel level. */
  reverse(x: TensorInfo, dims: number[]): TensorInfo {
    return this.call("Reverse", { x }, { dims });
  }

  /** `tf.pad` with zeros at kernel level. */
  pad(x: TensorInfo, paddings: [number, number][]): TensorInfo {
    return this.call("PadV2", { x }, { paddings, constantValue: 0 });
  }

  /** `tf.slice` at kernel level. */
  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.call("Slice", { x }, { begin, size });
  }

  /** Forward NHWC `tf.conv2d` at kernel level. */
  conv2d(x: TensorInfo, filter: TensorInfo, attrs: ConvAttrs): TensorInfo {
    return this.call("Conv2D", { x, filter }, {
      ...attrs,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
    } as unknown as NamedAttrMap);
  }

  /** Frees every intermediate except `keep`, which the caller (the engine) then owns. */
  finish(keep: TensorInfo): TensorInfo {
    const i = this.#made.lastIndexOf(keep);
    if (i >= 0) this.#made.splice(i, 1);
    this.dispose();
    return keep;
  }

  /** Frees every intermediate recorded so far. */
  dispose(): void {
    for (const info of this.#made.splice(0)) this.backend.disposeData(info.dataId);
  }
}

/**
 * Runs `body` with a fresh {@linkcode KernelCalls} and frees its intermediates, also on error.
 * `body` returns the one output buffer, which the engine then owns. `backendName` (default `wasm`)
 * names the registry the kernels are looked up in.
 *
 * @example A kernel function built from two wasm kernels
 * ```ts
 * import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
 * import { composed } from "./_kernel_calls.ts";
 * // x^T reversed along its rows: intermediates are freed, the engine owns the result.
 * const flipT: KernelFunc = ({ inputs, backend }) =>
 *   composed(backend, (k) => k.reverse(k.transpose(inputs.x as TensorInfo, [1, 0]), [0]));
 * ```
 */
export function composed(
  backend: unknown,
  body: (k: KernelCalls) => TensorInfo,
  backendName = "wasm",
): TensorInfo {
  const k = new KernelCalls(backend, backendName);
  try {
    return k.finish(body(k));
  } catch (e) {
    k.dispose();
    throw e;
  }
}
