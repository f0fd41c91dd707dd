/**
 * DDPM's samplers (Ho et al. 2020, Algorithm 2; DDIM, Song et al. 2021, eq. 12) as a
 * `CustomSampler` of `generate.ts`, so `generateSamples` draws DDPM images with per-image seeds:
 * x_T ~ N(0, I) from seed i, and the ancestral noise z continues from the same generator.
 *
 * @module
 */
import type { DdpmProcess, ReverseVariance } from "../schedules/ddpm.ts";
import type { CustomSampler } from "./generate.ts";
import { sampleDdpmAncestral } from "./ddpm_ancestral.ts";
import { sampleDdim } from "./ddim.ts";

/** The DDPM samplers {@linkcode ddpmSampler} can run. */
export const DDPM_SAMPLER_NAMES = ["ancestral", "ddim"] as const;

/** Options of {@linkcode ddpmSampler}. */
export interface DdpmSamplerOptions {
  /** Which sampler. @default "ancestral" */
  sampler?: typeof DDPM_SAMPLER_NAMES[number];
  /** Ancestral: reverse variance sigma_t^2. @default "beta" */
  variance?: ReverseVariance;
  /** DDIM: eta (0 deterministic, 1 ancestral with betaTilde). @default 0 */
  eta?: number;
  /** Clip x0-hat to [-1, 1] at every step (ancestral and DDIM). @default false */
  clipX0?: boolean;
}

/**
 * A DDPM sampler on the chain `process` (the training process, or a respacing of it) for
 * `generateSamples`.
 *
 * @param process The chain to walk.
 * @param options Sampler and its settings.
 * @returns A `CustomSampler` whose initial scale is 1 (x_T ~ N(0, I)).
 * @throws {RangeError} For an unknown sampler name.
 * @example 64 ancestral samples in 100 respaced steps
 * ```ts ignore
 * const process = respaceDdpm(full, spaceTimesteps(full.T, { numSteps: 100 }));
 * const out = await generateSamples(ddpmDenoiser(eps, full), {
 *   seeds: [...Array(64).keys()],
 *   shape: [28, 28, 1],
 *   sampler: ddpmSampler(process),
 * });
 * ```
 */
export function ddpmSampler(process: DdpmProcess, options: DdpmSamplerOptions = {}): CustomSampler {
  const { sampler = "ancestral", variance = "beta", eta = 0, clipX0 = false } = options;
  if (!(DDPM_SAMPLER_NAMES as readonly string[]).includes(sampler)) {
    throw new RangeError(
      `unknown DDPM sampler "${sampler}": use one of ${DDPM_SAMPLER_NAMES.join(", ")}`,
    );
  }
  return {
    initialScale: 1,
    run: (denoiser, x, { noise, cond, signal }) =>
      sampler === "ddim"
        ? sampleDdim(denoiser, x, { process, eta, noise, cond, signal, clipX0 })
        : sampleDdpmAncestral(denoiser, x, { process, variance, noise, cond, signal, clipX0 }),
  };
}
