/**
 * The discrete DDPM forward process (Ho et al. 2020, eq. 2, 4, 6-7) and its bridge to EDM's
 * sigma view.
 *
 * - Betas: linear from beta_1 = 1e-4 to beta_T = 0.02 with T = 1000 (DDPM Section 4), or the
 *   cosine schedule of improved DDPM (Nichol and Dhariwal 2021, eq. 17):
 *   `alphaBar(t) = f(t) / f(0)`, `f(t) = cos^2(pi/2 (t/T + s) / (1 + s))`,
 *   `beta_t = min(1 - alphaBar(t) / alphaBar(t-1), 0.999)`.
 * - `alpha_t = 1 - beta_t`, `alphaBar_t = prod_{s <= t} alpha_s` (eq. 4), in float64.
 * - The posterior q(x_{t-1} | x_t, x_0) = N(muTilde, betaTilde I) of eq. 6-7:
 *   `muTilde = coefX0_t x_0 + coefXt_t x_t` with `coefX0_t = sqrt(alphaBar_{t-1}) beta_t / (1 - alphaBar_t)`,
 *   `coefXt_t = sqrt(alpha_t) (1 - alphaBar_{t-1}) / (1 - alphaBar_t)`, and
 *   `betaTilde_t = (1 - alphaBar_{t-1}) / (1 - alphaBar_t) beta_t`.
 * - The two reverse variances of Section 3.2, `sigma_t^2 = beta_t` and `sigma_t^2 = betaTilde_t`.
 * - Respacing to a subsequence of steps t_1 < ... < t_K with recomputed
 *   `beta_k = 1 - alphaBar_{t_k} / alphaBar_{t_{k-1}}` (improved DDPM Section 4; DDIM uses the
 *   same alphaBar subsequence), so every formula above holds for the shorter chain.
 * - The bridge to EDM (EDM Table 1, VP-type processes): `x_t = sqrt(alphaBar_t) (y + sigma_t n)`,
 *   so `sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t)` and `s_t = sqrt(alphaBar_t)`.
 *
 * Arrays are indexed by the step k of the chain, 0..T, as in the paper: index 0 is the data
 * (`alphaBar[0] = 1`, `betas[0] = 0`) and index k in 1..T is step k. A chain also records, per
 * step, the time its network is called with (`timesteps[k]`: k itself for a full process, the
 * original step t_k for a respaced one) and the alphaBar table of that time axis (`baseAlphaBar`).
 *
 * @module
 */

/** Beta schedules: DDPM's linear one or improved DDPM's cosine one. */
export type BetaSchedule = "linear" | "cosine";

/** The two fixed reverse variances of DDPM Section 3.2. */
export type ReverseVariance = "beta" | "betaTilde";

/** Options of {@linkcode ddpmProcess}. */
export interface DdpmProcessOptions {
  /** Number of diffusion steps T. @default 1000 */
  T?: number;
  /** Beta schedule. @default "linear" */
  schedule?: BetaSchedule;
  /** beta_1 of the linear schedule. @default 1e-4 */
  betaStart?: number;
  /** beta_T of the linear schedule. @default 0.02 */
  betaEnd?: number;
  /** Offset s of the cosine schedule. @default 0.008 */
  cosineS?: number;
  /** Clip of the cosine schedule's betas (avoids beta_T = 1). @default 0.999 */
  maxBeta?: number;
}

