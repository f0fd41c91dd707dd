/**
 * 2-D convolution and its two gradients (NHWC data, `[kh, kw, Ci, Co]` filters, as tfjs stores
 * them) by oneDNN's direct convolution primitives, one cached set of primitives per geometry.
 *
 * Not tied to a paper: engine work (issue "Engine speed"). oneDNN picks its own blocked filter
 * layout, so filters are reordered into it before each forward or input-gradient call and the
 * filter gradient is reordered back out of it (filters are small: a 3x3 64->64 filter is 37k
 * values against 4M in a batch-64 32x32x64 activation). Data stay in place, so a call costs one
 * pass of the primitive over the backend's own memory.
 *
 * @module
 */
import type { ConvGeometry } from "../blas/conv_gemm.ts";
import { DNNL, type Dnnl, type DnnlSymbols, type Primitive } from "./onednn.ts";

/** Shapes of one convolution with its four padding amounts (tfjs `Conv2DInfo` satisfies it). */
export interface DnnlConvGeometry extends ConvGeometry {
  /** Zero padding on all four sides. */
  padInfo: { top: number; left: number; bottom: number; right: number };
}

/** Convolutions on one oneDNN engine; each call returns `false` when oneDNN cannot do it. */
export interface DnnlConv {
  /** `y = conv(x, filter) (+ bias)`; `y` is fully overwritten. */
  forward(
    g: DnnlConvGeometry,
    x: Float32Array,
    filter: Float32Array,
    bias: Float32Array | undefined,
    y: Float32Array,
  ): boolean;
  /** The input gradient `dx` of `y = conv(x, filter)` from `dy`; `dx` is fully overwritten. */
  backwardData(
    g: DnnlConvGeometry,
    dy: Float32Array,
    filter: Float32Array,
    dx: Float32Array,
  ): boolean;
  /** The filter gradient `dw` (`[kh, kw, Ci, Co]`) from `x` and `dy`; fully overwritten. */
  backwardWeights(
    g: DnnlConvGeometry,
    x: Float32Array,
    dy: Float32Array,
    dw: Float32Array,
  ): boolean;
}

interface Plan {
  main: Primitive;
  /** Filter memory in oneDNN's layout, with the reorder to or from the tfjs layout (if needed). */
  filter: {
    user: Deno.PointerValue;
    inner: Deno.PointerValue;
    buffer?: Float32Array;
    reorder?: Primitive;
  };
  mem: Record<string, Deno.PointerValue>;
}

/**
 * Creates the cached convolution primitives of one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The three convolution operations.
 * @example Convolve a 1x4x4x1 image with a 3x3 box filter
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlConv } from "./conv.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const conv = createDnnlConv(r.dnnl);
 *   const g = {
 *     batchSize: 1, inHeight: 4, inWidth: 4, inChannels: 1, outHeight: 4, outWidth: 4,
 *     outChannels: 1, filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1,
 *     padInfo: { top: 1, left: 1, bottom: 1, right: 1 },
 *   };
 *   const y = new Float32Array(16);
 *   conv.forward(g, new Float32Array(16).fill(1), new Float32Array(9).fill(1), undefined, y);
 *   console.log(y[5]); // 9
 * }
 * ```
 */
