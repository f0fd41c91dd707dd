/**
 * Group normalization (Wu and He 2018), optionally followed by SiLU, and its gradient, as a few
 * multi-threaded oneDNN passes over NHWC data.
 *
 * Forward: per-image, per-channel sums of `x` and `x^2` (products with a row of ones), then
 * `y = act(x a + b)` with per-image, per-channel `a = gamma r`, `b = beta - mean a`; each group's
 * `mean` and `r = 1 / sqrt(var + eps)` come from the sums in float64, `var = E[x^2] - mean^2`, as
 * PyTorch's channels-last CPU kernel computes it. Backward (no activation), with `g = gamma dy`
 * and `xc = x - mean`: `dx = r (g - m1) - r^3 xc m2`, `m1`, `m2` the group means of `g` and
 * `g xc`; written `dx = dy A + x B + C` with per-image, per-channel `A`, `B`, `C` from the sums
 * of `dy` and `dy x` (`sum(dy xc) = sum(dy x) - mean sum(dy)`); `dgamma = sum_n r sum(dy xc)`,
 * `dbeta = sum_n sum(dy)`.
 *
 * Not tied to a paper beyond GroupNorm itself: engine work (issue "Engine speed"). Composed from
 * tfjs ops, a GroupNorm + SiLU makes eight single-threaded passes over the activations on wasm
 * (average pools, centring, squares, scale, shift, sigmoid, product) and its gradient seven more.
 * oneDNN 2.6's reduction primitive and binary post-ops run its reference code here (13-106 ms on
 * a 64x32x32x32 batch against 0.3-0.5 ms for a jit product or element-wise pass), so sums are
 * products and affine maps are separate in-place binary passes.
 *
 * @module
 */
import { DNNL, type Dnnl, type Primitive } from "./onednn.ts";
import { createDnnlMatMul } from "./matmul.ts";
import { createDnnlElementwise } from "./elementwise.ts";

/**
 * Name of the tfjs kernel that runs {@linkcode DnnlGroupNorm.forward} (inputs `x`, `gamma`,
 * `beta`; attrs `groups`, `eps`, `silu`; outputs `y` and the `[N, groups]` means and inverse
 * deviations), registered with the other oneDNN kernels (`core/blas/register.ts`).
 */
export const GROUP_NORM_KERNEL = "DiffuseGroupNorm";

/**
 * Name of the tfjs kernel that runs {@linkcode DnnlGroupNorm.backward} (inputs `dy`, `x`,
 * `gamma`, `mean`, `rstd`; attr `groups`; outputs `dx`, `dgamma`, `dbeta`).
 */
export const GROUP_NORM_GRAD_KERNEL = "DiffuseGroupNormGrad";

/** Shapes and settings of a group normalization. */
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
  /** Added to the variance (forward only). */
  eps: number;
  /**
   * Apply SiLU (`x * sigmoid(x)`) to the result; in the backward, take `dy` back through that
   * SiLU first (which needs the forward's `beta`).
   */
  silu: boolean;
}

/** Per-image, per-group statistics of a forward pass, `[N, groups]` each. */
export interface GroupNormStats {
  /** Group means. */
  mean: Float32Array;
  /** `1 / sqrt(var + eps)`. */
  rstd: Float32Array;
}

/**
 * Group normalization kernels (oneDNN's here, core/native/kernels.ts's fused ones); each call
 * returns `false` when it declines the inputs.
 */
export interface GroupNormKernels {
  /** Writes the normalized (and activated) `x` into `y`, and the statistics into `stats`. */
  forward(
    shape: GroupNormShape,
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    out: { y: Float32Array } & GroupNormStats,
  ): boolean;
  /**
   * Writes `dx` (like `x`) and `dgamma`, `dbeta` (`[C]`) from `dy` and the forward's stats;
   * `beta` is needed (only) with `silu`.
   */
  backward(
    shape: GroupNormShape,
    inputs:
      & { dy: Float32Array; x: Float32Array; gamma: Float32Array; beta?: Float32Array }
      & GroupNormStats,
    out: { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array },
  ): boolean;
}

interface Plan {
  ops: Record<"square" | "mul" | "add" | "mulFull" | "addFull", Primitive>;
  swish: Primitive | null;
  mem: Record<"x" | "y" | "z" | "stat", Deno.PointerValue>;
  ones: Float32Array;
  scratch: Float32Array;
  /** The gradient taken back through SiLU (backward with `silu`), allocated on first use. */
  siluDy: Float32Array | null;
  s1: Float32Array;
  s2: Float32Array;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}