/** A discrete DDPM chain; every array has T + 1 entries indexed by the step k = 0..T. Do not mutate. */
export interface DdpmProcess {
  /** "linear", "cosine", or "respaced" for a subsequence of another process. */
  readonly schedule: BetaSchedule | "respaced";
  /** Number of steps T (K for a respaced chain). */
  readonly T: number;
  /** beta_k; `betas[0] = 0`. */
  readonly betas: Float64Array;
  /** alpha_k = 1 - beta_k; `alphas[0] = 1`. */
  readonly alphas: Float64Array;
  /** alphaBar_k = prod_{j <= k} alpha_j; `alphaBar[0] = 1`. */
  readonly alphaBar: Float64Array;
  /** Posterior variance betaTilde_k (eq. 7); `[0] = [1] = 0` since alphaBar_0 = 1. */
  readonly posteriorVariance: Float64Array;
  /** Coefficient of x_0 in muTilde_k (eq. 7); `[0] = 0`. */
  readonly posteriorCoefX0: Float64Array;
  /** Coefficient of x_k in muTilde_k (eq. 7); `[0] = 0`. */
  readonly posteriorCoefXt: Float64Array;
  /** Network time of step k: k for a full process, t_k for a respaced one; `timesteps[0] = 0`. */
  readonly timesteps: Float64Array;
  /** alphaBar of the process whose time axis the network uses, indexed by network time. */
  readonly baseAlphaBar: Float64Array;
}

/**
 * Builds a DDPM process: betas, alphas, alphaBar and the posterior coefficients of eq. 6-7.
 *
 * @param options T and the beta schedule; DDPM's linear 1e-4..0.02 with T = 1000 by default.
 * @returns A {@linkcode DdpmProcess} whose network time is the step index.
 * @throws {RangeError} For T not an integer >= 1, betas outside (0, 1), or cosine settings out of range.
 * @example DDPM's process and improved DDPM's cosine one
 * ```ts
 * import { ddpmProcess } from "./ddpm.ts";
 * const ddpm = ddpmProcess(); // T = 1000, linear betas
 * console.assert(ddpm.alphaBar[1000] < 1e-4);
 * const cosine = ddpmProcess({ schedule: "cosine", T: 100 });
 * ```
 */
export function ddpmProcess(options: DdpmProcessOptions = {}): DdpmProcess {
  const {
    T = 1000,
    schedule = "linear",
    betaStart = 1e-4,
    betaEnd = 0.02,
    cosineS = 0.008,
    maxBeta = 0.999,
  } = options;
  if (!Number.isInteger(T) || T < 1) {
    throw new RangeError(`T must be an integer >= 1, got ${T}`);
  }
  const betas = new Float64Array(T + 1);
  if (schedule === "linear") {
    if (!(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd)) {
      throw new RangeError(
        `linear betas need 0 < betaStart <= betaEnd < 1, got ${betaStart} and ${betaEnd}`,
      );
    }
    for (let t = 1; t <= T; t++) {
      betas[t] = T === 1 ? betaStart : betaStart + ((betaEnd - betaStart) * (t - 1)) / (T - 1);
    }
  } else if (schedule === "cosine") {
    if (!(cosineS > 0) || !(maxBeta > 0 && maxBeta < 1)) {
      throw new RangeError(
        `the cosine schedule needs cosineS > 0 and 0 < maxBeta < 1, got ${cosineS} and ${maxBeta}`,
      );
    }
    const f = (t: number) => Math.cos(((t / T + cosineS) / (1 + cosineS)) * Math.PI / 2) ** 2;
    for (let t = 1; t <= T; t++) betas[t] = Math.min(1 - f(t) / f(t - 1), maxBeta);
  } else {
    throw new RangeError(`unknown beta schedule "${schedule}": use "linear" or "cosine"`);
  }
  const alphaBar = new Float64Array(T + 1);
  alphaBar[0] = 1;
  for (let t = 1; t <= T; t++) alphaBar[t] = alphaBar[t - 1] * (1 - betas[t]);
  const timesteps = Float64Array.from({ length: T + 1 }, (_, k) => k);
  return chainOf(schedule, betas, alphaBar, timesteps, alphaBar);
}

