/**
 * 2-D toy distributions for quick diffusion and flow experiments (the standard test beds of
 * FFJORD, Grathwohl et al. 2019; the NDM paper, figure 2, uses the checkerboard).
 * Each is sampled i.i.d. from an explicit {@linkcode Rng} and returned as a point
 * {@linkcode Dataset} of shape [2]. At `scale: 1` and noise 0 their closed forms are:
 *
 * - `eight-gaussians`: centers `2 (cos k pi/4, sin k pi/4)`, k = 0..7 (the label), each with
 *   isotropic noise; mean 0, `E|x|^2 = 4 + 2 noise^2`.
 * - `two-moons`: two unit half-circles, centered at `-(0.5, 0.25)` (upper, label 0) and
 *   `(0.5, 0.25)` (lower, label 1), angle uniform in [0, pi]; mean 0.
 * - `swiss-roll`: `(t cos t, t sin t) / (2.25 pi)` with `t = 1.5 pi (1 + 2u)`, u uniform in
 *   [0, 1); radius in [2/3, 2], `E|x|^2 = 52/27`.
 * - `checkerboard`: uniform on the 8 cells `(i + j)` even of a 4x4 board of unit cells
 *   covering [-2, 2]^2; mean 0, each coordinate uniform on [-2, 2] (variance 4/3).
 *
 * `scale` multiplies the final points, so every length above (and the noise) scales with it.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";
import type { Dataset } from "./dataset.ts";

/** Names of the toy sets, as used by `loadDataset("toy:<name>")`. */
export const TOY_NAMES = ["eight-gaussians", "two-moons", "swiss-roll", "checkerboard"] as const;

/** One of {@linkcode TOY_NAMES}. */
export type ToyName = typeof TOY_NAMES[number];

/** Options of the toy-set generators. */
export interface ToyOptions {
  /** Source of every random draw; advanced by the call. */
  rng: Rng;
  /** Number of points. @default 10000 */
  count?: number;
  /** Factor applied to every final point. @default 1 */
  scale?: number;
  /**
   * Standard deviation of the Gaussian noise added to each coordinate, before `scale`.
   * @default 0.1 for eight-gaussians, 0.05 for two-moons and swiss-roll, 0 for checkerboard
   */
  noise?: number;
}

const DEFAULT_NOISE: Record<ToyName, number> = {
  "eight-gaussians": 0.1,
  "two-moons": 0.05,
  "swiss-roll": 0.05,
  "checkerboard": 0,
};

/**
 * Samples a named toy set.
 *
 * @param name One of {@linkcode TOY_NAMES}.
 * @param options Generator, size, scale and noise.
 * @returns A new point dataset of shape [2]; the caller owns it.
 * @throws {RangeError} For an unknown name, a count below 1, or a negative noise or bad scale.
 * @example Ten thousand points of two moons
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { makeToy } from "./toy2d.ts";
 * const ds = makeToy("two-moons", { rng: new Rng(0) });
 * console.assert(ds.images.length === 2 * 10000);
 * ```
 */
export function makeToy(name: ToyName, options: ToyOptions): Dataset {
  if (!(TOY_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(`unknown toy set "${name}": use one of ${TOY_NAMES.join(", ")}`);
  }
  const { rng, count = 10000, scale = 1, noise = DEFAULT_NOISE[name] } = options;
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  if (!(noise >= 0) || !Number.isFinite(noise)) {
    throw new RangeError(`noise must be a finite number >= 0, got ${noise}`);
  }
  if (!Number.isFinite(scale) || scale === 0) {
    throw new RangeError(`scale must be a finite nonzero number, got ${scale}`);
  }
  const images = new Float32Array(2 * count);
  const numClasses = name === "eight-gaussians" ? 8 : name === "two-moons" ? 2 : 0;
  const labels = numClasses > 0 ? new Int32Array(count) : undefined;
  for (let i = 0; i < count; i++) {
    const [x, y, label] = DRAW[name](rng);
    images[2 * i] = scale * (x + noise * rng.normal());
    images[2 * i + 1] = scale * (y + noise * rng.normal());
    if (labels) labels[i] = label;
  }
  return { name: `toy:${name}`, images, shape: [2], count, labels, numClasses };
}

/**
 * Samples the eight-Gaussians set (see the module doc for its closed form).
 *
 * @param options Generator, size, scale and noise (default 0.1).
 * @returns A new labelled point dataset; the caller owns it.
 * @example Radius 4 instead of 2
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { eightGaussians } from "./toy2d.ts";
 * const ds = eightGaussians({ rng: new Rng(1), count: 64, scale: 2 });
 * ```
 */
export function eightGaussians(options: ToyOptions): Dataset {
  return makeToy("eight-gaussians", options);
}

/**
 * Samples the two-moons set (see the module doc for its closed form).
 *
 * @param options Generator, size, scale and noise (default 0.05).
 * @returns A new labelled point dataset; the caller owns it.
 * @example Noise-free moons
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { twoMoons } from "./toy2d.ts";
 * const ds = twoMoons({ rng: new Rng(1), count: 64, noise: 0 });
 * ```
 */
export function twoMoons(options: ToyOptions): Dataset {
  return makeToy("two-moons", options);
}

/**
 * Samples the 2-D swiss roll (see the module doc for its closed form).
 *
 * @param options Generator, size, scale and noise (default 0.05).
 * @returns A new unlabelled point dataset; the caller owns it.
 * @example A small roll
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { swissRoll } from "./toy2d.ts";
 * const ds = swissRoll({ rng: new Rng(1), count: 64 });
 * ```
 */
export function swissRoll(options: ToyOptions): Dataset {
  return makeToy("swiss-roll", options);
}

/**
 * Samples the checkerboard (see the module doc for its closed form).
 *
 * @param options Generator, size, scale and noise (default 0).
 * @returns A new unlabelled point dataset; the caller owns it.
 * @example A board over [-1, 1]^2
 * ```ts
 * import { Rng } from "../core/rng.ts";
 * import { checkerboard } from "./toy2d.ts";
 * const ds = checkerboard({ rng: new Rng(1), count: 64, scale: 0.5 });
 * ```
 */
export function checkerboard(options: ToyOptions): Dataset {
  return makeToy("checkerboard", options);
}

/** Noise-free draws [x, y, label] of each set at scale 1. */
const DRAW: Record<ToyName, (rng: Rng) => [number, number, number]> = {
  "eight-gaussians": (rng) => {
    const k = rng.int(8);
    return [2 * Math.cos((k * Math.PI) / 4), 2 * Math.sin((k * Math.PI) / 4), k];
  },
  "two-moons": (rng) => {
    const lower = rng.int(2);
    const t = Math.PI * rng.uniform();
    const sign = lower ? -1 : 1;
    return [sign * (Math.cos(t) - 0.5), sign * (Math.sin(t) - 0.25), lower];
  },
  "swiss-roll": (rng) => {
    const t = 1.5 * Math.PI * (1 + 2 * rng.uniform());
    const r = 1 / (2.25 * Math.PI);
    return [r * t * Math.cos(t), r * t * Math.sin(t), 0];
  },
  "checkerboard": (rng) => {
    // Cell k of 8: row i = floor(k / 2), column j = 2 (k mod 2) + (i mod 2), so i + j is even.
    const k = rng.int(8);
    const i = Math.floor(k / 2), j = 2 * (k % 2) + (i % 2);
    return [j - 2 + rng.uniform(), i - 2 + rng.uniform(), 0];
  },
};
