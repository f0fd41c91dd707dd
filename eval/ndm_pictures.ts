/**
 * The pictures of NDM's Figure 2 (NDM paper, Section 4.2): the learned transformation
 * F_phi(x, t) of some data points over t (a strip, one row per point, t = 0..1), and the
 * model's x-predictions x_hat_theta(z_T, T) from pure noise z_T ~ N(0, I).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import { type EpsPredictor, x0FromEps } from "../models/ddpm_param.ts";
import type { NdmTransform } from "../models/ndm_transform.ts";
import type { DdpmProcess } from "../schedules/ddpm.ts";

/**
 * F(x, t) for each of N points at `times`: a [N * times.length, ...] batch, row-major (point i,
 * time j at index i * times.length + j), ready for a grid with `times.length` columns.
 *
 * @param transform F.
 * @param x Points [N, ...]; never disposed.
 * @param times Times in [0, 1].
 * @returns A new tensor owned by the caller.
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { scaleTransform } from "../models/ndm_transform.ts";
 * import { transformStrip } from "./ndm_pictures.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const strip = transformStrip(scaleTransform(), tf.ones([2, 3]), [0, 0.5, 1]); // [6, 3]
 * ```
 */
export function transformStrip(
  transform: NdmTransform,
  x: tf.Tensor,
  times: readonly number[],
): tf.Tensor {
  const n = x.shape[0], m = times.length;
  return tf.tidy(() => {
    const rows = tf.reshape(
      tf.tile(tf.expandDims(x, 1), [1, m, ...x.shape.slice(1).map(() => 1)]),
      [
        n * m,
        ...x.shape.slice(1),
      ],
    );
    const t = tf.tensor1d(Float32Array.from({ length: n * m }, (_, k) => times[k % m]));
    return transform.apply(rows, t);
  });
}

/**
 * x_hat_theta(z_T, T) for z_T drawn from `noise` (Figure 2d-e).
 *
 * @param eps eps_theta.
 * @param options The chain, the noise source and the shape [N, ...].
 * @returns x_hat (a new tensor owned by the caller).
 * @example
 * ```ts ignore
 * const xHat = predictionsAtNoise(eps, { process, noise: perImageNoise(seeds), shape: [16, 28, 28, 1] });
 * ```
 */
export function predictionsAtNoise(
  eps: EpsPredictor,
  options: { process: DdpmProcess; noise: NoiseSource; shape: number[] },
): tf.Tensor {
  const { process, noise, shape } = options;
  return tf.tidy(() => {
    const zT = noise.randn(shape);
    const t = tf.fill([shape[0]], process.timesteps[process.T]) as tf.Tensor1D;
    return x0FromEps(process, { xt: zT, eps: eps(zT, t), t: process.T });
  });
}
