/**
 * Element-wise addition, subtraction and multiplication of two float32 arrays, the second
 * broadcast against the first (numpy rules with the first operand full-sized), by oneDNN's binary
 * primitive: vectorized and spread over its threads, one cached primitive per shape pair.
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). On tfjs-backend-wasm
 * these run on one thread; in a unet-bench train step they were 67 ms of 765 (219 calls, the
 * residual and embedding adds and their gradients) and in a sampling step 95 ms of 790, while the
 * second core idled (bench/profile_step.ts).
 *
 * @module
 */
import { DNNL, type Dnnl, type Primitive } from "./onednn.ts";

/** The binary operations served: `c = a + b`, `a - b` or `a * b`. */
export type BinaryOp = "add" | "sub" | "mul";

const ALG: Record<BinaryOp, number> = {
  add: DNNL.binaryAdd,
  sub: DNNL.binarySub,
  mul: DNNL.binaryMul,
};

/** At most this many shape pairs get a primitive; further ones are declined (bounded memory). */
const MAX_PLANS = 512;

/** Binary operations on one oneDNN engine. */
export interface DnnlBinary {
  /**
   * `c = a op b`, `b` broadcast to `aShape` (`bShape` has the same rank, each dimension equal to
   * `aShape`'s or 1); `c` has `aShape`'s size. Returns `false` when oneDNN declines.
   */
  run(
    op: BinaryOp,
    aShape: readonly number[],
    bShape: readonly number[],
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
  ): boolean;
}

/**
 * Merges neighbouring dimensions that are full in both operands, or broadcast in the second,
 * so that `[32, 16, 16, 64] + [32, 1, 1, 64]` runs as `[32, 256, 64] + [32, 1, 64]`: fewer
 * distinct primitives and longer inner loops.
 *
 * @param aShape Shape of the full operand.
 * @param bShape Shape of the broadcast operand, of the same rank.
 * @returns The merged shapes, or `null` when `bShape` does not broadcast to `aShape`.
 * @example
 * ```ts
 * import { mergeBroadcastDims } from "./binary.ts";
 * mergeBroadcastDims([32, 16, 16, 64], [32, 1, 1, 64]); // { a: [32, 256, 64], b: [32, 1, 64] }
 * ```
 */
export function mergeBroadcastDims(
  aShape: readonly number[],
  bShape: readonly number[],
): { a: number[]; b: number[] } | null {
  if (aShape.length !== bShape.length) return null;
  const a: number[] = [], b: number[] = [];
  let last: "full" | "bcast" | null = null;
  for (let i = 0; i < aShape.length; i++) {
    const da = aShape[i], db = bShape[i];
    if (db !== da && db !== 1) return null;
    if (da === 1) continue; // a unit dimension merges with anything
    const kind = db === da ? "full" : "bcast";
    if (kind === last) {
      a[a.length - 1] *= da;
      b[b.length - 1] *= db;
    } else {
      a.push(da);
      b.push(db);
      last = kind;
    }
  }
  if (a.length === 0) return { a: [1], b: [1] };
  return { a, b };
}

/**
 * Creates cached binary primitives on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The functions.
 * @example Add a per-channel bias to a 2 x 2 x 2 x 3 tensor
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlBinary } from "./binary.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const x = new Float32Array(24).fill(1), bias = new Float32Array([1, 2, 3]);
 *   const y = new Float32Array(24);
 *   createDnnlBinary(r.dnnl).run("add", [2, 2, 2, 3], [1, 1, 1, 3], x, bias, y); // 2, 3, 4, ...
 * }
 * ```
 */
export function createDnnlBinary(dnnl: Dnnl): DnnlBinary {
  type Plan = { p: Primitive; mem: Deno.PointerValue[] };
  const plans = new Map<string, Plan | null>();
  const rowMajor = (dims: number[]) => {
    const strides = new Array<number>(dims.length);
    for (let i = dims.length - 1, s = 1; i >= 0; i--) {
      strides[i] = s;
      s *= dims[i];
    }
    return strides;
  };
  return {
    run(op, aShape, bShape, a, b, c) {
      const dims = mergeBroadcastDims(aShape, bShape);
      if (dims === null || c.length !== a.length) return false;
      const size = (d: number[]) => d.reduce((p, x) => p * x, 1);
      if (size(dims.a) !== a.length || size(dims.b) !== b.length || a.length === 0) return false;
      const key = `${op}|${dims.a}|${dims.b}`;
      if (!plans.has(key)) {
        if (plans.size >= MAX_PLANS) return false;
        const mdA = dnnl.stridedDesc(dims.a, rowMajor(dims.a));
        const mdB = dnnl.stridedDesc(dims.b, rowMajor(dims.b));
        const p = dnnl.primitive((s, desc) =>
          s.dnnl_binary_desc_init(desc, ALG[op], mdA, mdB, mdA)
        );
        plans.set(key, p && { p, mem: [mdA, mdB, mdA].map((m) => dnnl.memory(m)) });
      }
      const plan = plans.get(key)!;
      if (plan === null) return false;
      dnnl.execute(plan.p, [
        [DNNL.argSrc, plan.mem[0], a],
        [DNNL.argSrc1, plan.mem[1], b],
        [DNNL.argDst, plan.mem[2], c],
      ]);
      return true;
    },
  };
}
