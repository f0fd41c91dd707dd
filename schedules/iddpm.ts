/**
 * The iDDPM (improved DDPM, cosine schedule) process in EDM's form (EDM Table 1, "iDDPM + DDIM"
 * column; Appendix C.3): `sigma(t) = t`, `s(t) = 1`, and a table of the M + 1 noise levels the
 * model was trained on, `u_M = 0` and
 * `u_{j-1} = sqrt((u_j^2 + 1) / max(alpha_bar_{j-1} / alpha_bar_j, C1) - 1)`,
 * with `alpha_bar_j = sin^2(pi/2 * j / (M (C2 + 1)))`. The table decreases in j: u_0 is the
 * largest level (about 20291 with the defaults, set by the clamp C1 since alpha_bar_0 = 0),
 * u_{j0} the first one sampled (about 80.2 for j0 = 8), u_{M-1} the smallest nonzero one (0.0064).
 *
 * @module
 */
import type { SigmaSchedule } from "./types.ts";

/** Options of {@linkcode iddpmSchedule}. */
export interface IddpmScheduleOptions {
  /** Clamp of the alpha-bar ratio in the recursion (Table 1 C1). @default 0.001 */
  C1?: number;
  /** Offset of the cosine schedule (Table 1 C2). @default 0.008 */
  C2?: number;
  /** Number of trained noise levels (Table 1 M). @default 1000 */
  M?: number;
  /** First table index used when sampling (Table 1 j0; iDDPM itself used 0). @default 8 */
  j0?: number;
}

/** The iDDPM schedule with its table; `t = sigma` in [u_{M-1}, u_0]. */
export interface IddpmSchedule extends SigmaSchedule {
  /** Schedule name, the discriminant of the union. */
  readonly name: "iddpm";
  /** C1. */
  readonly C1: number;
  /** C2. */
  readonly C2: number;
  /** M. */
  readonly M: number;
  /** j0. */
  readonly j0: number;
  /** The M + 1 trained levels u_0 > u_1 > ... > u_{M-1} > u_M = 0. Do not mutate. */
  readonly u: Float64Array;
  /** u_{M-1}, the smallest nonzero level. */
  readonly tMin: number;
  /** u_0, the largest level. */
  readonly tMax: number;
  /** alpha_bar_j = sin^2(pi/2 * j / (M (C2 + 1))). */
  alphaBar(j: number): number;
  /** The j in 0..M-1 minimizing |u_j - sigma| (the trained index behind c_noise). */
  nearestIndex(sigma: number): number;
  /** The nearest table value u_j, j in 0..M (so 0 rounds to u_M = 0). */
  roundSigma(sigma: number): number;
}

/**
 * Builds the iDDPM schedule of EDM Table 1, including its table u_j.
 *
 * @param options C1, C2, M and j0; the paper's values by default.
 * @returns An {@linkcode IddpmSchedule}.
 * @throws {RangeError} For C1 or C2 not positive, M not an integer >= 2, or j0 outside [0, M-1).
 * @example The first sampled noise level
 * ```ts
 * import { iddpmSchedule } from "./iddpm.ts";
 * const iddpm = iddpmSchedule();
 * const sigmaStart = iddpm.u[iddpm.j0]; // ~ 80.2
 * console.assert(iddpm.u[iddpm.M] === 0);
 * ```
 */
export function iddpmSchedule(options: IddpmScheduleOptions = {}): IddpmSchedule {
  const { C1 = 0.001, C2 = 0.008, M = 1000, j0 = 8 } = options;
  if (!(C1 > 0) || !(C2 > 0)) {
    throw new RangeError(`iDDPM needs C1 > 0 and C2 > 0, got C1=${C1}, C2=${C2}`);
  }
  if (!Number.isInteger(M) || M < 2) {
    throw new RangeError(`iDDPM M must be an integer >= 2, got ${M}`);
  }
  if (!Number.isInteger(j0) || j0 < 0 || j0 >= M - 1) {
    throw new RangeError(`iDDPM j0 must be an integer in [0, M-1) = [0, ${M - 1}), got ${j0}`);
  }
  const alphaBar = (j: number): number => Math.sin((0.5 * Math.PI * j) / (M * (C2 + 1))) ** 2;
  const u = new Float64Array(M + 1); // u[M] = 0
  for (let j = M; j > 0; j--) {
    // alpha_bar_0 = 0, so the clamp C1 sets u_0.
    const ratio = Math.max(alphaBar(j - 1) / alphaBar(j), C1);
    u[j - 1] = Math.sqrt((u[j] * u[j] + 1) / ratio - 1);
  }
  const nearest = (sigma: number, count: number): number => {
    let best = 0;
    for (let j = 1; j < count; j++) {
      if (Math.abs(u[j] - sigma) < Math.abs(u[best] - sigma)) best = j;
    }
    return best;
  };
  return {
    name: "iddpm",
    C1,
    C2,
    M,
    j0,
    u,
    tMin: u[M - 1],
    tMax: u[0],
    alphaBar,
    nearestIndex: (sigma) => nearest(sigma, M),
    roundSigma: (sigma) => u[nearest(sigma, M + 1)],
    sigma: (t) => t,
    sigmaDeriv: () => 1,
    sigmaInv: (sig) => sig,
    s: () => 1,
    sDeriv: () => 0,
  };
}
