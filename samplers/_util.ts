/**
 * Shared step maths of the EDM samplers (EDM Algorithm 1 and 2): the ODE derivative of EDM eq. 4
 * for any sigma(t), s(t), the plan of noise levels and coefficients per time step, and the step
 * loop that yields to the event loop, honours an AbortSignal, reports each step and disposes
 * what it made.
 *
 * Scalars (times, noise levels, coefficients) are float64 JS numbers; only x lives in tensors.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NoiseSource } from "../core/noise.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import type {
  KnownRegion,
  OdeSamplerOptions,
  SampleResult,
  SamplerOptions,
  SigmaStepOptions,
  StepRecord,
} from "./types.ts";

/**
 * The ODE of EDM eq. 4 at one time t, written as `dx/dt = a x - b D(x / s; sigma)` with
 * `a = sigma'/sigma + s'/s` and `b = sigma' s / sigma` (Algorithm 1, lines 4 and 7).
 * With sigma(t) = t and s(t) = 1 this is `dx/dt = (x - D(x; t)) / t`.
 */
export interface OdeNode {
  /** Time t. */
  t: number;
  /** Noise level sigma(t). */
  sigma: number;
  /** Scale s(t). */
  s: number;
  /** Coefficient of x in dx/dt. */
  a: number;
  /** Coefficient of the denoiser output in dx/dt. */
  b: number;
}

/**
 * The node of EDM's own process (sigma(t) = t, s(t) = 1) at noise level `sigma` > 0.
 *
 * @example EDM node at sigma = 2
 * ```ts
 * import { sigmaNode } from "./_util.ts";
 * const node = sigmaNode(2); // { t: 2, sigma: 2, s: 1, a: 0.5, b: 0.5 }
 * ```
 */
export function sigmaNode(sigma: number): OdeNode {
  return { t: sigma, sigma, s: 1, a: 1 / sigma, b: 1 / sigma };
}

/**
 * Checks a list of noise levels: at least two, finite, non-negative, all but the last positive.
 *
 * @throws {RangeError} Naming the offending entry.
 * @example Accept Karras sigmas
 * ```ts
 * import { checkSigmas } from "./_util.ts";
 * checkSigmas(new Float64Array([80, 1, 0]), "sigmas");
 * ```
 */
export function checkSigmas(sigmas: ArrayLike<number>, name: string): void {
  if (sigmas === undefined || sigmas === null || typeof sigmas.length !== "number") {
    throw new TypeError(`${name} must be a Float64Array of noise levels, got ${sigmas}`);
  }
  if (sigmas.length < 2) {
    throw new RangeError(
      `${name} needs at least 2 entries (one step), got ${sigmas.length}; use e.g. karrasSigmas()`,
    );
  }
  for (let i = 0; i < sigmas.length; i++) {
    const v = sigmas[i];
    const last = i === sigmas.length - 1;
    if (!Number.isFinite(v) || v < 0 || (!last && v === 0)) {
      throw new RangeError(
        `${name}[${i}] = ${v}: noise levels must be finite, positive before the last entry, ` +
          `and non-negative at the end`,
      );
    }
  }
}

/**
 * Resolves the step plan of an ODE sampler: one {@linkcode OdeNode} per time step. With `sigmas`
 * the nodes use sigma(t) = t, s(t) = 1; with `timeSteps` and `schedule` they use the schedule.
 * A final node whose sigma is 0 gets `a = b = NaN` (it is only ever a step target).
 *
 * @throws {TypeError} When neither or both of `sigmas` and `timeSteps` are given, or
 *   `timeSteps` comes without `schedule`.
 * @throws {RangeError} For invalid noise levels or scales.
 * @example Plan EDM noise levels
 * ```ts
 * import { planOdeSteps } from "./_util.ts";
 * const nodes = planOdeSteps({ sigmas: new Float64Array([10, 1, 0]) });
 * ```
 */
