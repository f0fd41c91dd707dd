/**
 * An adaptive explicit Runge-Kutta solver: the Dormand-Prince 5(4) pair (Dormand and Prince 1980,
 * "A family of embedded Runge-Kutta formulae"; Hairer, Norsett and Wanner, "Solving Ordinary
 * Differential Equations I", section II.5, Table 5.2 and the step-size control of II.4). It is the
 * `RK45` that Song et al. 2021 (score SDE, section D.2) use for probability-flow likelihoods.
 *
 * - Seven stages, first-same-as-last: six new right-hand-side evaluations per accepted step.
 * - Local extrapolation: the 5th-order solution is propagated; the embedded 4th-order one
 *   only estimates the error.
 * - Error norm (Hairer II.4, eq. 4.11): `err = sqrt(mean_i (e_i / (atol + rtol max(|y_i|,
 *   |y_new_i|)))^2)`; a step is accepted when `err <= 1`, and the next step is
 *   `h * min(maxFactor, max(minFactor, safety * err^(-1/5)))` (growth capped at 1 after a reject).
 * - Initial step by Hairer's heuristic (II.4, "Starting step size"), one extra evaluation.
 *
 * The state is a Float64Array; the right-hand side may be async (so it can read tensors back).
 * Integration may run forwards or backwards in t.
 *
 * @module
 */

/** A right-hand side `dy/dt = f(t, y)`; returns a new array the solver may keep (never `y`). */
export type OdeFunction = (t: number, y: Float64Array) => Float64Array | Promise<Float64Array>;

/** Options of {@linkcode solveRk45}. */
export interface Rk45Options {
  /** Start of the interval. Required. */
  t0: number;
  /** End of the interval (may be below `t0`). Required. */
  t1: number;
  /** Relative tolerance, > 0. @default 1e-5 */
  rtol?: number;
  /** Absolute tolerance, > 0. @default 1e-5 */
  atol?: number;
  /** First step size (magnitude); undefined picks it by Hairer's heuristic. @default undefined */
  h0?: number;
  /** Most steps (accepted + rejected) before giving up. @default 100_000 */
  maxSteps?: number;
  /** Called after every accepted step. @default undefined */
  onStep?: (record: Rk45StepRecord) => void;
  /** Aborts the solve between evaluations (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** What {@linkcode Rk45Options.onStep} receives. */
export interface Rk45StepRecord {
  /** Time reached. */
  t: number;
  /** Size of the step just accepted. */
  h: number;
  /** Accepted steps so far. */
  steps: number;
  /** Right-hand-side evaluations so far. */
  nfe: number;
}

/** The solution at `t1` and the solver's counts. */
export interface Rk45Result {
  /** State at `t1` (a new array). */
  y: Float64Array;
  /** Right-hand-side evaluations. */
  nfe: number;
  /** Accepted steps. */
  steps: number;
  /** Rejected steps. */
  rejected: number;
}

// Dormand-Prince 5(4) tableau (Hairer I, Table 5.2).
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
// 5th-order weights are A[6] (FSAL); E = b5 - b4, the embedded error weights.
const E = [
  71 / 57600,
  0,
  -71 / 16695,
  71 / 1920,
  -17253 / 339200,
  22 / 525,
  -1 / 40,
];
const SAFETY = 0.9, MIN_FACTOR = 0.2, MAX_FACTOR = 10;

/**
 * Integrates `dy/dt = f(t, y)` from `t0` to `t1` with adaptive Dormand-Prince 5(4) steps.
 *
 * @param f The right-hand side.
 * @param y0 State at `t0`; read, not kept or changed.
 * @param options Interval, tolerances and limits.
 * @returns The state at `t1` and the counts.
 * @throws {RangeError} For non-finite bounds, non-positive tolerances, a non-finite derivative,
 *   or more than `maxSteps` steps (the message says to loosen tolerances or raise the limit).
 * @example Exponential decay
 * ```ts
 * import { solveRk45 } from "./rk45.ts";
 * const { y } = await solveRk45((_t, y) => y.map((v) => -v), new Float64Array([1]), {
 *   t0: 0,
 *   t1: 1,
 * });
 * console.assert(Math.abs(y[0] - Math.exp(-1)) < 1e-5);
 * ```
 */
export async function solveRk45(
  f: OdeFunction,
  y0: Float64Array,
  options: Rk45Options,
): Promise<Rk45Result> {
  const { t0, t1, rtol = 1e-5, atol = 1e-5, h0, maxSteps = 100_000, onStep, signal } = options;
  if (!Number.isFinite(t0) || !Number.isFinite(t1)) {
    throw new RangeError(`t0 and t1 must be finite, got ${t0} and ${t1}`);
  }
  for (const [name, v] of [["rtol", rtol], ["atol", atol]] as const) {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new RangeError(`${name} must be a finite number > 0, got ${v}: try 1e-5`);
    }
  }
  if (h0 !== undefined && !(h0 > 0)) throw new RangeError(`h0 must be > 0, got ${h0}`);
  const n = y0.length;
  let y = Float64Array.from(y0);
  if (t0 === t1) return { y, nfe: 0, steps: 0, rejected: 0 };
  const dir = Math.sign(t1 - t0);
  let nfe = 0;
  const evalF = async (t: number, yy: Float64Array): Promise<Float64Array> => {
    signal?.throwIfAborted();
    nfe++;
    const d = await f(t, yy);
    if (d.length !== n) {
      throw new RangeError(`the right-hand side returned ${d.length} values for a state of ${n}`);
    }
    return d;
  };
  const scale = (a: Float64Array, b: Float64Array, i: number) =>
    atol + rtol * Math.max(Math.abs(a[i]), Math.abs(b[i]));
  const rms = (v: (i: number) => number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += v(i) ** 2;
    return n > 0 ? Math.sqrt(s / n) : 0;
  };

