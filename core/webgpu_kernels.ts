/**
 * The project's kernels for the webgpu backend, registered over tfjs-backend-webgpu's own where
 * those are wrong (ResizeNearestNeighborGrad with halfPixelCenters) or slow (Conv2DBackpropFilter,
 * one thread per weight, replaced by im2col + matMul). See the modules under `kernels/`.
 *
 * Called by `webgpu.ts` after it has imported tfjs-backend-webgpu; it takes the package's
 * `webgpu_util` as an argument so that this module never imports the package itself.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc } from "@tensorflow/tfjs-core";
import {
  makeResizeNearestNeighborGradWebGpu,
  type WebGpuUtil,
} from "./kernels/resize_nearest_neighbor_grad_webgpu.ts";
import { makeConv2dBackpropFilterWebGpu } from "./kernels/conv2d_backprop_filter_webgpu.ts";

export type { WebGpuUtil };

const BACKEND = "webgpu";

/**
 * Registers the project's webgpu kernels, replacing tfjs-backend-webgpu's versions. Idempotent.
 *
 * @param util tfjs-backend-webgpu's `webgpu_util`.
 * @param bindingLimit The adapter's storage-binding limit in bytes (see the backprop-filter kernel).
 * @returns The names of the kernels registered.
 * @example
 * ```ts ignore
 * const pkg = await import("@tensorflow/tfjs-backend-webgpu");
 * registerWebGpuKernels(pkg.webgpu_util, 128 * 1024 * 1024);
 * ```
 */
export function registerWebGpuKernels(util: WebGpuUtil, bindingLimit: number): string[] {
  const kernels: [string, KernelFunc][] = [
    ["ResizeNearestNeighborGrad", makeResizeNearestNeighborGradWebGpu(util)],
    ["Conv2DBackpropFilter", makeConv2dBackpropFilterWebGpu(bindingLimit)],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current !== undefined) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc });
  }
  return kernels.map(([name]) => name);
}
