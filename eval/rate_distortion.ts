/**
 * DDPM's progressive lossy compression curve (Ho et al. 2020, Section 4.3, Algorithms 3-4,
 * Figure 5, Table 4). A receiver that holds x_t has received `L_T + sum_{s=t+1}^{T} L_{s-1}`
 * bits (the rate: cumulative bits from T down to t) and estimates
 * `x0-hat = (x_t - sqrt(1 - alphaBar_t) eps_theta(x_t)) / sqrt(alphaBar_t)` (eq. 15); the
 * distortion is the root mean squared error of x0-hat on the 0-255 pixel scale. After L_0 the
 * image is lossless (rate = the whole bound, distortion 0).
 *
 * The curve comes from one bound evaluation (`ddpmBound`, whose per-step terms and x0-hat
 * errors it reads), as the paper notes in Section 5.
 *
 * @module
 */
import { linePlotSvg } from "../data/svg_plot.ts";
import type { DdpmBoundSummary } from "./ddpm_bound.ts";

/** One point of the curve: the receiver holds x_t. */
export interface RateDistortionPoint {
  /** Step t of the chain (0: after the decoder, lossless). */
  t: number;
  /** Bits per dimension received so far. */
  rate: number;
  /** RMSE of x0-hat on the [0, 255] scale: `127.5 sqrt(mean (x0 - x0-hat)^2)` over the set. */
  distortion: number;
}

/**
 * The rate-distortion curve of a bound evaluation, from t = T (rate L_T) down to t = 0.
 *
 * @param summary A bound summary (`summarizeDdpmBound`).
 * @returns T + 1 points, t = T, ..., 1, 0.
 * @example
 * ```ts ignore
 * const curve = rateDistortionCurve(summarizeDdpmBound(results));
 * const last = curve[curve.length - 2]; // t = 1: rate = L_T + sum of diffusion terms
 * ```
 */
export function rateDistortionCurve(summary: DdpmBoundSummary): RateDistortionPoint[] {
  const { stepTerms, stepSquaredError } = summary;
  const T = stepTerms.length - 1;
  const points: RateDistortionPoint[] = [];
  let rate = summary.prior;
  for (let t = T; t >= 1; t--) {
    if (t < T) rate += stepTerms[t + 1];
    points.push({ t, rate, distortion: 127.5 * Math.sqrt(stepSquaredError[t]) });
  }
  points.push({ t: 0, rate: rate + stepTerms[1], distortion: 0 });
  return points;
}

/** The three panels of the paper's Figure 5 as SVG documents. */
export interface RateDistortionPlots {
  /** Distortion (RMSE, 0-255) against rate (bits/dim). */
  distortionVsRate: string;
  /** Rate (bits/dim) against the reverse-process steps T - t. */
  rateVsTime: string;
  /** Distortion against the reverse-process steps T - t. */
  distortionVsTime: string;
}

/**
 * Draws the curve as the three panels of Figure 5 (the lossless point t = 0 included).
 *
 * @param points A curve from {@linkcode rateDistortionCurve}.
 * @returns Three standalone SVG documents.
 * @throws {RangeError} For an empty curve.
 * @example
 * ```ts
 * import { rateDistortionPlots } from "./rate_distortion.ts";
 * const plots = rateDistortionPlots([
 *   { t: 2, rate: 0, distortion: 80 },
 *   { t: 1, rate: 1.5, distortion: 2 },
 *   { t: 0, rate: 3.5, distortion: 0 },
 * ]);
 * ```
 */
export function rateDistortionPlots(points: readonly RateDistortionPoint[]): RateDistortionPlots {
  if (points.length === 0) throw new RangeError("the rate-distortion curve has no points");
  const T = points[0].t;
  const time = points.map((p) => T - p.t);
  const rate = points.map((p) => p.rate), distortion = points.map((p) => p.distortion);
  return {
    distortionVsRate: linePlotSvg({ x: rate, y: distortion }, {
      title: "Rate-distortion",
      xLabel: "Rate (bits/dim)",
      yLabel: "Distortion (RMSE, 0-255)",
    }),
    rateVsTime: linePlotSvg({ x: time, y: rate }, {
      title: "Rate over the reverse process",
      xLabel: "Reverse process steps (T - t)",
      yLabel: "Rate (bits/dim)",
    }),
    distortionVsTime: linePlotSvg({ x: time, y: distortion }, {
      title: "Distortion over the reverse process",
      xLabel: "Reverse process steps (T - t)",
      yLabel: "Distortion (RMSE, 0-255)",
    }),
  };
}
