/**
 * Matrix products `C[i] = op(A[i]) op(B[i]) (+ bias)`, batched or not, by oneDNN's matmul
 * primitive, which spreads the work over its threads; one cached primitive per shape.
 *
 * Not tied to a paper: engine work (issue "Engine speed"). The attention of a U-Net multiplies
 * many small matrices (batch x 256 x 256 x 64 at 16x16 resolution); one threaded `sgemm` per
 * batch entry spends most of its time starting and stopping threads (measured on 2 cores:
 * 46-58 GFLOP/s for those products through OpenBLAS). The narrow products of 1x1 convolutions
 * and projections gain too: 16384x64 by 64x64 ran at 212 GFLOP/s on oneDNN and 48 on OpenBLAS,
 * 64x128 by 128x64 in 0.024 ms against 3.3 ms (measured side by side on a busy 2-core machine).
 *
 * @module
 */
import { DNNL, type Dnnl, type Primitive } from "./onednn.ts";

/** One batched product's shapes; `op(X)` is `X` or its transpose. */
export interface BatchedProduct {
  /** Batch entries of A: the batch size, or 1 to use the same A for all. */
  batchA: number;
  /** Batch entries of B: the batch size, or 1 to use the same B for all. */
  batchB: number;
  /** Rows of `op(A)` and C. */
  m: number;
  /** Columns of `op(B)` and C. */
  n: number;
  /** Columns of `op(A)`, rows of `op(B)`. */
  k: number;
  /** A is stored k x m per entry. */
  transposeA: boolean;
  /** B is stored n x k per entry. */
  transposeB: boolean;
}

/** Matrix products on one oneDNN engine. */
export interface DnnlMatMul {
  /**
   * Writes `C` (`max(batchA, batchB) x m x n`, row-major), plus `bias` (`n` values) on every
   * row when given; `false` when oneDNN declines.
   */
  run(
    shape: BatchedProduct,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    bias?: Float32Array,
  ): boolean;
}

/**
 * Creates cached matrix products on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The product runner.
 * @example Two 2x2 products with a shared B
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlMatMul } from "./matmul.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const c = new Float32Array(8);
 *   createDnnlMatMul(r.dnnl).run(
 *     { batchA: 2, batchB: 1, m: 2, n: 2, k: 2, transposeA: false, transposeB: false },
 *     new Float32Array([1, 0, 0, 1, 2, 0, 0, 2]),
 *     new Float32Array([1, 2, 3, 4]),
 *     c,
 *   ); // c = [1, 2, 3, 4, 2, 4, 6, 8]
 * }
 * ```
 */
export function createDnnlMatMul(dnnl: Dnnl): DnnlMatMul {
  const plans = new Map<string, { p: Primitive; mem: Deno.PointerValue[] } | null>();
  return {
    run(shape, a, b, c, bias) {
      const { batchA, batchB, m, n, k, transposeA, transposeB } = shape;
      const withBias = bias !== undefined;
      const key = [batchA, batchB, m, n, k, transposeA, transposeB, withBias].join(",");
      if (!plans.has(key)) {
        const batch = Math.max(batchA, batchB);
        const aMd = dnnl.stridedDesc(
          [batchA, m, k],
          transposeA ? [m * k, 1, m] : [m * k, k, 1],
        );
        const bMd = dnnl.stridedDesc(
          [batchB, k, n],
          transposeB ? [k * n, 1, k] : [k * n, n, 1],
        );
        const cMd = dnnl.stridedDesc([batch, m, n], [m * n, n, 1]);
        const biasMd = dnnl.stridedDesc([1, 1, n], [n, n, 1]);
        const p = dnnl.primitive((s, op) =>
          s.dnnl_matmul_desc_init(op, aMd, bMd, withBias ? biasMd : null, cMd)
        );
        const mem = [aMd, bMd, cMd, biasMd].map((md) => dnnl.memory(md));
        plans.set(key, p && { p, mem });
      }
      const plan = plans.get(key)!;
      if (plan === null) return false;
      const args: [number, Deno.PointerValue, Float32Array][] = [
        [DNNL.argSrc, plan.mem[0], a],
        [DNNL.argWeights, plan.mem[1], b],
        [DNNL.argDst, plan.mem[2], c],
      ];
      if (bias) args.push([DNNL.argBias, plan.mem[3], bias]);
      dnnl.execute(plan.p, args);
      return true;
    },
  };
}