export function planOdeSteps(options: OdeSamplerOptions): OdeNode[] {
  const { sigmas, timeSteps, schedule } = options;
  if (sigmas !== undefined && timeSteps !== undefined) {
    throw new TypeError("give either sigmas or timeSteps with schedule, not both");
  }
  if (sigmas !== undefined) {
    checkSigmas(sigmas, "sigmas");
    return Array.from(sigmas, (sigma) => sigma > 0 ? sigmaNode(sigma) : zeroNode(sigma, 1));
  }
  if (timeSteps === undefined) {
    throw new TypeError(
      "missing steps: pass sigmas (e.g. karrasSigmas()) or timeSteps together with schedule",
    );
  }
  if (schedule === undefined) {
    throw new TypeError("timeSteps needs a schedule (a SigmaSchedule giving sigma(t) and s(t))");
  }
  if (options.known !== undefined) {
    throw new TypeError("inpainting (known) works in sigma space only: pass sigmas, not timeSteps");
  }
  const sigmaOfT = Array.from(timeSteps, (t) => schedule.sigma(t));
  checkSigmas(sigmaOfT, `schedule "${schedule.name}" sigma(timeSteps)`);
  return Array.from(timeSteps, (t, i) => {
    const sigma = sigmaOfT[i], s = schedule.s(t);
    if (!Number.isFinite(t) || !(s > 0) || !Number.isFinite(s)) {
      throw new RangeError(
        `timeSteps[${i}] = ${t} gives s(t) = ${s}; times must be finite with s(t) > 0`,
      );
    }
    if (sigma === 0) return zeroNode(t, s);
    const sigmaDeriv = schedule.sigmaDeriv(t);
    return {
      t,
      sigma,
      s,
      a: sigmaDeriv / sigma + schedule.sDeriv(t) / s,
      b: sigmaDeriv * s / sigma,
    };
  });
}

function zeroNode(t: number, s: number): OdeNode {
  return { t, sigma: 0, s, a: NaN, b: NaN };
}

/**
 * Evaluates `dx/dt = a x - b D(x / s; sigma)` at one node. Call inside `tf.tidy`.
 *
 * @returns The derivative and the denoiser output (clean-data estimate, unscaled space).
 * @example dx/dt toward data at the origin
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { odeDerivative, sigmaNode } from "./_util.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const { d } = tf.tidy(() => odeDerivative(zero, tf.ones([1, 2]), sigmaNode(2)));
 * ```
 */
export function odeDerivative(
  denoiser: Denoiser,
  x: tf.Tensor,
  node: OdeNode,
  cond?: Conditioning,
): { d: tf.Tensor; denoised: tf.Tensor } {
  const sigma = tf.fill([x.shape[0]], node.sigma) as tf.Tensor1D;
  const denoised = denoiser(node.s === 1 ? x : tf.div(x, node.s), sigma, cond);
  // sigma(t) = t, s(t) = 1 gives a = b = 1/sigma: (x - D) / sigma is cheaper and more accurate.
  const d = node.a === node.b
    ? tf.mul(tf.sub(x, denoised), node.a)
    : tf.sub(tf.mul(x, node.a), tf.mul(denoised, node.b));
  return { d, denoised };
}

/**
 * One Euler step `x + h d` with an optional Heun (explicit trapezoidal) correction at `to`
 * (EDM Algorithm 1, lines 4-8). Call inside `tf.tidy`.
 *
 * @returns The new sample, the first denoiser output and the number of evaluations (1 or 2).
 * @example One Heun step
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { heunStep, sigmaNode } from "./_util.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const out = tf.tidy(() => heunStep(zero, tf.ones([1, 2]), sigmaNode(2), sigmaNode(1), true));
 * ```
 */
export function heunStep(
  denoiser: Denoiser,
  x: tf.Tensor,
  from: OdeNode,
  to: OdeNode,
  correct: boolean,
  cond?: Conditioning,
): { x: tf.Tensor; denoised: tf.Tensor; nfe: number } {
  const h = to.t - from.t;
  const { d, denoised } = odeDerivative(denoiser, x, from, cond);
  const xEuler = tf.add(x, tf.mul(d, h));
  if (!correct) return { x: xEuler, denoised, nfe: 1 };
  const { d: dNext } = odeDerivative(denoiser, xEuler, to, cond);
  return { x: tf.add(x, tf.mul(tf.add(d, dNext), h / 2)), denoised, nfe: 2 };
}

