/**
 * The operands of a Conv2DBackpropFilter kernel in NHWC, with the convolution's geometry: shared by
 * the wasm and the webgpu weight-gradient kernels.
 *
 * @module
 */
import { backend_util } from "@tensorflow/tfjs-core";
import type { NamedTensorInfoMap, TensorInfo } from "@tensorflow/tfjs-core";
import type { KernelCalls } from "./_kernel_calls.ts";

/** Attributes tfjs passes to Conv2DBackpropFilter. */
export interface BackpropFilterAttrs {
  strides: number | [number, number];
  pad: "same" | "valid" | number | backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}

/**
 * `x` and `dy` in NHWC (transposed through `k` when the data format is NCHW; the filter layout
 * [kH, kW, Ci, Co] does not depend on it) and the forward convolution's info.
 */
export function filterGradOperands(
  k: KernelCalls,
  inputs: NamedTensorInfoMap,
  attrs: BackpropFilterAttrs,
): { x: TensorInfo; dy: TensorInfo; info: backend_util.Conv2DInfo } {
  let x = inputs.x as TensorInfo;
  let dy = inputs.dy as TensorInfo;
  if (attrs.dataFormat === "NCHW") {
    x = k.transpose(x, [0, 2, 3, 1]);
    dy = k.transpose(dy, [0, 2, 3, 1]);
  }
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  return { x, dy, info };
}