  let t = t0;
  let k1 = await evalF(t, y);
  let h = h0 ?? await initialStep();
  const k: Float64Array[] = new Array(7);
  let steps = 0, rejected = 0, lastRejected = false;
  while (dir * (t1 - t) > 0) {
    if (steps + rejected >= maxSteps) {
      throw new RangeError(
        `RK45 took ${maxSteps} steps and reached t = ${t} of ${t1}: loosen rtol/atol ` +
          `(now ${rtol}/${atol}) or raise maxSteps`,
      );
    }
    // Land exactly on t1 (and avoid a sliver of a last step).
    if (dir * (t + dir * h - t1) > 0 || Math.abs(t1 - (t + dir * h)) < 1e-12 * Math.abs(t1)) {
      h = Math.abs(t1 - t);
    }
    const hs = dir * h;
    k[0] = k1;
    // Stage 7 sits at t + h on the 5th-order solution (A[6] = b5), so its state is yNew.
    let yNew = y;
    for (let s = 1; s < 7; s++) {
      const a = A[s];
      const stage = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let j = 0; j < s; j++) acc += a[j] * k[j][i];
        stage[i] = y[i] + hs * acc;
      }
      k[s] = await evalF(t + C[s] * hs, stage);
      yNew = stage;
    }
    const err = rms((i) => {
      let e = 0;
      for (let j = 0; j < 7; j++) e += E[j] * k[j][i];
      return (hs * e) / scale(y, yNew, i);
    });
    if (!Number.isFinite(err)) {
      throw new RangeError(`RK45: the right-hand side is not finite near t = ${t}`);
    }
    if (err <= 1) {
      t = Math.abs(t1 - (t + hs)) <= 1e-12 * Math.max(1, Math.abs(t1)) ? t1 : t + hs;
      y = yNew;
      k1 = k[6];
      steps++;
      onStep?.({ t, h, steps, nfe });
      const grow = err === 0 ? MAX_FACTOR : Math.min(MAX_FACTOR, SAFETY * err ** -0.2);
      h *= lastRejected ? Math.min(1, grow) : grow;
      lastRejected = false;
    } else {
      rejected++;
      lastRejected = true;
      h *= Math.max(MIN_FACTOR, SAFETY * err ** -0.2);
    }
  }
  return { y, nfe, steps, rejected };

  // Hairer I, II.4: a first guess from |y0| and |f0|, refined by one Euler step's curvature.
  async function initialStep(): Promise<number> {
    const sc = (i: number) => atol + rtol * Math.abs(y[i]);
    const d0 = rms((i) => y[i] / sc(i));
    const d1 = rms((i) => k1[i] / sc(i));
    let first = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * (d0 / d1);
    first = Math.min(first, Math.abs(t1 - t0));
    const y1 = y.map((v, i) => v + dir * first * k1[i]);
    const f1 = await evalF(t0 + dir * first, y1);
    const d2 = rms((i) => (f1[i] - k1[i]) / sc(i)) / first;
    const second = Math.max(d1, d2) <= 1e-15
      ? Math.max(1e-6, first * 1e-3)
      : (0.01 / Math.max(d1, d2)) ** (1 / 5);
    return Math.min(100 * first, second, Math.abs(t1 - t0));
  }
}