/** What one step of a sampler returns to {@linkcode runSteps}. */
export interface StepOutput {
  /** The new sample x_{i+1}; handed over to the loop. */
  x: tf.Tensor;
  /** The first denoiser output of the step; handed over to the loop. */
  denoised: tf.Tensor;
  /** The scalar part of the {@linkcode StepRecord}. */
  info: Omit<StepRecord, "i" | "x" | "denoised">;
}

/**
 * The sampler loop: for each step, yield to the event loop, stop if `signal` is aborted, run
 * `step`, report the record, dispose the previous sample. Never disposes `x0`.
 *
 * @returns The final sample (a new tensor, owned by the caller).
 * @example Halve x twice
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { selectBackend } from "../core/engine.ts";
 * import { runSteps } from "./_util.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const x = await runSteps(tf.ones([1, 2]), 2, {}, (x, i) => ({
 *   x: tf.mul(x, 0.5), denoised: tf.zerosLike(x),
 *   info: { t: i, tNext: i + 1, sigma: 0, sigmaNext: 0, sigmaHat: 0, nfe: i + 1 },
 * }));
 * ```
 */
export async function runSteps(
  x0: tf.Tensor,
  numSteps: number,
  options: SamplerOptions,
  step: (x: tf.Tensor, i: number) => StepOutput,
): Promise<tf.Tensor> {
  const { onStep, signal, known } = options;
  const pause = eventLoopYielder();
  let x = x0;
  try {
    for (let i = 0; i < numSteps; i++) {
      await pause();
      signal?.throwIfAborted();
      const out = step(x, i);
      if (x !== x0) x.dispose();
      x = out.x;
      if (known) {
        const pasted = pasteKnown(x, known, out.info.sigmaNext);
        x.dispose();
        x = out.x = pasted;
      }
      try {
        onStep?.({ i, x: out.x, denoised: out.denoised, ...out.info });
      } finally {
        out.denoised.dispose();
      }
    }
  } catch (e) {
    if (x !== x0) x.dispose();
    throw e;
  }
  return x === x0 ? tf.clone(x0) : x;
}

/**
 * Inpainting replacement: `mask (y + sigma n) + (1 - mask) x`; at sigma = 0 the known pixels
 * become y exactly. Returns a new tensor.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { perImageNoise } from "../core/noise.ts";
 * import { pasteKnown } from "./_util.ts";
 * const known = { image: tf.ones([1, 2]), mask: tf.tensor2d([[1, 0]]), noise: perImageNoise([0]) };
 * const x = pasteKnown(tf.zeros([1, 2]), known, 0); // [[1, 0]]
 * ```
 */
export function pasteKnown(x: tf.Tensor, known: KnownRegion, sigma: number): tf.Tensor {
  return tf.tidy(() => {
    const y = sigma > 0
      ? tf.add(known.image, tf.mul(known.noise.randn(x.shape), sigma))
      : known.image;
    const inside = tf.mul(tf.sub(1, known.mask), x);
    return tf.add(tf.mul(known.mask, y), inside);
  });
}

// Longest time the loop runs without a macrotask turn of the event loop, in milliseconds.
const YIELD_INTERVAL_MS = 10;

/**
 * Creates the loop's yield: every call yields to the microtask queue, and whenever at least
 * 10 ms have passed since the last macrotask turn (always on the first call) it waits on
 * `setTimeout(0)`, so timers, signal handlers and I/O run between steps.
 * Nested `setTimeout(0)` is clamped to about 2-4 ms and a MessageChannel message can starve
 * timers in Deno, so a macrotask turn on every step would slow fast toy denoisers a lot.
 *
 * @example Yield in a loop
 * ```ts
 * import { eventLoopYielder } from "./_util.ts";
 * const pause = eventLoopYielder();
 * for (let i = 0; i < 3; i++) await pause();
 * ```
 */
