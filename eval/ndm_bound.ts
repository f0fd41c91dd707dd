/**
 * The NELBO of a Neural Diffusion Model (NDM paper, eq. 9) in bits per dimension on a batch:
 * L_prior + sum_{k >= 2} KL_k (eq. 10, one draw of z_k per step) + L_rec, every step of the
 * chain (`training/ndm_loss.ts` for the terms). The loop, the per-step record and the pooling
 * are DDPM's (`ddpmBound`, `summarizeDdpmBound`) with NDM's terms plugged in; L_prior is the
 * DDPM closed form on the transformed data F(x, u_T), in float64. For the identity F (eta = 1)
 * the numbers are DDPM's bound with sigma_t^2 = betaTilde, bit for bit.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";
import type { DdpmDecoder } from "../training/ddpm_loss.ts";
import { ndmTerms, ndmTime } from "../training/ndm_loss.ts";
import { ddpmBound, type DdpmBoundResult, ddpmPriorTerms } from "./ddpm_bound.ts";

/** Options of {@linkcode ndmBound}. */
export interface NdmBoundOptions {
  /** The chain (the training process or a respacing of it). */
  process: DdpmProcess;
  /** Source of the z_k draws, e.g. `perImageNoise(seeds)`; one draw per step. */
  noise: NoiseSource;
  /** Posterior noise scale (sigmaTilde^2 = eta^2 betaTilde). @default 1 */
  eta?: number;
  /** Decoder. @default "discretized" */
  decoder?: DdpmDecoder;
  /** Called after each step. @default undefined */
  onStep?: (progress: { t: number; done: number; total: number }) => void;
  /** Stops between steps. @default undefined */
  signal?: AbortSignal;
}

/**
 * Evaluates the NDM bound of a batch.
 *
 * @param eps eps_theta.
 * @param transform F.
 * @param x0 Data [N, ...]; never disposed.
 * @param options Chain, noise, eta, decoder.
 * @returns DDPM's result record (`prior`, `diffusion`, `decoder` = L_rec, `total`, per-step means).
 * @throws {RangeError} For invalid settings (see `ndmTerms`).
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { perImageNoise } from "../core/noise.ts";
 * import { ddpmEpsNetwork } from "../models/ddpm_param.ts";
 * import { scaleTransform } from "../models/ndm_transform.ts";
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmBound } from "./ndm_bound.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const eps = ddpmEpsNetwork((x) => tf.zerosLike(x));
 * const result = await ndmBound(eps, scaleTransform(), tf.zeros([2, 4]), {
 *   process: ddpmProcess({ T: 10 }),
 *   noise: perImageNoise([0, 1]),
 * });
 * ```
 */
export async function ndmBound(
  eps: EpsPredictor,
  transform: NdmTransform,
  x0: tf.Tensor,
  options: NdmBoundOptions,
): Promise<DdpmBoundResult> {
  const { process, noise, eta = 1, decoder = "discretized", onStep, signal } = options;
  const n = x0.shape[0], dims = x0.size / n;
  return await ddpmBound(eps, x0, {
    process,
    noise,
    decoder,
    onStep,
    signal,
    terms: (x, t, z) => ndmTerms(eps, transform, x, { process, eta, decoder, t, noise: z }),
    prior: async (x) => {
      const f = tf.tidy(() =>
        transform.apply(x, tf.fill([n], ndmTime(process, process.T)) as tf.Tensor1D)
      );
      const values = await f.data();
      f.dispose();
      return ddpmPriorTerms(process, values, n, dims);
    },
  });
}
