/**
 * Identity and same-dtype Cast for the wasm backend without a copy: the output shares the input's
 * buffer by reference count, as every backend's Reshape does and as tfjs-backend-cpu's Identity
 * does. tfjs-backend-wasm copies the whole tensor for both, and the engine runs Identity on every
 * tensor it saves for the backward pass (`ENGINE.clone`), while `tf.avgPool` ends in a float32 to
 * float32 Cast: in a unet-bench training step that was ~750 full-size copies (about 4 % of it).
 *
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { WasmBackendLike } from "./_kernel_calls.ts";
import { onHeap, shareBuffer } from "./_copy_rows.ts";

/**
 * Makes an Identity kernel function that shares the input's buffer; `original` (wasm's kernel)
 * handles strings.
 *
 * @example Replace wasm's Identity
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeIdentityWasm } from "./identity.ts";
 * const original = tf.getKernel("Identity", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Identity", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeIdentityWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeIdentityWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    if (!onHeap(x.dtype)) return original(args);
    return shareBuffer(args.backend as WasmBackendLike, x);
  };
}

/**
 * Makes a Cast kernel function that shares the input's buffer when the dtype does not change;
 * `original` (wasm's kernel) converts between dtypes.
 *
 * @example Replace wasm's Cast
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { makeCastWasm } from "./identity.ts";
 * const original = tf.getKernel("Cast", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Cast", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeCastWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeCastWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as TensorInfo;
    const { dtype } = args.attrs as { dtype: string };
    if (dtype !== x.dtype || !onHeap(x.dtype)) return original(args);
    return shareBuffer(args.backend as WasmBackendLike, x);
  };
}
