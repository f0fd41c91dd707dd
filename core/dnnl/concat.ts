/**
 * Concatenation of float32 arrays along one axis by oneDNN's concat primitive, its copies spread
 * over its threads; one cached primitive per shape list.
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). The U-Net decoder
 * concatenates its running features with a kept encoder output before every block: on
 * tfjs-backend-wasm one thread copied them, 46 ms of a 790 ms unet-bench sampling step
 * (bench/profile_step.ts).
 *
 * @module
 */
import { DNNL, type Dnnl, type Primitive } from "./onednn.ts";

/** At most this many shape lists get a primitive; further ones are declined (bounded memory). */
const MAX_PLANS = 256;

/** Concatenation on one oneDNN engine. */
export interface DnnlConcat {
  /**
   * Concatenates row-major arrays viewed as `[outer, inners[i]]` along their second dimension
   * into `out` (`outer x sum(inners)`): any tfjs concatenation, with `outer` the product of the
   * dimensions before the axis. Returns `false` when oneDNN declines.
   */
  run(
    outer: number,
    inners: readonly number[],
    inputs: readonly Float32Array[],
    out: Float32Array,
  ): boolean;
}

/**
 * Creates cached concat primitives on one oneDNN library.
 *
 * @param dnnl A library from `loadDnnl`.
 * @returns The function.
 * @example Two rows of [1, 2] and [3] side by side
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * import { createDnnlConcat } from "./concat.ts";
 * const r = loadDnnl();
 * if (r.ok) {
 *   const out = new Float32Array(6);
 *   const a = new Float32Array([1, 2, 1, 2]), b = new Float32Array([3, 3]);
 *   createDnnlConcat(r.dnnl).run(2, [2, 1], [a, b], out); // [1, 2, 3, 1, 2, 3]
 * }
 * ```
 */
export function createDnnlConcat(dnnl: Dnnl): DnnlConcat {
  type Plan = { p: Primitive; src: Deno.PointerValue[]; dst: Deno.PointerValue };
  const plans = new Map<string, Plan | null>();
  return {
    run(outer, inners, inputs, out) {
      const total = inners.reduce((s, d) => s + d, 0);
      if (inputs.length !== inners.length || inputs.length === 0 || out.length !== outer * total) {
        return false;
      }
      if (inputs.some((x, i) => x.length !== outer * inners[i] || x.length === 0)) return false;
      const key = `${outer}|${inners}`;
      if (!plans.has(key)) {
        if (plans.size >= MAX_PLANS) return false;
        const srcs = inners.map((d) => dnnl.memoryDesc([outer, d], DNNL.tagAb));
        const dst = dnnl.memoryDesc([outer, total], DNNL.tagAb);
        const p = dnnl.concat(dst, srcs, 1);
        plans.set(key, p && { p, src: srcs.map((m) => dnnl.memory(m)), dst: dnnl.memory(dst) });
      }
      const plan = plans.get(key)!;
      if (plan === null) return false;
      dnnl.execute(plan.p, [
        ...inputs.map((x, i) => [DNNL.argMultipleSrc + i, plan.src[i], x] as const),
        [DNNL.argDst, plan.dst, out],
      ]);
      return true;
    },
  };
}
