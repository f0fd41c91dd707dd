/**
 * ResizeNearestNeighborGrad as the exact adjoint of the forward resize, for cpu and wasm.
 *
 * tfjs-backend-cpu 4.22.0 offsets dy by the batch stride of the *images* tensor, so for batch > 1
 * every image but the first gets the gradient of the wrong pixels (found while checking wasm
 * training gradients against cpu). tfjs-backend-wasm's kernel is right except with
 * halfPixelCenters, where it is not the adjoint of its own forward. Nearest-neighbour resizing copies
 * x[src(r), src(c)] to y[r, c], so its gradient scatters: dx[src(r), src(c)] += dy[r, c], with
 * src() the forward kernel's own index map (alignCorners rounds, otherwise floor; halfPixelCenters
 * samples at r + 0.5).
 *
 * @module
 */
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";

/** The parts of the cpu or the wasm backend this kernel uses. */
interface BackendLike {
  readSync(dataId: object): ArrayLike<number>;
  /** cpu: wraps values in a new buffer. */
  makeTensorInfo?(shape: number[], dtype: "float32", values: Float32Array): TensorInfo;
  /** wasm: allocates a buffer on its heap. */
  makeOutput?(shape: number[], dtype: "float32"): TensorInfo;
  typedArrayFromHeap?(info: TensorInfo): Float32Array;
}

/** Source index of each output index along one axis, as the forward kernel computes it. */
function sourceIndex(
  oldSize: number,
  newSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Int32Array {
  const aligned = alignCorners && newSize > 1;
  const ratio = (aligned ? oldSize - 1 : oldSize) / (aligned ? newSize - 1 : newSize);
  return Int32Array.from({ length: newSize }, (_, i) => {
    const frac = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
    const near = Math.min(oldSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    return halfPixelCenters ? Math.max(0, near) : near;
  });
}

/**
 * The gradient kernel function (cpu or wasm): inputs `images` [N, H, W, C] (for its shape) and
 * `dy` [N, H', W', C]; output dx [N, H, W, C], owned by the engine.
 *
 * @example Replace the cpu backend's kernel
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { resizeNearestNeighborGradCpuConfig } from "./resize_nearest_neighbor_grad.ts";
 * tf.unregisterKernel("ResizeNearestNeighborGrad", "cpu");
 * tf.registerKernel(resizeNearestNeighborGradCpuConfig);
 * ```
 */
export const resizeNearestNeighborGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const images = inputs.images as TensorInfo, dy = inputs.dy as TensorInfo;
  const { alignCorners = false, halfPixelCenters = false } = attrs as {
    alignCorners?: boolean;
    halfPixelCenters?: boolean;
  };
  const [n, h, w, c] = images.shape;
  const [, dyH, dyW] = dy.shape;
  const rows = sourceIndex(h, dyH, alignCorners, halfPixelCenters);
  const cols = sourceIndex(w, dyW, alignCorners, halfPixelCenters);
  const be = backend as unknown as BackendLike;
  const g = be.readSync(dy.dataId);
  const dx = new Float32Array(n * h * w * c);
  let from = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < dyH; r++) {
      const rowBase = (b * h + rows[r]) * w;
      for (let col = 0; col < dyW; col++) {
        const to = (rowBase + cols[col]) * c;
        for (let d = 0; d < c; d++) dx[to + d] += g[from++];
      }
    }
  }
  if (be.makeOutput !== undefined && be.typedArrayFromHeap !== undefined) {
    const out = be.makeOutput([n, h, w, c], "float32");
    be.typedArrayFromHeap(out).set(dx);
    return out;
  }
  return be.makeTensorInfo!([n, h, w, c], "float32", dx);
};

/**
 * Kernel config registering {@linkcode resizeNearestNeighborGrad} for `cpu`, to be registered
 * after unregistering tfjs-backend-cpu's own.
 *
 * @example Register
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { resizeNearestNeighborGradCpuConfig } from "./resize_nearest_neighbor_grad.ts";
 * tf.unregisterKernel("ResizeNearestNeighborGrad", "cpu");
 * tf.registerKernel(resizeNearestNeighborGradCpuConfig);
 * ```
 */
export const resizeNearestNeighborGradCpuConfig: KernelConfig = {
  kernelName: "ResizeNearestNeighborGrad",
  backendName: "cpu",
  kernelFunc: resizeNearestNeighborGrad,
};

/**
 * Makes wasm's ResizeNearestNeighborGrad: `original` (wasm's kernel) where it is right, and
 * {@linkcode resizeNearestNeighborGrad} with halfPixelCenters.
 *
 * @example Replace wasm's kernel
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { makeResizeNearestNeighborGradWasm } from "./resize_nearest_neighbor_grad.ts";
 * const original = tf.getKernel("ResizeNearestNeighborGrad", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("ResizeNearestNeighborGrad", "wasm");
 *   const kernelFunc = makeResizeNearestNeighborGradWasm(original.kernelFunc);
 *   tf.registerKernel({ ...original, kernelFunc });
 * }
 * ```
 */
export function makeResizeNearestNeighborGradWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const { halfPixelCenters = false } = args.attrs as { halfPixelCenters?: boolean };
    return halfPixelCenters ? resizeNearestNeighborGrad(args) : original(args);
  };
}
