/**
 * Conv2DBackpropInput (the input gradient of an NHWC 2-D convolution) as forward XNNPACK
 * convolutions, replacing the wasm backend's plain-loop kernel.
 *
 * The input gradient of y = conv(x, W; stride s, pads pt, pl) is a transposed convolution
 * (Dumoulin and Visin, "A guide to convolution arithmetic for deep learning", 2016, section 4):
 *   dx[n, a, b, ci] = sum over (i, kh) with s i + kh - pt = a, and (j, kw) likewise,
 *                     of dy[n, i, j, co] W[kh, kw, ci, co].
 * For stride 1 this is one stride-1 convolution of zero-padded dy with W rotated 180 degrees and
 * its in/out channels swapped. For stride s > 1, instead of convolving a dy dilated with s - 1
 * zeros (3 in 4 multiplications by zero for s = 2), dx is split into s x s phases
 * a = s q + p: rows of one phase use only the taps kh = r + s t with r = (p + pt) mod s, so
 *   dx_p[q] = sum_t dy[q + c - t] W[r + s t],   c = floor((p + pt) / s),
 * a stride-1 convolution of dy with the rotated sub-filter of those taps. The phases are then
 * interleaved with one transpose. All zero padding goes to the convolution as explicit padding.
 *
 * @module
 */
import { backend_util } from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { composed, type KernelCalls } from "./_kernel_calls.ts";

/** Attributes tfjs passes to Conv2DBackpropInput. */
interface BackpropInputAttrs {
  strides: number | [number, number];
  pad: "same" | "valid" | number | backend_util.ExplicitPadding;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape: [number, number, number, number];
}

/** One phase p of one spatial axis: which filter taps it uses and how dy is padded. */
interface AxisPhase {
  /** First tap r = (p + pad) mod s; the phase uses taps r, r + s, ... */
  first: number;
  /** Number of taps (0: this phase of dx receives no gradient). */
  taps: number;
  /** Zero rows before dy. */
  before: number;
  /** Zero rows after dy; negative: the convolution yields that many extra rows, cut off. */
  after: number;
}

/** Phase p of an axis with filter size k, stride s, leading pad, dy length `dyLen`, q rows. */
function axisPhase(p: number, k: number, s: number, pad: number, dyLen: number, q: number) {
  const first = (p + pad) % s;
  const c = (p + pad - first) / s;
  const taps = first < k ? Math.ceil((k - first) / s) : 0;
  const before = taps - 1 - c;
  // Padded length before + dyLen + after = q + taps - 1 gives q output rows.
  return { first, taps, before, after: q + taps - 1 - before - dyLen } satisfies AxisPhase;
}

/**
 * The rotated sub-filter of one phase as a new [tH, tW, Co, Ci] buffer:
 * g[u, v, co, ci] = W[rh + sH (tH - 1 - u), rw + sW (tW - 1 - v), ci, co].
 */
function subFilter(
  k: KernelCalls,
  filter: TensorInfo,
  ph: AxisPhase,
  pw: AxisPhase,
  sH: number,
  sW: number,
): TensorInfo {
  const [, kW, ci, co] = filter.shape;
  const out = k.own(k.backend.makeOutput([ph.taps, pw.taps, co, ci], "float32"));
  const w = k.backend.typedArrayFromHeap(filter);
  const g = k.backend.typedArrayFromHeap(out);
  let o = 0;
  for (let u = 0; u < ph.taps; u++) {
    const kh = ph.first + sH * (ph.taps - 1 - u);
    for (let v = 0; v < pw.taps; v++) {
      const base = (kh * kW + pw.first + sW * (pw.taps - 1 - v)) * ci * co;
      for (let oc = 0; oc < co; oc++) {
        for (let ic = 0; ic < ci; ic++) g[o++] = w[base + ic * co + oc];
      }
    }
  }
  return out;
}

