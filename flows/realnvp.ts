/**
 * RealNVP (Dinh et al. 2017, Section 3.6 and 4.1): a multiscale flow whose level i (but the last)
 * is 3 checkerboard-masked affine couplings, a squeeze, and 3 channel-masked couplings, with the
 * masks alternating; the last level is 4 checkerboard couplings. Between levels half the channels
 * are factored out. Differences from the paper, kept deliberately: the coupling network is
 * Glow's small conv net (zero last layer) rather than RealNVP's ResNet, an ActNorm sits before
 * each coupling instead of batch normalisation (no batch statistics at test time), and the
 * factored-out halves get Glow's learned conditional prior instead of a fixed N(0, I) (with the
 * zero initialisation it starts as N(0, I)). Pair it with the logit pre-transform of logit.ts
 * for images (see `imageInput` in image_likelihood.ts).
 *
 * @module
 */
import { type Bijector, chain } from "./bijector.ts";
import { actNorm } from "./actnorm.ts";
import { maskedCoupling, type MaskKind } from "./masked_coupling.ts";
import { squeeze } from "./squeeze.ts";
import { type FlowModel, multiscaleFlow } from "./multiscale.ts";

/** Architecture of a RealNVP model. */
export interface RealNvpConfig {
  /** Levels L (each but the last halves the resolution). */
  levels: number;
  /** Hidden channels of the coupling networks. */
  hidden: number;
}

/**
 * A RealNVP model for `[H, W, C]` data (H and W divisible by 2^(L-1)).
 *
 * @param config Levels and hidden width.
 * @param shape Shape of one example.
 * @returns The model.
 * @example
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Rng } from "../core/rng.ts";
 * import { createRealNvp } from "./realnvp.ts";
 * const flow = createRealNvp({ levels: 2, hidden: 8 }, [4, 4, 1]);
 * const params = flow.init(new Rng(0));
 * const logp = flow.logProb(params, tf.randomNormal([2, 4, 4, 1]) as tf.Tensor4D);
 * ```
 */
export function createRealNvp(config: RealNvpConfig, shape: [number, number, number]): FlowModel {
  const { levels, hidden } = config;
  if (!Number.isInteger(hidden) || hidden < 1) {
    throw new RangeError(`realnvp: hidden must be an integer >= 1, got ${hidden}`);
  }
  return multiscaleFlow({
    shape,
    levels,
    level(i, s) {
      const parts: Bijector[] = [];
      const couplings = (kind: MaskKind, count: number, at: [number, number, number]) => {
        for (let k = 0; k < count; k++) {
          const name = `level${i}.${kind}${k}`;
          parts.push(actNorm({ name: `${name}.actnorm`, shape: at }));
          parts.push(
            maskedCoupling({ name, shape: at, mask: kind, parity: (k % 2) as 0 | 1, hidden }),
          );
        }
      };
      if (i === levels - 1) {
        couplings("checkerboard", 4, s);
      } else {
        couplings("checkerboard", 3, s);
        const sq = squeeze({ name: `level${i}.squeeze`, shape: s });
        parts.push(sq);
        couplings("channel", 3, sq.outShape);
      }
      return chain(`level${i}`, parts);
    },
  });
}