// Builds the posterior tables from betas and alphaBar (alphaBar[0] = 1).
function chainOf(
  schedule: DdpmProcess["schedule"],
  betas: Float64Array,
  alphaBar: Float64Array,
  timesteps: Float64Array,
  baseAlphaBar: Float64Array,
): DdpmProcess {
  const T = alphaBar.length - 1;
  const alphas = new Float64Array(T + 1);
  const posteriorVariance = new Float64Array(T + 1);
  const posteriorCoefX0 = new Float64Array(T + 1), posteriorCoefXt = new Float64Array(T + 1);
  alphas[0] = 1;
  for (let t = 1; t <= T; t++) {
    alphas[t] = 1 - betas[t];
    const oneMinus = 1 - alphaBar[t], oneMinusPrev = 1 - alphaBar[t - 1];
    posteriorVariance[t] = (oneMinusPrev / oneMinus) * betas[t];
    posteriorCoefX0[t] = (Math.sqrt(alphaBar[t - 1]) * betas[t]) / oneMinus;
    posteriorCoefXt[t] = (Math.sqrt(alphas[t]) * oneMinusPrev) / oneMinus;
  }
  return {
    schedule,
    T,
    betas,
    alphas,
    alphaBar,
    posteriorVariance,
    posteriorCoefX0,
    posteriorCoefXt,
    timesteps,
    baseAlphaBar,
  };
}

/**
 * Respaces a process to the subsequence of steps `t_1 < ... < t_K` (improved DDPM Section 4,
 * DDIM Section 4.2): the new chain has `alphaBar_k = alphaBar_{t_k}` and recomputed
 * `beta_k = 1 - alphaBar_{t_k} / alphaBar_{t_{k-1}}` (`alphaBar_{t_0} = 1`), and its network is
 * called at the original times t_k. Respacing a respaced process composes.
 *
 * @param process The process to thin out.
 * @param steps Strictly increasing step indices of `process`, each in 1..T (see {@linkcode spaceTimesteps}).
 * @returns A {@linkcode DdpmProcess} with K = steps.length steps and `schedule: "respaced"`.
 * @throws {RangeError} For an empty list, indices outside 1..T, or a list that is not increasing.
 * @example 50 evenly spaced steps of DDPM's process
 * ```ts
 * import { ddpmProcess, respaceDdpm, spaceTimesteps } from "./ddpm.ts";
 * const full = ddpmProcess();
 * const short = respaceDdpm(full, spaceTimesteps(full.T, { numSteps: 50 }));
 * console.assert(short.T === 50 && short.timesteps[50] === 1000);
 * ```
 */
export function respaceDdpm(process: DdpmProcess, steps: ArrayLike<number>): DdpmProcess {
  const K = steps.length;
  if (K < 1) throw new RangeError("respacing needs at least one step, got an empty list");
  const alphaBar = new Float64Array(K + 1), timesteps = new Float64Array(K + 1);
  alphaBar[0] = 1;
  for (let k = 1; k <= K; k++) {
    const t = steps[k - 1];
    if (!Number.isInteger(t) || t < 1 || t > process.T) {
      throw new RangeError(`steps[${k - 1}] = ${t}: steps must be integers in 1..${process.T}`);
    }
    if (k > 1 && t <= steps[k - 2]) {
      throw new RangeError(
        `steps must increase strictly; steps[${k - 2}] = ${steps[k - 2]}, steps[${k - 1}] = ${t}`,
      );
    }
    alphaBar[k] = process.alphaBar[t];
    timesteps[k] = process.timesteps[t];
  }
  // beta_k = 1 - alphaBar_k / alphaBar_{k-1}, written so no digits cancel when beta_k is tiny.
  const betas = alphaBar.map((ab, k) => (k === 0 ? 0 : (alphaBar[k - 1] - ab) / alphaBar[k - 1]));
  return chainOf("respaced", betas, alphaBar, timesteps, process.baseAlphaBar);
}

/** Options of {@linkcode spaceTimesteps}. */
export interface SpaceTimestepsOptions {
  /** Number K of steps to keep, 1..T. */
  numSteps: number;
  /**
   * "uniform": `round(1 + (k - 1)(T - 1)/(K - 1))`, always keeping steps 1 and T (improved DDPM's
   * spacing); "quadratic": quadratic in k from 1 to T, denser near the data (DDIM's CIFAR-10 choice).
   * @default "uniform"
   */
  spacing?: "uniform" | "quadratic";
}

