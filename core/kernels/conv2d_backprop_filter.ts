/**
 * Conv2DBackpropFilter (the weight gradient of an NHWC 2-D convolution) built from the wasm
 * backend's fast XNNPACK forward convolution, for a backend that lacks the kernel.
 *
 * With forward stride s and padding (top pt, left pl), the weight gradient is
 *   dW[kh, kw, ci, co] = sum_{n, i, j} x[n, s i + kh - pt, s j + kw - pl, ci] dy[n, i, j, co],
 * which is itself a 'valid', stride-1 convolution with dilation s: the input is x transposed to
 * [Ci, H, W, N] (zero-padded by pt, pl), the filter is dy transposed to [Ho, Wo, N, Co], and the
 * [Ci, kH, kW, Co] result is transposed to [kH, kW, Ci, Co] (Dumoulin and Visin, "A guide to
 * convolution arithmetic for deep learning", 2016, section 4). A 1x1 stride-1 filter is the
 * plain product dW = x^T dy over all pixels, which wasm's fully-connected path runs faster.
 *
 * @module
 */
import type { KernelConfig, KernelFunc } from "@tensorflow/tfjs-core";
import { type BackpropFilterAttrs, filterGradOperands } from "./_filter_grad_operands.ts";
import { composed } from "./_kernel_calls.ts";

/**
 * The weight-gradient kernel function: inputs `x` [N, H, W, Ci] and `dy` [N, Ho, Wo, Co], output
 * `filterShape` [kH, kW, Ci, Co]; the engine owns the output, intermediates are freed.
 *
 * @example Register it for the wasm backend
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { conv2dBackpropFilterWasm } from "./conv2d_backprop_filter.ts";
 * tf.registerKernel({
 *   kernelName: "Conv2DBackpropFilter",
 *   backendName: "wasm",
 *   kernelFunc: conv2dBackpropFilterWasm,
 * });
 * ```
 */
export const conv2dBackpropFilterWasm: KernelFunc = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as BackpropFilterAttrs;
  return composed(backend, (k) => {
    const { x, dy, info } = filterGradOperands(k, inputs, a);
    const { filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
    const { outHeight: ho, outWidth: wo, inHeight: h, inWidth: w, padInfo } = info;
    // Rows (columns) of x the forward pass read: -pt .. (ho - 1) sH + kH - 1 - pt.
    const bottom = (ho - 1) * sH + kH - padInfo.top - h;
    const right = (wo - 1) * sW + kW - padInfo.left - w;
    const ci = info.inChannels, co = info.outChannels;
    const unpadded = padInfo.top === 0 && padInfo.left === 0 && bottom === 0 && right === 0;
    if (kH === 1 && kW === 1 && sH === 1 && sW === 1 && unpadded) {
      // 1x1: dW = x^T dy over all pixels, one product on wasm's fast matmul path.
      const pixels = info.batchSize * h * w;
      const xT2 = k.transpose(k.reshape(x, [1, pixels, ci]), [0, 2, 1]); // [1, Ci, pixels]
      const dy2 = k.reshape(dy, [1, pixels, co]);
      const plain = { transposeA: false, transposeB: false };
      return k.reshape(k.call("BatchMatMul", { a: xT2, b: dy2 }, plain), [1, 1, ci, co]);
    }
    const xT = k.transpose(x, [3, 1, 2, 0]); // [Ci, H, W, N]
    const dyT = k.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
    // Negative padding means trailing rows the forward pass never read: the convolution then
    // yields extra output rows past kH, which are cut off below.
    const rows: [number, number] = [padInfo.top, Math.max(bottom, 0)];
    const cols: [number, number] = [padInfo.left, Math.max(right, 0)];
    const convOut = k.conv2d(xT, dyT, {
      strides: [1, 1],
      pad: [[0, 0], rows, cols, [0, 0]],
      dilations: [sH, sW],
    });
    const cropped = convOut.shape[1] === kH && convOut.shape[2] === kW
      ? convOut
      : k.slice(convOut, [0, 0, 0, 0], [ci, kH, kW, co]);
    return k.transpose(cropped, [1, 2, 0, 3]);
  });
};

/**
 * Kernel config registering {@linkcode conv2dBackpropFilterWasm} for `wasm`.
 *
 * @example Register
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { conv2dBackpropFilterWasmConfig } from "./conv2d_backprop_filter.ts";
 * tf.registerKernel(conv2dBackpropFilterWasmConfig);
 * ```
 */
export const conv2dBackpropFilterWasmConfig: KernelConfig = {
  kernelName: "Conv2DBackpropFilter",
  backendName: "wasm",
  kernelFunc: conv2dBackpropFilterWasm,
};