/**
 * Creates cached group-normalization primitives on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The forward and backward passes.
 * @example Normalize two channels in one group
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlGroupNorm } from "./group_norm.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const out = { y: new Float32Array(4), mean: new Float32Array(1), rstd: new Float32Array(1) };
 *   const shape = { n: 1, h: 1, w: 2, c: 2, groups: 1, eps: 0, silu: false };
 *   const ones = new Float32Array([1, 1]), zeros = new Float32Array(2);
 *   createDnnlGroupNorm(r.dnnl).forward(shape, new Float32Array([1, 2, 3, 4]), ones, zeros, out);
 *   // out.y is about [-1.34, -0.45, 0.45, 1.34], out.mean [2.5]
 * }
 * ```
 */
export function createDnnlGroupNorm(dnnl: Dnnl): GroupNormKernels {
  const products = createDnnlMatMul(dnnl);
  const elementwise = createDnnlElementwise(dnnl);
  const plans = new Map<string, Plan | null>();
  const makePlan = ({ n, h, w, c, silu }: GroupNormShape): Plan | null => {
    const xMd = dnnl.memoryDesc([n, c, h, w], DNNL.tagNhwc);
    const statMd = dnnl.memoryDesc([n, c, 1, 1], DNNL.tagNhwc);
    const eltwise = (alg: number) =>
      dnnl.primitive((s, op) =>
        s.dnnl_eltwise_forward_desc_init(op, DNNL.forwardInference, alg, xMd, 1, 0)
      );
    const binary = (alg: number, src1 = statMd) =>
      dnnl.primitive((s, op) => s.dnnl_binary_desc_init(op, alg, xMd, src1, xMd));
    const ops = {
      square: eltwise(DNNL.eltwiseSquare),
      mul: binary(DNNL.binaryMul),
      add: binary(DNNL.binaryAdd),
      mulFull: binary(DNNL.binaryMul, xMd),
      addFull: binary(DNNL.binaryAdd, xMd),
    };
    const swish = silu ? eltwise(DNNL.eltwiseSwish) : null;
    if (Object.values(ops).some((p) => p === null) || (silu && swish === null)) return null;
    const stats = () => new Float32Array(n * c);
    return {
      ops: ops as Plan["ops"],
      swish,
      mem: {
        x: dnnl.memory(xMd),
        y: dnnl.memory(xMd),
        z: dnnl.memory(xMd),
        stat: dnnl.memory(statMd),
      },
      ones: new Float32Array(h * w).fill(1),
      scratch: new Float32Array(n * h * w * c),
      siluDy: null,
      s1: stats(),
      s2: stats(),
      a: stats(),
      b: stats(),
      c: stats(),
    };
  };

  const planFor = (shape: GroupNormShape, ...full: Float32Array[]): Plan | null => {
    const { n, h, w, c, groups } = shape;
    const size = n * h * w * c;
    if (size === 0 || c % groups !== 0 || full.some((t) => t.length !== size)) return null;
    const key = [n, h, w, c, shape.silu].join(",");
    if (!plans.has(key)) plans.set(key, makePlan(shape));
    return plans.get(key)!;
  };
  // Per image and channel: into[i, :] = ones(1 x HW) @ data[i] (HW x C).
  const channelSums = (plan: Plan, s: GroupNormShape, data: Float32Array, into: Float32Array) =>
    products.run(
      { batchA: 1, batchB: s.n, m: 1, n: s.c, k: s.h * s.w, transposeA: false, transposeB: false },
      plan.ones,
      data,
      into,
    );
  const src1 = DNNL.argSrc + 1; // DNNL_ARG_SRC_1
  // out = x (op) t, with t per image and channel (stat) or full size; one memory object per
  // argument, as each takes its own data handle.
  const apply = (p: Plan, op: Primitive, x: Float32Array, t: Float32Array, out: Float32Array) =>
    dnnl.execute(op, [
      [DNNL.argSrc, p.mem.x, x],
      [src1, t.length === p.s1.length ? p.mem.stat : p.mem.z, t],
      [DNNL.argDst, p.mem.y, out],
    ]);

  return {
    forward(shape, x, gamma, beta, out) {
      const { n, h, w, c, groups, eps } = shape;
      if (gamma.length !== c || beta.length !== c) return false;
      if (out.mean.length !== n * groups || out.rstd.length !== n * groups) return false;
      const plan = planFor(shape, x, out.y);
      if (plan === null) return false;
      const { s1, s2, a, b, scratch } = plan;
      dnnl.execute(plan.ops.square, [[DNNL.argSrc, plan.mem.x, x], [
        DNNL.argDst,
        plan.mem.y,
        scratch,
      ]]);
      if (!channelSums(plan, shape, x, s1) || !channelSums(plan, shape, scratch, s2)) return false;
      const cg = c / groups, count = h * w * cg;
      for (let i = 0; i < n; i++) {
        for (let g = 0; g < groups; g++) {
          let m1 = 0, m2 = 0;
          for (let k = i * c + g * cg; k < i * c + (g + 1) * cg; k++) {
            m1 += s1[k];
            m2 += s2[k];
          }
          const mean = m1 / count;
          const r = 1 / Math.sqrt(Math.max(m2 / count - mean * mean, 0) + eps);
          out.mean[i * groups + g] = mean;
          out.rstd[i * groups + g] = r;
          for (let j = g * cg; j < (g + 1) * cg; j++) {
            a[i * c + j] = gamma[j] * r;
            b[i * c + j] = beta[j] - mean * gamma[j] * r;
          }
        }
      }
      apply(plan, plan.ops.mul, x, a, out.y);
      apply(plan, plan.ops.add, out.y, b, out.y);
      if (plan.swish) {
        dnnl.execute(plan.swish, [[DNNL.argSrc, plan.mem.x, out.y], [
          DNNL.argDst,
          plan.mem.y,
          out.y,
        ]]);
      }
      return true;
    },
    backward(shape, inputs, out) {
      const { n, h, w, c, groups } = shape;
      const { x, gamma, beta, mean, rstd } = inputs;
      if (gamma.length !== c || out.dgamma.length !== c || out.dbeta.length !== c) return false;
      if (mean.length !== n * groups || rstd.length !== n * groups) return false;
      if (shape.silu && beta?.length !== c) return false;
      const plan = planFor({ ...shape, silu: false }, inputs.dy, x, out.dx);
      if (plan === null) return false;
      const { s1, s2, a, b, c: c0, scratch } = plan;
      let dy = inputs.dy;
      if (shape.silu) {
        // Back through SiLU(u) first: u = x a + b again, from the forward's statistics.
        const cg = c / groups;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < c; j++) {
            const k = i * groups + Math.floor(j / cg), r = rstd[k] * gamma[j];
            a[i * c + j] = r;
            b[i * c + j] = beta![j] - mean[k] * r;
          }
        }
        apply(plan, plan.ops.mul, x, a, scratch);
        apply(plan, plan.ops.add, scratch, b, scratch);
        plan.siluDy ??= new Float32Array(scratch.length);
        if (!elementwise.siluGrad(scratch, dy, plan.siluDy)) return false;
        dy = plan.siluDy;
      }
      apply(plan, plan.ops.mulFull, dy, x, scratch); // dy x
      if (!channelSums(plan, shape, dy, s1) || !channelSums(plan, shape, scratch, s2)) {
        return false;
      }
      const cg = c / groups, count = h * w * cg;
      out.dgamma.fill(0);
      out.dbeta.fill(0);
      for (let i = 0; i < n; i++) {
        for (let g = 0; g < groups; g++) {
          const mu = mean[i * groups + g], r = rstd[i * groups + g];
          // m1 = mean of gamma dy, m2 = mean of gamma dy xc over the group (all pixels).
          let m1 = 0, m2 = 0;
          for (let j = g * cg; j < (g + 1) * cg; j++) {
            const k = i * c + j, dyXc = s2[k] - mu * s1[k];
            m1 += gamma[j] * s1[k];
            m2 += gamma[j] * dyXc;
            out.dgamma[j] += r * dyXc;
            out.dbeta[j] += s1[k];
          }
          m1 /= count;
          m2 /= count;
          const r3m2 = r * r * r * m2;
          for (let j = g * cg; j < (g + 1) * cg; j++) {
            a[i * c + j] = r * gamma[j];
            b[i * c + j] = -r3m2;
            c0[i * c + j] = mu * r3m2 - r * m1;
          }
        }
      }
      apply(plan, plan.ops.mul, x, b, scratch); // x B
      apply(plan, plan.ops.mul, dy, a, out.dx); // dy A
      apply(plan, plan.ops.addFull, out.dx, scratch, out.dx);
      apply(plan, plan.ops.add, out.dx, c0, out.dx); // + C
      return true;
    },
  };
}
