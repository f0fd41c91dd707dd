/**
 * EDM's preconditioning (EDM Section 5, Table 1 "Ours" column, Appendix B.6):
 * `c_skip = sd^2 / (sigma^2 + sd^2)`, `c_out = sigma sd / sqrt(sigma^2 + sd^2)`,
 * `c_in = 1 / sqrt(sigma^2 + sd^2)`, `c_noise = ln(sigma) / 4`, with sd = sigma_data.
 * These keep the network's input and training target at unit variance.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Network } from "../core/types.ts";
import { type PrecondCoefficients, precondition, type Preconditioned } from "./precond.ts";

/** Options of {@linkcode edmPrecond} and {@linkcode edmCoefficients}. */
export interface EdmPrecondOptions {
  /** Standard deviation of the data (Table 1 sigma_data). @default 0.5 */
  sigmaData?: number;
  /** Smallest supported noise level; EDM's network takes any sigma > 0. @default 0 */
  sigmaMin?: number;
  /** Largest supported noise level. @default Infinity */
  sigmaMax?: number;
}

function checkSigmaData(sigmaData: number): void {
  if (!(sigmaData > 0) || !Number.isFinite(sigmaData)) {
    throw new RangeError(`sigmaData must be a positive number, got ${sigmaData}`);
  }
}

/**
 * EDM's four coefficients at one noise level.
 *
 * @param sigma Noise level, > 0.
 * @param options sigma_data.
 * @returns c_skip, c_out, c_in and c_noise of Table 1.
 * @example At sigma = sigma_data the skip and output weights are equal
 * ```ts
 * import { edmCoefficients } from "./precond_edm.ts";
 * const { cSkip, cOut } = edmCoefficients(0.5); // 0.5 and 0.5 / sqrt(2)
 * ```
 */
export function edmCoefficients(
  sigma: number,
  options: EdmPrecondOptions = {},
): PrecondCoefficients {
  const { sigmaData = 0.5 } = options;
  checkSigmaData(sigmaData);
  const v = sigma * sigma + sigmaData * sigmaData;
  return {
    cSkip: (sigmaData * sigmaData) / v,
    cOut: (sigma * sigmaData) / Math.sqrt(v),
    cIn: 1 / Math.sqrt(v),
    cNoise: Math.log(sigma) / 4,
  };
}

/**
 * Wraps a raw network with EDM's preconditioning.
 *
 * @param network The raw network F(x_in; c_noise).
 * @param options sigma_data and the supported sigma range.
 * @returns A {@linkcode Preconditioned} denoiser; `roundSigma` is the identity.
 * @throws {RangeError} For sigmaData not positive or not 0 <= sigmaMin < sigmaMax.
 * @example Denoise a batch
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { edmPrecond } from "./precond_edm.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const denoiser = edmPrecond((x) => tf.zerosLike(x));
 * const d = denoiser(tf.ones([2, 4, 4, 1]), tf.tensor1d([1, 2])); // c_skip * x
 * ```
 */
export function edmPrecond(network: Network, options: EdmPrecondOptions = {}): Preconditioned {
  const { sigmaData = 0.5, sigmaMin = 0, sigmaMax = Infinity } = options;
  checkSigmaData(sigmaData);
  if (!(sigmaMin >= 0) || !(sigmaMax > sigmaMin)) {
    throw new RangeError(
      `need 0 <= sigmaMin < sigmaMax, got sigmaMin=${sigmaMin}, sigmaMax=${sigmaMax}`,
    );
  }
  const sd2 = sigmaData * sigmaData;
  return precondition(network, {
    kind: "edm",
    sigmaMin,
    sigmaMax,
    coefficients: (sigma) => edmCoefficients(sigma, { sigmaData }),
    tensorCoefficients: (sigma) => {
      const v = tf.add(tf.square(sigma), sd2);
      const cIn = tf.rsqrt(v) as tf.Tensor1D;
      return {
        cSkip: tf.div(sd2, v),
        cOut: tf.mul(tf.mul(sigma, sigmaData), cIn),
        cIn,
        cNoise: tf.div(tf.log(sigma), 4),
      };
    },
  });
}