/**
 * Picks K of the T steps, increasing, for {@linkcode respaceDdpm}. When rounding makes two
 * steps coincide (quadratic spacing with K close to T), later ones move up by one.
 *
 * @param T Number of steps of the full process.
 * @param options K and the spacing.
 * @returns An increasing Int32Array of K steps in 1..T, starting at 1 and ending at T (K >= 2).
 * @throws {RangeError} For K outside 1..T or an unknown spacing.
 * @example 10 steps out of 1000
 * ```ts
 * import { spaceTimesteps } from "./ddpm.ts";
 * const steps = spaceTimesteps(1000, { numSteps: 10 }); // 1, 112, 223, ..., 1000
 * ```
 */
export function spaceTimesteps(T: number, options: SpaceTimestepsOptions): Int32Array {
  const { numSteps: K, spacing = "uniform" } = options;
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`T must be an integer >= 1, got ${T}`);
  if (!Number.isInteger(K) || K < 1 || K > T) {
    throw new RangeError(`numSteps must be an integer in 1..${T}, got ${K}`);
  }
  if (spacing !== "uniform" && spacing !== "quadratic") {
    throw new RangeError(`unknown spacing "${spacing}": use "uniform" or "quadratic"`);
  }
  const out = new Int32Array(K);
  if (K === 1) {
    out[0] = T;
    return out;
  }
  for (let k = 0; k < K; k++) {
    const u = k / (K - 1);
    out[k] = Math.round(1 + (T - 1) * (spacing === "uniform" ? u : u * u));
  }
  // Keep the list strictly increasing and inside 1..T (only quadratic spacing can collide).
  for (let k = 1; k < K; k++) out[k] = Math.max(out[k], out[k - 1] + 1);
  for (let k = K - 1; k > 0 && out[k] > T - (K - 1 - k); k--) out[k] = T - (K - 1 - k);
  return out;
}

/**
 * The fixed reverse variances sigma_k^2 of DDPM Section 3.2: `beta_k`, or `betaTilde_k` (eq. 7).
 * betaTilde_1 is 0 (the chain's last step is deterministic), which would make the decoder of
 * eq. 13 degenerate, so the "betaTilde" table uses betaTilde_2 at k = 1 (for T = 1, beta_1).
 *
 * @param process The chain.
 * @param kind Which variance.
 * @returns A new Float64Array of T + 1 variances, index 0 unused (0).
 * @throws {RangeError} For an unknown kind.
 * @example The two choices at the last step
 * ```ts
 * import { ddpmProcess, reverseVariances } from "./ddpm.ts";
 * const p = ddpmProcess();
 * const large = reverseVariances(p, "beta")[1000]; // 0.02
 * const small = reverseVariances(p, "betaTilde")[1000]; // slightly below 0.02
 * ```
 */
export function reverseVariances(process: DdpmProcess, kind: ReverseVariance): Float64Array {
  if (kind === "beta") return Float64Array.from(process.betas);
  if (kind !== "betaTilde") {
    throw new RangeError(`unknown reverse variance "${kind}": use "beta" or "betaTilde"`);
  }
  const out = Float64Array.from(process.posteriorVariance);
  out[1] = process.T >= 2 ? process.posteriorVariance[2] : process.betas[1];
  return out;
}

/**
 * EDM noise level of step k: `sigma_k = sqrt((1 - alphaBar_k) / alphaBar_k)` (0 at k = 0).
 *
 * @param process The chain.
 * @param k Step index in 0..T.
 * @returns sigma_k.
 * @throws {RangeError} For k outside 0..T.
 * @example
 * ```ts
 * import { ddpmProcess, sigmaOfStep } from "./ddpm.ts";
 * const sigmaMax = sigmaOfStep(ddpmProcess(), 1000); // ~ 157.4
 * ```
 */
export function sigmaOfStep(process: DdpmProcess, k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > process.T) {
    throw new RangeError(`step ${k} is outside 0..${process.T}`);
  }
  return sigmaOfAlphaBar(process.alphaBar[k]);
}