/** dx of one phase, [N, qH, qW, Ci]: a stride-1 convolution of zero-padded dy. */
function phaseGrad(
  k: KernelCalls,
  dy: TensorInfo,
  g: TensorInfo,
  ph: AxisPhase,
  pw: AxisPhase,
  q: [number, number],
): TensorInfo {
  const out = k.conv2d(dy, g, {
    strides: [1, 1],
    pad: [[0, 0], [ph.before, Math.max(ph.after, 0)], [pw.before, Math.max(pw.after, 0)], [0, 0]],
    dilations: [1, 1],
  });
  if (out.shape[1] === q[0] && out.shape[2] === q[1]) return out;
  return k.slice(out, [0, 0, 0, 0], [out.shape[0], q[0], q[1], out.shape[3]]);
}

/**
 * Makes the input-gradient kernel function; `original` (the backend's own kernel) handles what
 * the fast path does not: NCHW data and explicit pads wider than the filter. Inputs `dy`
 * [N, Ho, Wo, Co] and `filter` [kH, kW, Ci, Co]; output `inputShape`, owned by the engine.
 *
 * @example Replace wasm's kernel, keeping the original as fallback
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { makeConv2dBackpropInputWasm } from "./conv2d_backprop_input.ts";
 * const original = tf.getKernel("Conv2DBackpropInput", "wasm");
 * if (original !== undefined) {
 *   tf.unregisterKernel("Conv2DBackpropInput", "wasm");
 *   tf.registerKernel({ ...original, kernelFunc: makeConv2dBackpropInputWasm(original.kernelFunc) });
 * }
 * ```
 */
export function makeConv2dBackpropInputWasm(original: KernelFunc): KernelFunc {
  return (args) => {
    const a = args.attrs as unknown as BackpropInputAttrs;
    const filter = args.inputs.filter as TensorInfo;
    const dy = args.inputs.dy as TensorInfo;
    if (a.dataFormat === "NCHW" || filter.dtype !== "float32" || dy.dtype !== "float32") {
      return original(args);
    }
    const info = backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as [number, number, number, number],
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      "channelsLast",
    );
    const { filterHeight: kH, filterWidth: kW, strideHeight: sH, strideWidth: sW } = info;
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, padInfo } = info;
    const q: [number, number] = [Math.ceil(h / sH), Math.ceil(w / sW)];
    const rows = Array.from(
      { length: sH },
      (_, p) => axisPhase(p, kH, sH, padInfo.top, info.outHeight, q[0]),
    );
    const cols = Array.from(
      { length: sW },
      (_, p) => axisPhase(p, kW, sW, padInfo.left, info.outWidth, q[1]),
    );
    // Pads wider than the filter would need cropping dy; rare enough for the original kernel.
    if ([...rows, ...cols].some((ph) => ph.taps > 0 && ph.before < 0)) return original(args);
    return composed(args.backend, (k) => {
      if (sH === 1 && sW === 1) {
        return phaseGrad(k, dy, subFilter(k, filter, rows[0], cols[0], 1, 1), rows[0], cols[0], q);
      }
      // Phases stacked as [sH, sW, N, qH, qW, Ci], then interleaved to [N, qH sH, qW sW, Ci].
      const block = n * q[0] * q[1] * ci;
      const stack = k.own(k.backend.makeOutput([sH, sW, n, q[0], q[1], ci], "float32"));
      for (let ph = 0; ph < sH; ph++) {
        for (let pw = 0; pw < sW; pw++) {
          const at = (ph * sW + pw) * block;
          if (rows[ph].taps === 0 || cols[pw].taps === 0) {
            k.backend.typedArrayFromHeap(stack).fill(0, at, at + block);
            continue;
          }
          const g = subFilter(k, filter, rows[ph], cols[pw], sH, sW);
          const part = phaseGrad(k, dy, g, rows[ph], cols[pw], q);
          k.backend.typedArrayFromHeap(stack).set(k.backend.typedArrayFromHeap(part), at);
          k.free(part);
          k.free(g);
        }
      }
      const woven = k.reshape(k.transpose(stack, [2, 3, 0, 4, 1, 5]), [
        n,
        q[0] * sH,
        q[1] * sW,
        ci,
      ]);
      if (q[0] * sH === h && q[1] * sW === w) return woven;
      return k.slice(woven, [0, 0, 0, 0], [n, h, w, ci]);
    });
  };
}
