/**
 * Glow (Kingma & Dhariwal 2018, Section 3 and Figure 2): a multiscale flow whose level i is a
 * squeeze followed by K steps of flow, each step ActNorm -> invertible 1x1 convolution -> affine
 * (or additive) coupling, with a split and learned conditional prior between levels and a learned
 * top prior. Parameter names: `level<i>.step<k>.{actnorm,invconv,coupling}.*`,
 * `level<i>.split.*`, `top.*`.
 *
 * @module
 */
import { type Bijector, chain } from "./bijector.ts";
import { actNorm } from "./actnorm.ts";
import { invConv } from "./invconv.ts";
import { invConvLu } from "./invconv_lu.ts";
import { affineCoupling } from "./affine_coupling.ts";
import { squeeze } from "./squeeze.ts";
import { type FlowModel, multiscaleFlow } from "./multiscale.ts";

/** Architecture of a Glow model. */
export interface GlowConfig {
  /** Levels L (each halves the resolution). */
  levels: number;
  /** Steps of flow K per level. */
  steps: number;
  /** Hidden channels of the coupling networks. */
  hidden: number;
  /** Coupling kind. @default "affine" */
  coupling?: "affine" | "additive";
  /** 1x1 convolution form: LU-decomposed or plain. @default "lu" */
  permutation?: "lu" | "plain";
  /** Squeeze at the start of each level; false for 1x1 "images" such as 2-D points `[1, 1, D]`. @default true */
  squeeze?: boolean;
}

/**
 * One Glow step of flow: ActNorm, invertible 1x1 conv, coupling.
 *
 * @param name Parameter prefix, e.g. `"level0.step3"`.
 * @param options The shape and the architecture.
 * @returns The step as one bijector.
 * @example
 * ```ts ignore
 * const step = glowStep("level0.step0", { shape: [14, 14, 4], hidden: 64 });
 * ```
 */
export function glowStep(
  name: string,
  options:
    & { shape: [number, number, number] }
    & Pick<GlowConfig, "hidden" | "coupling" | "permutation">,
): Bijector {
  const { shape, hidden, coupling = "affine", permutation = "lu" } = options;
  const conv = permutation === "lu" ? invConvLu : invConv;
  return chain(name, [
    actNorm({ name: `${name}.actnorm`, shape }),
    conv({ name: `${name}.invconv`, shape }),
    affineCoupling({ name: `${name}.coupling`, shape, hidden, additive: coupling === "additive" }),
  ]);
}

/**
 * A Glow model for `[H, W, C]` data (H and W divisible by 2^L).
 *
 * @param config Levels, steps, hidden width, coupling and 1x1 conv form.
 * @param shape Shape of one example.
 * @returns The model.
 * @throws {RangeError} For sizes that cannot be squeezed L times or bad counts.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { createGlow } from "./glow.ts";
 * const glow = createGlow({ levels: 2, steps: 1, hidden: 8 }, [4, 4, 1]);
 * const params = glow.init(new Rng(0));
 * const x = tf.randomUniform([2, 4, 4, 1], -0.5, 0.5) as tf.Tensor4D;
 * glow.initialize(params, x);
 * const logp = glow.logProb(params, x); // [2]
 * ```
 */
export function createGlow(config: GlowConfig, shape: [number, number, number]): FlowModel {
  const { levels, steps } = config;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`glow: steps must be an integer >= 1, got ${steps}`);
  }
  if (!Number.isInteger(config.hidden) || config.hidden < 1) {
    throw new RangeError(`glow: hidden must be an integer >= 1, got ${config.hidden}`);
  }
  return multiscaleFlow({
    shape,
    levels,
    level(i, s) {
      const parts: Bijector[] = config.squeeze === false
        ? []
        : [squeeze({ name: `level${i}.squeeze`, shape: s })];
      const at = parts.length ? parts[0].outShape : s;
      for (let k = 0; k < steps; k++) {
        parts.push(glowStep(`level${i}.step${k}`, { ...config, shape: at }));
      }
      return chain(`level${i}`, parts);
    },
  });
}
