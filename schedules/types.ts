/**
 * Scalar schedule contracts shared by samplers and losses. Scalars are plain numbers so a sampler
 * can plan its steps without tensors (DESIGN.md "Core interfaces").
 *
 * @module
 */

/**
 * A noise process in EDM's form (EDM eq. 4, Table 1): `x(t) = s(t) * (y + sigma(t) * n)`.
 * EDM's own choice is `sigma(t) = t`, `s(t) = 1`.
 */
export interface SigmaSchedule {
  /** Short name, e.g. "vp", "ve", "iddpm", "edm". */
  readonly name: string;
  /** Noise level sigma(t). */
  sigma(t: number): number;
  /** d sigma / dt. */
  sigmaDeriv(t: number): number;
  /** Inverse of sigma: the t with sigma(t) = sigma. */
  sigmaInv(sigma: number): number;
  /** Scale s(t). */
  s(t: number): number;
  /** d s / dt. */
  sDeriv(t: number): number;
}

/**
 * A noise process in signal-to-noise terms (S2N): `z_t = alpha(t) * y + sigma(t) * eps`,
 * `logSnr(t) = log(alpha^2 / sigma^2)`. Later papers extend this.
 */
export interface NoiseSchedule {
  /** Short name. */
  readonly name: string;
  /** Signal scale alpha(t). */
  alpha(t: number): number;
  /** Noise scale sigma(t) (VP-scaled space: the std of the noise in z). */
  sigma(t: number): number;
  /** lambda(t) = log(alpha(t)^2 / sigma(t)^2). */
  logSnr(t: number): number;
  /** Inverse of logSnr. */
  tOfLogSnr(lambda: number): number;
  /** Smallest usable t. */
  readonly tMin: number;
  /** Largest t. */
  readonly tMax: number;
}