export function eventLoopYielder(): () => Promise<void> {
  let last = -Infinity;
  return async () => {
    if (performance.now() - last < YIELD_INTERVAL_MS) return await Promise.resolve();
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    last = performance.now();
  };
}

// ---------- k-diffusion step maths (Karras et al. 2022 sigma space; crowsonkb/k-diffusion) ----------

/**
 * Splits a step from `sigmaFrom` down to `sigmaTo` into a deterministic step down to `sigmaDown`
 * followed by fresh noise of standard deviation `sigmaUp`, so that
 * `sigmaDown^2 + sigmaUp^2 = sigmaTo^2` (the ancestral step of DDPM in sigma space;
 * k-diffusion's `get_ancestral_step`). `eta` scales the noise: 0 is deterministic, 1 is DDPM's
 * ancestral sampler: `sigmaUp = min(sigmaTo, eta sqrt(sigmaTo^2 (sigmaFrom^2 - sigmaTo^2) / sigmaFrom^2))`.
 *
 * @param sigmaFrom Noise level at the start of the step (> 0).
 * @param sigmaTo Noise level at the end (>= 0).
 * @param eta Amount of noise, >= 0.
 * @returns The two noise levels.
 * @example DDPM-like split
 * ```ts
 * import { ancestralStep } from "./_util.ts";
 * const { sigmaDown, sigmaUp } = ancestralStep(2, 1, 1); // sigmaUp = sqrt(3)/2, sigmaDown = 1/2
 * ```
 */
export function ancestralStep(
  sigmaFrom: number,
  sigmaTo: number,
  eta: number,
): { sigmaDown: number; sigmaUp: number } {
  if (eta === 0 || sigmaTo === 0) return { sigmaDown: sigmaTo, sigmaUp: 0 };
  const sigmaUp = Math.min(
    sigmaTo,
    eta * Math.sqrt(sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2) / sigmaFrom ** 2),
  );
  return { sigmaDown: Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2), sigmaUp };
}

/**
 * Calls the denoiser at one noise level for the whole batch: `D(x; sigma)`. Call inside `tf.tidy`.
 *
 * @returns The clean-data estimate (a new tensor).
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { denoiseAt } from "./_util.ts";
 * const d = denoiseAt((x) => tf.zerosLike(x), tf.ones([2, 3]), 1.5);
 * ```
 */
export function denoiseAt(
  denoiser: Denoiser,
  x: tf.Tensor,
  sigma: number,
  cond?: Conditioning,
): tf.Tensor {
  return denoiser(x, tf.fill([x.shape[0]], sigma) as tf.Tensor1D, cond);
}

/**
 * The probability-flow ODE derivative in sigma space, `dx/dsigma = (x - D) / sigma`
 * (k-diffusion's `to_d`). Call inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { toD } from "./_util.ts";
 * const d = toD(tf.ones([1, 2]), 2, tf.zeros([1, 2])); // 0.5
 * ```
 */
export function toD(x: tf.Tensor, sigma: number, denoised: tf.Tensor): tf.Tensor {
  return tf.div(tf.sub(x, denoised), sigma);
}

/**
 * Validates `eta`, `sNoise` and `noise` of an {@linkcode AncestralOptions}.
 *
 * @throws {RangeError} For a negative or non-finite eta or sNoise.
 * @throws {TypeError} When eta > 0 and no noise source is given.
 * @example
 * ```ts
 * import { perImageNoise } from "../core/noise.ts";
 * import { checkAncestral } from "./_util.ts";
 * checkAncestral({ eta: 1, sNoise: 1, noise: perImageNoise([0]) }, "sampleEulerAncestral");
 * ```
 */
