/**
 * Conv2DBackpropFilter for the webgpu backend as im2col + one matrix product.
 *
 * With forward stride s and padding (top pt, left pl), the weight gradient is
 *   dW[kh, kw, ci, co] = sum_{n, i, j} x[n, s i + kh - pt, s j + kw - pl, ci] dy[n, i, j, co].
 * For each tap (kh, kw) the strided slice of the zero-padded x, X_{kh,kw}[n, i, j, ci], is one
 * block of columns of the im2col matrix X = [X_{0,0} | X_{0,1} | ...] of shape [N Ho Wo, kH kW Ci],
 * and dW = X^T dy reshaped to [kH, kW, Ci, Co] (Chellapilla et al., "High Performance
 * Convolutional Neural Networks for Document Processing", 2006). tfjs-backend-webgpu 4.22.0 runs
 * one thread per weight, each looping over all N Ho Wo pixels; its tiled matrix product is faster.
 * When X would exceed the adapter's storage-binding limit, the product is split per tap
 * (dW[kh, kw] = X_{kh,kw}^T dy) and the blocks are concatenated, so no buffer grows past dy and x.
 *
 * @module
 */
import type { KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { type BackpropFilterAttrs, filterGradOperands } from "./_filter_grad_operands.ts";
import { composed, type KernelCalls } from "./_kernel_calls.ts";

/** [a]^T [b] over all pixels, as a [1, rows(a)^T, cols(b)] product reshaped by the caller. */
function gram(k: KernelCalls, a: TensorInfo, b: TensorInfo): TensorInfo {
  return k.call("BatchMatMul", { a, b }, { transposeA: true, transposeB: false });
}

/**
 * Makes the webgpu Conv2DBackpropFilter kernel function: inputs `x` [N, H, W, Ci] and `dy`
 * [N, Ho, Wo, Co], output `filterShape` [kH, kW, Ci, Co]; intermediates are freed.
 *
 * @param bindingLimit The adapter's `maxStorageBufferBindingSize` in bytes; above it the im2col
 * matrix is not built and the product is split per tap.
 * @returns The kernel function.
 * @example Register it (after tfjs-backend-webgpu is loaded)
 * ```ts ignore
 * tf.unregisterKernel("Conv2DBackpropFilter", "webgpu");
 * tf.registerKernel({
 *   kernelName: "Conv2DBackpropFilter",
 *   backendName: "webgpu",
 *   kernelFunc: makeConv2dBackpropFilterWebGpu(128 * 1024 * 1024),
 * });
 * ```
 */
export function makeConv2dBackpropFilterWebGpu(bindingLimit: number): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const a = attrs as unknown as BackpropFilterAttrs;
    return composed(backend, (k) => {
      const { x, dy, info } = filterGradOperands(k, inputs, a);
      const { filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
      const { outHeight: ho, outWidth: wo, inHeight: h, inWidth: w, padInfo } = info;
      const n = info.batchSize, ci = info.inChannels, co = info.outChannels;
      const pixels = n * ho * wo;
      // Rows (columns) past the input that the forward pass read as zeros.
      const bottom = Math.max(0, (ho - 1) * sH + kH - padInfo.top - h);
      const right = Math.max(0, (wo - 1) * sW + kW - padInfo.left - w);
      const padded = padInfo.top || padInfo.left || bottom || right
        ? k.pad(x, [[0, 0], [padInfo.top, bottom], [padInfo.left, right], [0, 0]])
        : x;
      const tap = (kh: number, kw: number): TensorInfo => {
        const begin = [0, kh, kw, 0];
        const slice = sH === 1 && sW === 1
          ? k.slice(padded, begin, [n, ho, wo, ci])
          : k.call("StridedSlice", { x: padded }, {
            begin,
            end: [n, kh + (ho - 1) * sH + 1, kw + (wo - 1) * sW + 1, ci],
            strides: [1, sH, sW, 1],
            beginMask: 0,
            endMask: 0,
            ellipsisMask: 0,
            newAxisMask: 0,
            shrinkAxisMask: 0,
          } as unknown as NamedAttrMap);
        return k.reshape(slice, [1, pixels, ci]);
      };
      const dy2 = k.reshape(dy, [1, pixels, co]);
      const taps: TensorInfo[] = [];
      for (let kh = 0; kh < kH; kh++) for (let kw = 0; kw < kW; kw++) taps.push(tap(kh, kw));
      let product: TensorInfo;
      if (4 * pixels * kH * kW * ci <= bindingLimit) {
        const columns = taps.length === 1
          ? taps[0]
          : k.call("Concat", taps as unknown as Record<string, TensorInfo>, { axis: 2 });
        product = gram(k, columns, dy2); // [1, kH kW Ci, Co]
      } else {
        const blocks = taps.map((t) => gram(k, t, dy2)); // each [1, Ci, Co]
        product = k.call("Concat", blocks as unknown as Record<string, TensorInfo>, { axis: 1 });
      }
      return k.reshape(product, [kH, kW, ci, co]);
    }, "webgpu");
  };
}