/**
 * EDM noise level of a signal level: `sigma = sqrt((1 - alphaBar) / alphaBar)`.
 *
 * @example
 * ```ts
 * import { sigmaOfAlphaBar } from "./ddpm.ts";
 * console.assert(sigmaOfAlphaBar(0.5) === 1);
 * ```
 */
export function sigmaOfAlphaBar(alphaBar: number): number {
  return Math.sqrt((1 - alphaBar) / alphaBar);
}

/**
 * The noise levels of a chain for EDM's samplers: sigma_T, ..., sigma_1, 0 (decreasing, ending in
 * 0), so `sampleHeun(ddpmDenoiser(...), x, { sigmas: ddpmSigmas(p) })` walks the DDPM grid.
 *
 * @param process The chain (respace it first for fewer steps).
 * @returns A Float64Array of T + 1 levels.
 * @example
 * ```ts
 * import { ddpmProcess, ddpmSigmas } from "./ddpm.ts";
 * const sigmas = ddpmSigmas(ddpmProcess({ T: 10 })); // 11 levels ending in 0
 * ```
 */
export function ddpmSigmas(process: DdpmProcess): Float64Array {
  const out = new Float64Array(process.T + 1);
  for (let k = process.T; k >= 1; k--) out[process.T - k] = sigmaOfAlphaBar(process.alphaBar[k]);
  return out;
}

/** How a noise level between two grid levels maps to a network time. */
export type TimeOfSigmaMode = "nearest" | "interpolate";

/** Options of {@linkcode timeOfSigma}. */
export interface TimeOfSigmaOptions {
  /**
   * "nearest": the network time of the step whose sigma_k is closest in log sigma (as EDM's
   * iDDPM preconditioner rounds to its table); "interpolate": linear in log sigma between the
   * two neighbouring steps' network times (as EDM's VP preconditioner uses a continuous time).
   * Levels outside [sigma_1, sigma_T] clamp to the first or last step either way.
   * @default "nearest"
   */
  mode?: TimeOfSigmaMode;
}

/**
 * The network time for an EDM noise level sigma on a chain's grid (the inverse of
 * {@linkcode sigmaOfStep}, exact at grid levels).
 *
 * @param process The chain.
 * @param sigma A noise level >= 0.
 * @param options Nearest step or interpolation.
 * @returns A network time in [timesteps[1], timesteps[T]] (an integer in "nearest" mode).
 * @throws {RangeError} For a negative or non-finite sigma, or an unknown mode.
 * @example Grid levels map back to their step
 * ```ts
 * import { ddpmProcess, sigmaOfStep, timeOfSigma } from "./ddpm.ts";
 * const p = ddpmProcess();
 * console.assert(timeOfSigma(p, sigmaOfStep(p, 500)) === 500);
 * ```
 */
export function timeOfSigma(
  process: DdpmProcess,
  sigma: number,
  options: TimeOfSigmaOptions = {},
): number {
  const { mode = "nearest" } = options;
  if (mode !== "nearest" && mode !== "interpolate") {
    throw new RangeError(`unknown mode "${mode}": use "nearest" or "interpolate"`);
  }
  if (!(sigma >= 0) || !Number.isFinite(sigma)) {
    throw new RangeError(`sigma must be finite and >= 0, got ${sigma}`);
  }
  const { T, timesteps } = process;
  const logSigma = (k: number) => Math.log(sigmaOfAlphaBar(process.alphaBar[k]));
  const target = Math.log(sigma);
  if (T === 1 || target <= logSigma(1)) return timesteps[1];
  if (target >= logSigma(T)) return timesteps[T];
  // Binary search for k with logSigma(k - 1) < target <= logSigma(k); sigma_k increases in k.
  let lo = 1, hi = T;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (logSigma(mid) < target) lo = mid;
    else hi = mid;
  }
  const a = logSigma(lo), b = logSigma(hi);
  const frac = (target - a) / (b - a);
  if (mode === "nearest") return frac < 0.5 ? timesteps[lo] : timesteps[hi];
  return timesteps[lo] + frac * (timesteps[hi] - timesteps[lo]);
}
