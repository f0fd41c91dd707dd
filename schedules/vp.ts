/**
 * The variance-preserving (VP) process of Song et al. in EDM's form (EDM Table 1, "VP" column;
 * Appendix C.2): `sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)` and
 * `s(t) = 1 / sqrt(exp(beta_d t^2 / 2 + beta_min t))`, for t in (0, 1].
 *
 * `expm1`/`log1p` keep sigma and its inverse accurate at the small t used near the data.
 *
 * @module
 */
import type { SigmaSchedule } from "./types.ts";

/** Options of {@linkcode vpSchedule}. */
export interface VpScheduleOptions {
  /** Linear growth of beta(t) = beta_min + beta_d t (Table 1 beta_d). @default 19.9 */
  betaD?: number;
  /** beta(0) (Table 1 beta_min). @default 0.1 */
  betaMin?: number;
  /** Smallest t of the sampling discretization (Table 1 epsilon_s). @default 1e-3 */
  epsS?: number;
  /** Smallest t of the training distribution (Table 1 epsilon_t). @default 1e-5 */
  epsT?: number;
}

/** The VP schedule with its parameters. `tMin` is epsilon_t (trained range), `tMax` is 1. */
export interface VpSchedule extends SigmaSchedule {
  /** Schedule name, the discriminant of the union. */
  readonly name: "vp";
  /** beta_d. */
  readonly betaD: number;
  /** beta_min. */
  readonly betaMin: number;
  /** epsilon_s (sampling). */
  readonly epsS: number;
  /** epsilon_t (training). */
  readonly epsT: number;
  /** Smallest trained t: epsilon_t. */
  readonly tMin: number;
  /** Largest t: 1. */
  readonly tMax: number;
}

/**
 * Builds the VP schedule of EDM Table 1.
 *
 * @param options beta_d, beta_min, epsilon_s and epsilon_t; the paper's values by default.
 * @returns A {@linkcode VpSchedule}: sigma(t), s(t), their derivatives and sigma's inverse.
 * @throws {RangeError} When a parameter is not positive or epsilon is not below 1.
 * @example sigma(1) of the default VP process
 * ```ts
 * import { vpSchedule } from "./vp.ts";
 * const vp = vpSchedule();
 * const sigmaMax = vp.sigma(1); // ~ 152.17
 * console.assert(Math.abs(vp.sigmaInv(sigmaMax) - 1) < 1e-9);
 * ```
 */
export function vpSchedule(options: VpScheduleOptions = {}): VpSchedule {
  const { betaD = 19.9, betaMin = 0.1, epsS = 1e-3, epsT = 1e-5 } = options;
  if (!(betaD > 0) || !(betaMin >= 0)) {
    throw new RangeError(
      `VP needs betaD > 0 and betaMin >= 0, got betaD=${betaD}, betaMin=${betaMin}`,
    );
  }
  for (const [k, v] of [["epsS", epsS], ["epsT", epsT]] as const) {
    if (!(v > 0 && v < 1)) throw new RangeError(`VP ${k} must lie in (0, 1), got ${v}`);
  }
  // The exponent beta_d t^2 / 2 + beta_min t = -log(alpha_bar(t)) of the continuous VP SDE.
  const exponent = (t: number): number => 0.5 * betaD * t * t + betaMin * t;
  const sigma = (t: number): number => Math.sqrt(Math.expm1(exponent(t)));
  const s = (t: number): number => Math.exp(-0.5 * exponent(t));
  return {
    name: "vp",
    betaD,
    betaMin,
    epsS,
    epsT,
    tMin: epsT,
    tMax: 1,
    sigma,
    // d/dt sqrt(e^E - 1) = E'(t) e^E / (2 sigma)
    sigmaDeriv: (t) => (betaD * t + betaMin) * Math.exp(exponent(t)) / (2 * sigma(t)),
    // Solve beta_d t^2 / 2 + beta_min t = log(1 + sigma^2) for t >= 0.
    sigmaInv: (sig) =>
      (Math.sqrt(betaMin * betaMin + 2 * betaD * Math.log1p(sig * sig)) - betaMin) / betaD,
    s,
    sDeriv: (t) => -0.5 * (betaD * t + betaMin) * s(t),
  };
}