export function checkAncestral(
  options: { eta?: number; sNoise?: number; noise?: NoiseSource },
  who: string,
): void {
  const { eta = 1, sNoise = 1, noise } = options;
  if (!Number.isFinite(eta) || eta < 0) {
    throw new RangeError(`${who}: eta must be a finite number >= 0, got ${eta}`);
  }
  if (!Number.isFinite(sNoise) || sNoise < 0) {
    throw new RangeError(`${who}: sNoise must be a finite number >= 0, got ${sNoise}`);
  }
  if (eta > 0 && noise === undefined) {
    throw new TypeError(
      `${who}: eta = ${eta} needs a noise source: pass noise: perImageNoise(seeds), or eta: 0`,
    );
  }
}

/** Adds `scale * n` with fresh noise n to x (or returns x when scale is 0). Call inside `tf.tidy`. */
export function addNoise(x: tf.Tensor, noise: NoiseSource | undefined, scale: number): tf.Tensor {
  if (scale === 0 || noise === undefined) return x;
  return tf.add(x, tf.mul(noise.randn(x.shape), scale));
}

/** What one sigma-space step returns to {@linkcode runSigmaSteps}. */
export type SigmaStepResult = {
  /** The new sample. */
  x: tf.Tensor;
  /** The first denoiser output of the step. */
  denoised: tf.Tensor;
  /** Denoiser evaluations in this step. */
  nfe: number;
};

/**
 * The loop of the sigma-space samplers: validates `sigmas`, runs `step` from sigma_i to
 * sigma_{i+1} for each i inside `tf.tidy` (the step may `tf.keep` tensors it carries over, and
 * frees them in `cleanup`), fills in the step records and counts evaluations. `cleanup` runs
 * once at the end, also after an abort or an error.
 *
 * @returns The final sample (owned by the caller) and the evaluation count.
 * @example Jump straight to the denoised estimate
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { denoiseAt, runSigmaSteps } from "./_util.ts";
 * const zero = (x: tf.Tensor) => tf.zerosLike(x);
 * const sigmas = new Float64Array([2, 0]);
 * const out = await runSigmaSteps(tf.ones([1, 2]), { sigmas }, (x, i) => {
 *   const denoised = denoiseAt(zero, x, sigmas[i]);
 *   return { x: tf.clone(denoised), denoised, nfe: 1 };
 * });
 * out.x.dispose();
 * ```
 */
export async function runSigmaSteps(
  x: tf.Tensor,
  options: SigmaStepOptions,
  step: (x: tf.Tensor, i: number) => SigmaStepResult,
  cleanup?: () => void,
): Promise<SampleResult> {
  const { sigmas } = options;
  checkSigmas(sigmas, "sigmas");
  let nfe = 0;
  try {
    const out = await runSteps(x, sigmas.length - 1, options, (xi, i) => {
      const r = tf.tidy(() => step(xi, i));
      nfe += r.nfe;
      const sigma = sigmas[i], sigmaNext = sigmas[i + 1];
      return {
        x: r.x,
        denoised: r.denoised,
        info: { t: sigma, tNext: sigmaNext, sigma, sigmaNext, sigmaHat: sigma, nfe },
      };
    });
    return { x: out, nfe };
  } finally {
    cleanup?.();
  }
}

/**
 * Data-prediction exponential-integrator step of DPM-Solver++ (Lu et al. 2022, eq. 9 with the
 * first-order term): from sigma to sigmaNext with `x' = (sigmaNext / sigma) x - expm1(-h) D`,
 * `h = log(sigma / sigmaNext)`; at sigmaNext = 0 this is `x' = D`. Call inside `tf.tidy`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { dataStep } from "./_util.ts";
 * const x = dataStep(tf.ones([1, 2]), tf.zeros([1, 2]), 2, 1); // 0.5
 * ```
 */
export function dataStep(
  x: tf.Tensor,
  denoised: tf.Tensor,
  sigma: number,
  sigmaNext: number,
): tf.Tensor {
  if (sigmaNext === 0) return tf.clone(denoised);
  const ratio = sigmaNext / sigma;
  // -expm1(-h) = 1 - sigmaNext / sigma.
  return tf.add(tf.mul(x, ratio), tf.mul(denoised, -Math.expm1(Math.log(ratio))));
}
