/**
 * The S2N generalized backward step (S2N Corollary 1, eq. 7 / eq. 12, with rho, gamma, delta) as a
 * {@linkcode CustomSampler} for `generateSamples`: the initial sample is `sigma(t_0) n` in the
 * schedule's z-space, the result `z_N / alpha(t_N)` in data space; the churn noise continues each
 * image's own generator, so an image depends only on its seed.
 *
 * @module
 */
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import type { CustomSampler } from "./generate.ts";
import { type S2nParams, sampleS2n } from "./s2n_backward.ts";

/** Options of {@linkcode s2nSampler}. */
export interface S2nGenerateOptions extends S2nParams {
  /** The noise process (see `s2nSchedule`). */
  schedule: LogSnrSchedule;
  /** Decreasing times t_0 > ... > t_N (see `s2nTimeGrid`). */
  times: ArrayLike<number>;
  /** One more denoiser call at the end, for grids that stop above zero noise (VE). @default false */
  finalDenoise?: boolean;
}

/**
 * A sampler running `sampleS2n` with fixed (rho, gamma, delta) over `times`.
 *
 * @example The paper's stochastic setting on a VP Karras grid
 * ```ts ignore
 * const schedule = s2nSchedule("vp");
 * const times = s2nTimeGrid(schedule, { numSteps: 18, endTime: 0 });
 * const out = await generateSamples(denoiser, {
 *   seeds: [0, 1], shape: [28, 28, 1],
 *   sampler: s2nSampler({ schedule, times, rho: 1, gamma: 1.25, delta: 0.95 }),
 * });
 * ```
 */
export function s2nSampler(options: S2nGenerateOptions): CustomSampler {
  const { schedule, times, finalDenoise = false, ...params } = options;
  if (times.length < 2) throw new RangeError(`times needs at least 2 entries, got ${times.length}`);
  const t0 = times[0], tN = times[times.length - 1];
  return {
    initialScale: schedule.sigma(t0),
    finalScale: schedule.alpha(tN),
    run: (denoiser, x, { noise, cond, signal }) =>
      sampleS2n(denoiser, x, { ...params, schedule, times, noise, cond, signal, finalDenoise }),
  };
}
