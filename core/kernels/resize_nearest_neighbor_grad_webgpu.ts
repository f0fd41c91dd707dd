/**
 * ResizeNearestNeighborGrad for the webgpu backend, as the exact adjoint of webgpu's own forward
 * kernel (see `resize_nearest_neighbor_grad.ts` for the formulation dx[src(r), src(c)] += dy[r, c]).
 *
 * tfjs-backend-webgpu 4.22.0 ignores `halfPixelCenters` in its gradient: its index map is the
 * plain floor(r * in / out), while the forward samples at (r + 0.5) * in / out, so the gradient
 * lands on the wrong pixels. This program computes, for each dx element, the sum over the dy
 * pixels whose forward source index is that element, with the forward's f32 index arithmetic
 * (including `halfPixelCenters`), searching a window of dy around r * out / in.
 *
 * @module
 */
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";

/** The two helpers of tfjs-backend-webgpu's `webgpu_util` that programs need. */
export interface WebGpuUtil {
  /** The flat dispatch layout of an output shape. */
  flatDispatchLayout(shape: number[]): { x: number[] };
  /** Workgroup counts for a layout, output shape and workgroup size. */
  computeDispatch(
    layout: { x: number[] },
    shape: number[],
    workgroupSize: [number, number, number],
  ): [number, number, number];
}

/** The part of tfjs-backend-webgpu's `WebGPUBackend` a program runs through. */
interface WebGpuRunner {
  runWebGPUProgram(
    program: object,
    inputs: TensorInfo[],
    dtype: "float32",
    uniforms: { type: "float32" | "int32"; data: number[] }[],
  ): TensorInfo;
}

function shader(halfPixelCenters: boolean): string {
  // The forward kernel's source index of output row/column `rc` (resize_nearest_neighbor_webgpu).
  const frac = halfPixelCenters
    ? "max((vec2<f32>(rc) + vec2<f32>(0.5)) * ratio, vec2<f32>(0.0))"
    : "vec2<f32>(rc) * ratio";
  return `
    fn sourceRC(rc : vec2<i32>) -> vec2<i32> {
      let inSize = vec2<f32>(f32(uniforms.outShape.y) - uniforms.adjust[0],
                             f32(uniforms.outShape.z) - uniforms.adjust[1]);
      let outSize = vec2<f32>(f32(uniforms.dyShape.y) - uniforms.adjust[0],
                              f32(uniforms.dyShape.z) - uniforms.adjust[1]);
      let ratio = inSize / outSize;
      let shape = vec2<f32>(f32(uniforms.outShape.y), f32(uniforms.outShape.z));
      return vec2<i32>(min(shape - 1.0, floor(${frac} + uniforms.roundBase)));
    }
    fn main(index : i32) {
      if (index < uniforms.size) {
        let coords = getOutputCoords();
        let b = coords[0];
        let r = coords[1];
        let c = coords[2];
        let d = coords[3];
        let startR = i32(floor(f32(r) * uniforms.inverse[0])) - uniforms.window[0] / 2;
        let startC = i32(floor(f32(c) * uniforms.inverse[1])) - uniforms.window[1] / 2;
        var sum = 0.0;
        for (var i = 0; i < uniforms.window[0]; i++) {
          let dyR = startR + i;
          if (dyR < 0 || dyR >= uniforms.dyShape[1]) { continue; }
          if (sourceRC(vec2<i32>(dyR, 0)).x != r) { continue; }
          for (var j = 0; j < uniforms.window[1]; j++) {
            let dyC = startC + j;
            if (dyC < 0 || dyC >= uniforms.dyShape[2]) { continue; }
            if (sourceRC(vec2<i32>(0, dyC)).y == c) { sum += getDy(b, dyR, dyC, d); }
          }
        }
        setOutputAtIndex(index, sum);
      }
    }`;
}

/**
 * Makes the webgpu ResizeNearestNeighborGrad kernel function: inputs `images` (for its shape) and
 * `dy`, attributes `alignCorners`, `halfPixelCenters`; output dx with the shape of `images`.
 *
 * @param util tfjs-backend-webgpu's `webgpu_util` (the package is loaded only dynamically).
 * @returns The kernel function.
 * @example Register it (after importing tfjs-backend-webgpu as `pkg`)
 * ```ts ignore
 * tf.unregisterKernel("ResizeNearestNeighborGrad", "webgpu");
 * tf.registerKernel({
 *   kernelName: "ResizeNearestNeighborGrad",
 *   backendName: "webgpu",
 *   kernelFunc: makeResizeNearestNeighborGradWebGpu(pkg.webgpu_util),
 * });
 * ```
 */
export function makeResizeNearestNeighborGradWebGpu(util: WebGpuUtil): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const images = inputs.images as TensorInfo, dy = inputs.dy as TensorInfo;
    const { alignCorners = false, halfPixelCenters = false } = attrs as {
      alignCorners?: boolean;
      halfPixelCenters?: boolean;
    };
    const [, h, w] = images.shape, [, dyH, dyW] = dy.shape;
    const adjust = [alignCorners && dyH > 1 ? 1 : 0, alignCorners && dyW > 1 ? 1 : 0];
    // dy rows per dx row, and a search window that covers every dy row mapping to one dx row.
    const inverse = [(dyH - adjust[0]) / (h - adjust[0]), (dyW - adjust[1]) / (w - adjust[1])];
    const window = inverse.map((v) => 2 * Math.ceil(v) + 4);
    const outputShape = images.shape;
    const dispatchLayout = util.flatDispatchLayout(outputShape);
    const workgroupSize: [number, number, number] = [64, 1, 1];
    const program = {
      variableNames: ["dy"],
      uniforms: "adjust : vec2<f32>, inverse : vec2<f32>, window : vec2<i32>, roundBase : f32,",
      workgroupSize,
      size: true,
      outputShape,
      dispatchLayout,
      dispatch: util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
      shaderKey: `diffuseResizeNearestGrad_${halfPixelCenters}`,
      getUserCode: () => shader(halfPixelCenters),
    };
    return (backend as unknown as WebGpuRunner).runWebGPUProgram(program, [dy], "float32", [
      { type: "float32", data: adjust },
      { type: "float32", data: inverse },
      { type: "int32", data: window },
      { type: "float32", data: [alignCorners ? 0.5 : 0] },
    ]);
  };
}
