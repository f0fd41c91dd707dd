/**
 * The logistic sigmoid, SiLU (swish, `x sigmoid(x)`) and its gradient, and the last-axis softmax
 * by oneDNN's eltwise and softmax primitives, vectorized and spread over its threads; one cached
 * primitive per size.
 *
 * Not tied to a paper: engine work (issue "Engine speed"). The U-Net's SiLU activations
 * (`x * sigmoid(x)`) and attention softmax were 12 % and 4 % of a unet-bench sampling step on
 * tfjs-backend-wasm's own single-threaded kernels once the convolutions ran on oneDNN
 * (bench/profile_step.ts). In training a SiLU and its gradient composed from tfjs ops are six
 * single-threaded passes; here they are two.
 *
 * @module
 */
import { DNNL, type Dnnl, type DnnlSymbols, type MemoryDesc, type Primitive } from "./onednn.ts";

type Init = (s: DnnlSymbols, op: Uint8Array<ArrayBuffer>, md: MemoryDesc) => number;

/** Name of the tfjs kernel computing SiLU by {@linkcode DnnlElementwise.silu} (input `x`). */
export const SILU_KERNEL = "DiffuseSiLU";

/** Name of the tfjs kernel of SiLU's gradient (inputs `x`, `dy`; output `dx`). */
export const SILU_GRAD_KERNEL = "DiffuseSiLUGrad";

/** Element-wise functions on one oneDNN engine; each returns `false` when oneDNN declines. */
export interface DnnlElementwise {
  /** `y = 1 / (1 + exp(-x))` element by element (`x` and `y` of equal length). */
  sigmoid(x: Float32Array, y: Float32Array): boolean;
  /** Row-wise softmax of `x` viewed as `rows x cols`, into `y`. */
  softmax(x: Float32Array, y: Float32Array, cols: number): boolean;
  /** `y = x sigmoid(x)` element by element. */
  silu(x: Float32Array, y: Float32Array): boolean;
  /** The gradient of SiLU: `dx = dy (s + x s (1 - s))`, `s = sigmoid(x)`. */
  siluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): boolean;
}

/**
 * Creates cached element-wise primitives on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The functions.
 * @example Sigmoid of three values
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlElementwise } from "./elementwise.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const y = new Float32Array(3);
 *   createDnnlElementwise(r.dnnl).sigmoid(new Float32Array([-1, 0, 1]), y); // [0.269, 0.5, 0.731]
 * }
 * ```
 */
export function createDnnlElementwise(dnnl: Dnnl): DnnlElementwise {
  type Plan = { p: Primitive; src: Deno.PointerValue; dst: Deno.PointerValue };
  const plans = new Map<string, Plan | null>();
  // One primitive per key, reading x and writing y (both of the descriptor's size).
  const run = (
    key: string,
    dims: number[],
    tag: number,
    init: Init,
    x: Float32Array,
    y: Float32Array,
  ) => {
    if (!plans.has(key)) {
      const md = dnnl.memoryDesc(dims, tag);
      const p = dnnl.primitive((s, op) => init(s, op, md));
      plans.set(key, p && { p, src: dnnl.memory(md), dst: dnnl.memory(md) });
    }
    const plan = plans.get(key)!;
    if (plan === null) return false;
    dnnl.execute(plan.p, [[DNNL.argSrc, plan.src, x], [DNNL.argDst, plan.dst, y]]);
    return true;
  };
  const swish = (n: number, s: DnnlSymbols, op: Uint8Array<ArrayBuffer>, md: MemoryDesc) =>
    s.dnnl_eltwise_forward_desc_init(op, n, DNNL.eltwiseSwish, md, 1, 0);
  const gradPlans = new Map<number, { p: Primitive; mem: Deno.PointerValue[] } | null>();
  return {
    silu(x, y) {
      if (x.length === 0 || x.length !== y.length) return false;
      const init: Init = (s, op, md) => swish(DNNL.forwardInference, s, op, md);
      return run(`w${x.length}`, [x.length], DNNL.tagA, init, x, y);
    },
    siluGrad(x, dy, dx) {
      const n = x.length;
      if (n === 0 || dy.length !== n || dx.length !== n) return false;
      if (!gradPlans.has(n)) {
        const md = dnnl.memoryDesc([n], DNNL.tagA);
        const hint = dnnl.primitive((s, op) => swish(DNNL.forwardTraining, s, op, md));
        const p = hint && dnnl.primitive(
          (s, op) => s.dnnl_eltwise_backward_desc_init(op, DNNL.eltwiseSwish, md, md, 1, 0),
          hint,
        );
        gradPlans.set(n, p && { p, mem: [md, md, md].map((m) => dnnl.memory(m)) });
      }
      const plan = gradPlans.get(n)!;
      if (plan === null) return false;
      dnnl.execute(plan.p, [
        [DNNL.argSrc, plan.mem[0], x],
        [DNNL.argDiffDst, plan.mem[1], dy],
        [DNNL.argDiffSrc, plan.mem[2], dx],
      ]);
      return true;
    },
    sigmoid(x, y) {
      if (x.length === 0 || x.length !== y.length) return false;
      return run(
        `s${x.length}`,
        [x.length],
        DNNL.tagA,
        (s, op, md) =>
          s.dnnl_eltwise_forward_desc_init(
            op,
            DNNL.forwardInference,
            DNNL.eltwiseLogistic,
            md,
            0,
            0,
          ),
        x,
        y,
      );
    },
    softmax(x, y, cols) {
      const rows = x.length / cols;
      if (x.length === 0 || !Number.isInteger(rows) || x.length !== y.length) return false;
      return run(
        `m${rows},${cols}`,
        [rows, cols],
        DNNL.tagAb,
        (s, op, md) => s.dnnl_softmax_forward_desc_init(op, DNNL.forwardInference, md, 1),
        x,
        y,
      );
    },
  };
}
