/**
 * Group normalization (Wu and He 2018), optionally followed by SiLU, as a few oneDNN primitives
 * over NHWC data: per-image, per-channel sums and sums of squares as products with a row of ones,
 * then `y = act(x * a + b)` with per-image, per-channel `a = gamma r` and `b = beta - mean a`.
 * Each group's `mean` and `r = 1 / sqrt(var + eps)` come from the sums in float64, with
 * `var = E[x^2] - mean^2` as PyTorch's channels-last CPU kernel computes it.
 *
 * Not tied to a paper beyond GroupNorm itself: engine work (issue "Engine speed"). Composed from
 * tfjs ops, a GroupNorm + SiLU makes eight single-threaded passes over the activations on wasm
 * (average pools, centring, squares, scale, shift, sigmoid, product): after the convolutions,
 * the largest cost of a unet-bench sampling step. oneDNN 2.6's reduction primitive and binary
 * post-ops run its reference code here (13-106 ms on a 64x32x32x32 batch against 0.3-0.5 ms for
 * a jit product or element-wise pass), so the sums are products and the affine map is two
 * in-place binary passes.
 *
 * @module
 */
import { DNNL, type Dnnl, type Primitive } from "./onednn.ts";
import { createDnnlMatMul } from "./matmul.ts";

/**
 * Name of the tfjs kernel that runs {@linkcode DnnlGroupNorm} (inputs `x`, `gamma`, `beta`; attrs
 * `groups`, `eps`, `silu`), registered with the other oneDNN kernels (`core/blas/register.ts`).
 * It has no gradient: `models/layers.ts` calls it only when no gradient is being recorded.
 */
export const GROUP_NORM_KERNEL = "DiffuseGroupNorm";

/** Shapes and settings of one {@linkcode DnnlGroupNorm.run} call. */
export interface GroupNormShape {
  /** Batch size of the NHWC input. */
  n: number;
  /** Height. */
  h: number;
  /** Width. */
  w: number;
  /** Channels; `groups` must divide it. */
  c: number;
  /** Channel groups. */
  groups: number;
  /** Added to the variance. */
  eps: number;
  /** Apply SiLU (`x * sigmoid(x)`) to the result. */
  silu: boolean;
}

/** Group normalization on one oneDNN engine. */
export interface DnnlGroupNorm {
  /** Writes the normalized (and activated) `x` into `y`; `false` when oneDNN declines. */
  run(
    shape: GroupNormShape,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
  ): boolean;
}

interface Plan {
  square: Primitive;
  scale: Primitive;
  shift: Primitive;
  swish: Primitive | null;
  mem: Record<"x" | "y" | "stat", Deno.PointerValue>;
  ones: Float32Array;
  squares: Float32Array;
  sums: Float32Array;
  sumsSq: Float32Array;
  a: Float32Array;
  b: Float32Array;
}

/**
 * Creates cached group-normalization primitives on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The runner.
 * @example Normalize two channels in one group
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlGroupNorm } from "./group_norm.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const y = new Float32Array(4);
 *   const shape = { n: 1, h: 1, w: 2, c: 2, groups: 1, eps: 0, silu: false };
 *   const ones = new Float32Array([1, 1]), zeros = new Float32Array(2);
 *   createDnnlGroupNorm(r.dnnl).run(shape, new Float32Array([1, 2, 3, 4]), ones, zeros, y);
 *   // y is about [-1.34, -0.45, 0.45, 1.34]
 * }
 * ```
 */
export function createDnnlGroupNorm(dnnl: Dnnl): DnnlGroupNorm {
  const products = createDnnlMatMul(dnnl);
  const plans = new Map<string, Plan | null>();
  const makePlan = ({ n, h, w, c, silu }: GroupNormShape): Plan | null => {
    const xMd = dnnl.memoryDesc([n, c, h, w], DNNL.tagNhwc);
    const statMd = dnnl.memoryDesc([n, c, 1, 1], DNNL.tagNhwc);
    const eltwise = (alg: number) =>
      dnnl.primitive((s, op) =>
        s.dnnl_eltwise_forward_desc_init(op, DNNL.forwardInference, alg, xMd, 1, 0)
      );
    const binary = (alg: number) =>
      dnnl.primitive((s, op) => s.dnnl_binary_desc_init(op, alg, xMd, statMd, xMd));
    const square = eltwise(DNNL.eltwiseSquare);
    const scale = binary(DNNL.binaryMul), shift = binary(DNNL.binaryAdd);
    const swish = silu ? eltwise(DNNL.eltwiseSwish) : null;
    if (square === null || scale === null || shift === null || (silu && swish === null)) {
      return null;
    }
    const stats = () => new Float32Array(n * c);
    return {
      square,
      scale,
      shift,
      swish,
      mem: { x: dnnl.memory(xMd), y: dnnl.memory(xMd), stat: dnnl.memory(statMd) },
      ones: new Float32Array(h * w).fill(1),
      squares: new Float32Array(n * h * w * c),
      sums: stats(),
      sumsSq: stats(),
      a: stats(),
      b: stats(),
    };
  };

  return {
    run(shape, x, gamma, beta, y) {
      const { n, h, w, c, groups, eps } = shape;
      const size = n * h * w * c;
      if (size === 0 || c % groups !== 0 || x.length !== size || y.length !== size) return false;
      if (gamma.length !== c || beta.length !== c) return false;
      const key = [n, h, w, c, shape.silu].join(",");
      if (!plans.has(key)) plans.set(key, makePlan(shape));
      const plan = plans.get(key)!;
      if (plan === null) return false;
      const { mem, ones, squares, sums, sumsSq, a, b } = plan;
      // Per image and channel: sums[i, :] = ones(1 x HW) @ x[i] (HW x C), and the same of x^2.
      const sumsOf = (data: Float32Array, into: Float32Array) =>
        products.run(
          { batchA: 1, batchB: n, m: 1, n: c, k: h * w, transposeA: false, transposeB: false },
          ones,
          data,
          into,
        );
      dnnl.execute(plan.square, [[DNNL.argSrc, mem.x, x], [DNNL.argDst, mem.y, squares]]);
      if (!sumsOf(x, sums) || !sumsOf(squares, sumsSq)) return false;
      const cg = c / groups, count = h * w * cg;
      for (let i = 0; i < n; i++) {
        for (let g = 0; g < groups; g++) {
          let s1 = 0, s2 = 0;
          for (let k = i * c + g * cg; k < i * c + (g + 1) * cg; k++) {
            s1 += sums[k];
            s2 += sumsSq[k];
          }
          const mean = s1 / count;
          const r = 1 / Math.sqrt(Math.max(s2 / count - mean * mean, 0) + eps);
          for (let j = g * cg; j < (g + 1) * cg; j++) {
            a[i * c + j] = gamma[j] * r;
            b[i * c + j] = beta[j] - mean * gamma[j] * r;
          }
        }
      }
      const src1 = DNNL.argSrc + 1; // DNNL_ARG_SRC_1
      dnnl.execute(plan.scale, [[DNNL.argSrc, mem.x, x], [src1, mem.stat, a], [
        DNNL.argDst,
        mem.y,
        y,
      ]]);
      dnnl.execute(plan.shift, [[DNNL.argSrc, mem.x, y], [src1, mem.stat, b], [
        DNNL.argDst,
        mem.y,
        y,
      ]]);
      if (plan.swish) dnnl.execute(plan.swish, [[DNNL.argSrc, mem.x, y], [DNNL.argDst, mem.y, y]]);
      return true;
    },
  };
}