export function createDnnlConv(dnnl: Dnnl): DnnlConv {
  const plans = new Map<string, Plan | null>();
  const hints = new Map<string, Primitive | null>();

  const mds = (g: DnnlConvGeometry) => {
    const { batchSize: n, inChannels: ci, outChannels: co } = g;
    return {
      src: dnnl.memoryDesc([n, ci, g.inHeight, g.inWidth], DNNL.tagNhwc),
      dst: dnnl.memoryDesc([n, co, g.outHeight, g.outWidth], DNNL.tagNhwc),
      userW: dnnl.memoryDesc([co, ci, g.filterHeight, g.filterWidth], DNNL.tagHwio),
      anyW: dnnl.memoryDesc([co, ci, g.filterHeight, g.filterWidth], DNNL.tagAny),
      bias: dnnl.memoryDesc([co], DNNL.tagA),
      strides: new BigInt64Array([BigInt(g.strideHeight), BigInt(g.strideWidth)]),
      padL: new BigInt64Array([BigInt(g.padInfo.top), BigInt(g.padInfo.left)]),
      padR: new BigInt64Array([BigInt(g.padInfo.bottom), BigInt(g.padInfo.right)]),
    };
  };

  const forwardDesc = (g: DnnlConvGeometry, prop: number, withBias: boolean, hint?: Primitive) => {
    const d = mds(g);
    return {
      d,
      p: dnnl.primitive((s, op) =>
        s.dnnl_convolution_forward_desc_init(
          op,
          prop,
          DNNL.convolutionDirect,
          d.src,
          d.anyW,
          withBias ? d.bias : null,
          d.dst,
          d.strides,
          d.padL,
          d.padR,
        ), hint),
    };
  };

  // Filter memory: oneDNN's chosen layout plus, when it differs from hwio, a reorder between them.
  const filterPlan = (main: Primitive, query: number, userMd: Uint8Array, intoInner: boolean) => {
    const innerMd = dnnl.queryMd(main, query);
    const userPtr = Deno.UnsafePointer.of(userMd as Uint8Array<ArrayBuffer>);
    const user = dnnl.memory(userMd as Uint8Array<ArrayBuffer>);
    if (dnnl.sameMd(innerMd, userPtr)) return { user, inner: user };
    const reorder = intoInner ? dnnl.reorder(userPtr, innerMd) : dnnl.reorder(innerMd, userPtr);
    if (reorder === null) return null;
    const buffer = new Float32Array(Math.ceil(dnnl.mdSize(innerMd) / 4));
    return { user, inner: dnnl.memory(innerMd), buffer, reorder };
  };

  // The forward_training primitive the gradient primitives need as a hint.
  const hintFor = (g: DnnlConvGeometry): Primitive | null => {
    const key = geometryKey(g);
    if (!hints.has(key)) hints.set(key, forwardDesc(g, DNNL.forwardTraining, false).p);
    return hints.get(key)!;
  };

  const planned = (key: string, make: () => Plan | null): Plan | null => {
    if (!plans.has(key)) plans.set(key, make());
    return plans.get(key)!;
  };

  const runFilterIn = (plan: Plan, filter: Float32Array) => {
    const f = plan.filter;
    if (f.reorder) {
      dnnl.execute(f.reorder, [[DNNL.argSrc, f.user, filter], [DNNL.argDst, f.inner, f.buffer!]]);
    }
    return f.reorder ? f.buffer! : filter;
  };

  // A gradient primitive ("d": input, "w": filter) hinted by the forward one, with its filter
  // memory: reordered into oneDNN's layout for "d", out of it for "w".
  const gradientPlan = (
    kind: "d" | "w",
    g: DnnlConvGeometry,
    init: (s: DnnlSymbols, op: Uint8Array<ArrayBuffer>, d: ReturnType<typeof mds>) => number,
    query: number,
  ): Plan | null =>
    planned(`${kind}${geometryKey(g)}`, () => {
      const hint = hintFor(g);
      if (hint === null) return null;
      const d = mds(g);
      const p = dnnl.primitive((s, op) => init(s, op, d), hint);
      if (p === null) return null;
      const filterMem = filterPlan(p, query, d.userW, kind === "d");
      if (filterMem === null) return null;
      return {
        main: p,
        filter: filterMem,
        mem: { src: dnnl.memory(d.src), dst: dnnl.memory(d.dst) },
      };
    });

  return {
    forward(g, x, filter, bias, y) {
      const plan = planned(`f${geometryKey(g)}${bias ? "b" : ""}`, () => {
        const { d, p } = forwardDesc(g, DNNL.forwardInference, bias !== undefined);
        if (p === null) return null;
        const filterMem = filterPlan(p, DNNL.queryWeightsMd, d.userW, true);
        if (filterMem === null) return null;
        return {
          main: p,
          filter: filterMem,
          mem: { src: dnnl.memory(d.src), dst: dnnl.memory(d.dst), bias: dnnl.memory(d.bias) },
        };
      });
      if (plan === null) return false;
      const w = runFilterIn(plan, filter);
      const args: [number, Deno.PointerValue, Float32Array][] = [
        [DNNL.argSrc, plan.mem.src, x],
        [DNNL.argWeights, plan.filter.inner, w],
        [DNNL.argDst, plan.mem.dst, y],
      ];
      if (bias) args.push([DNNL.argBias, plan.mem.bias, bias]);
      dnnl.execute(plan.main, args);
      return true;
    },
    backwardData(g, dy, filter, dx) {
      const plan = gradientPlan(
        "d",
        g,
        (s, op, d) =>
          s.dnnl_convolution_backward_data_desc_init(
            op,
            DNNL.convolutionDirect,
            d.src,
            d.anyW,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
        DNNL.queryWeightsMd,
      );
      if (plan === null) return false;
      const w = runFilterIn(plan, filter);
      dnnl.execute(plan.main, [
        [DNNL.argDiffDst, plan.mem.dst, dy],
        [DNNL.argWeights, plan.filter.inner, w],
        [DNNL.argDiffSrc, plan.mem.src, dx],
      ]);
      return true;
    },
    backwardWeights(g, x, dy, dw) {
      const plan = gradientPlan(
        "w",
        g,
        (s, op, d) =>
          s.dnnl_convolution_backward_weights_desc_init(
            op,
            DNNL.convolutionDirect,
            d.src,
            d.anyW,
            null,
            d.dst,
            d.strides,
            d.padL,
            d.padR,
          ),
        DNNL.queryDiffWeightsMd,
      );
      if (plan === null) return false;
      const f = plan.filter;
      dnnl.execute(plan.main, [
        [DNNL.argSrc, plan.mem.src, x],
        [DNNL.argDiffDst, plan.mem.dst, dy],
        [DNNL.argDiffWeights, f.inner, f.reorder ? f.buffer! : dw],
      ]);
      if (f.reorder) {
        dnnl.execute(f.reorder, [[DNNL.argSrc, f.inner, f.buffer!], [DNNL.argDst, f.user, dw]]);
      }
      return true;
    },
  };
}

function geometryKey(g: DnnlConvGeometry): string {
  const p = g.padInfo;
  return [
    g.batchSize,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  ].join(",");
}
