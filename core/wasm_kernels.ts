/**
 * The project's training kernels for the wasm backend (DESIGN.md "Engine"): the one gradient
 * kernel wasm lacks (Conv2DBackpropFilter) and replacements for kernels wasm runs slowly
 * (Conv2DBackpropInput; BatchMatMul with transposed operands or batch > 1; Transpose of matrices
 * and of rank >= 5; Slice, SplitV and Concat as strided row copies; Sum and Mean over leading or
 * middle axes; Identity and same-dtype Cast as shared buffers instead of copies; nearest-neighbour
 * upsampling by whole factors as row copies), and a fix of
 * ResizeNearestNeighborGrad with halfPixelCenters. Each is built
 * from wasm's own XNNPACK kernels or plain loops on the wasm heap; see the modules under
 * `kernels/` for the formulations and measured speed-ups.
 *
 * Overridden kernels keep wasm's original as a fallback, and their configs keep its `setupFunc`,
 * so a re-initialized wasm backend still sets the original up.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelConfig, KernelFunc } from "@tensorflow/tfjs-core";
import { conv2dBackpropFilterWasm } from "./kernels/conv2d_backprop_filter.ts";
import { makeConv2dBackpropInputWasm } from "./kernels/conv2d_backprop_input.ts";
import { makeBatchMatMulWasm } from "./kernels/batch_mat_mul.ts";
import { makeTransposeWasm } from "./kernels/transpose.ts";
import { makeResizeNearestNeighborGradWasm } from "./kernels/resize_nearest_neighbor_grad.ts";
import { makeResizeNearestNeighborWasm } from "./kernels/resize_nearest_neighbor.ts";
import { makeCastWasm, makeIdentityWasm } from "./kernels/identity.ts";
import { makeSliceWasm } from "./kernels/slice.ts";
import { makeSplitVWasm } from "./kernels/split_v.ts";
import { makeConcatWasm } from "./kernels/concat.ts";
import { makeReduceWasm } from "./kernels/reduce.ts";

const BACKEND = "wasm";

/** Replacements of wasm kernels: each wraps wasm's original, which it keeps as a fallback. */
const OVERRIDES: { name: string; make: (original: KernelFunc) => KernelFunc }[] = [
  { name: "Conv2DBackpropInput", make: makeConv2dBackpropInputWasm },
  { name: "BatchMatMul", make: makeBatchMatMulWasm },
  { name: "Transpose", make: makeTransposeWasm },
  { name: "ResizeNearestNeighbor", make: makeResizeNearestNeighborWasm },
  { name: "ResizeNearestNeighborGrad", make: makeResizeNearestNeighborGradWasm },
  { name: "Identity", make: makeIdentityWasm },
  { name: "Cast", make: makeCastWasm },
  { name: "Slice", make: makeSliceWasm },
  { name: "SplitV", make: makeSplitVWasm },
  { name: "Concat", make: makeConcatWasm },
  { name: "Sum", make: makeReduceWasm("Sum") },
  { name: "Mean", make: makeReduceWasm("Mean") },
];

/** Kernel functions installed by this module, to recognise them on a second call. */
const installed = new Set<KernelFunc>();

function isOurs(config: KernelConfig | undefined): boolean {
  return config !== undefined && installed.has(config.kernelFunc);
}

function install(name: string, kernelFunc: KernelFunc, original?: KernelConfig): void {
  if (original !== undefined) tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({
    kernelName: name,
    backendName: BACKEND,
    kernelFunc,
    setupFunc: original?.setupFunc,
    disposeFunc: original?.disposeFunc,
  });
  installed.add(kernelFunc);
}

/**
 * Registers the project's training kernels on the wasm backend. Idempotent: a second call finds
 * its own kernels in place and changes nothing. A Conv2DBackpropFilter that wasm provides natively
 * (in some later tfjs) is left alone; an overridden kernel is unregistered first and its original
 * stays reachable as the fallback of its replacement.
 *
 * @returns The names of the kernels of this module now registered for `wasm`.
 * @example Register after choosing the wasm backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-wasm";
 * import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
 * await tf.setBackend("wasm");
 * const names = registerWasmTrainingKernels(); // ["Conv2DBackpropFilter", ...]
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  const names: string[] = [];
  const filter = tf.getKernel("Conv2DBackpropFilter", BACKEND);
  if (filter === undefined) install("Conv2DBackpropFilter", conv2dBackpropFilterWasm);
  if (filter === undefined || isOurs(filter)) names.push("Conv2DBackpropFilter");
  for (const { name, make } of OVERRIDES) {
    const current = tf.getKernel(name, BACKEND);
    if (current === undefined) continue; // nothing to replace
    if (!isOurs(current)) install(name, make(current.kernelFunc), current);
    names.push(name);
  }
  return names;
}
