/**
 * A scatter plot of 2-D points as SVG, for toy data and its samples (people would rather look
 * than read).
 *
 * @module
 */

/** Options of {@linkcode scatterSvg}. */
export interface ScatterOptions {
  /** Image size in pixels. @default 480 */
  size?: number;
  /** Half-width of the square shown, in data units; computed from the points when omitted. */
  extent?: number;
  /** Title above the plot. @default "" */
  title?: string;
  /** Point colors per series. @default ["#1f77b4", "#d62728"] */
  colors?: string[];
}

/**
 * Draws one or more sets of 2-D points (row-major [N, 2]) as an SVG string.
 *
 * @example
 * ```ts
 * import { scatterSvg } from "./svg_scatter.ts";
 * const svg = scatterSvg([new Float32Array([0, 0, 1, 1])], { title: "two points" });
 * ```
 */
export function scatterSvg(series: Float32Array[], options: ScatterOptions = {}): string {
  const { size = 480, title = "", colors = ["#1f77b4", "#d62728"] } = options;
  let extent = options.extent ?? 0;
  if (!options.extent) {
    for (const pts of series) {
      for (const v of pts) if (Number.isFinite(v)) extent = Math.max(extent, Math.abs(v));
    }
    extent = extent > 0 ? extent * 1.05 : 1;
  }
  const top = title ? 24 : 4;
  const px = (v: number) => ((v + extent) / (2 * extent)) * (size - 8) + 4;
  const py = (v: number) => top + ((extent - v) / (2 * extent)) * (size - 8);
  const dots = series.map((pts, s) => {
    const circles: string[] = [];
    for (let i = 0; i + 1 < pts.length; i += 2) {
      if (!Number.isFinite(pts[i]) || !Number.isFinite(pts[i + 1])) continue;
      circles.push(
        `<circle cx="${px(pts[i]).toFixed(1)}" cy="${py(pts[i + 1]).toFixed(1)}" r="1.5"/>`,
      );
    }
    return `<g fill="${colors[s % colors.length]}" fill-opacity="0.6">${circles.join("")}</g>`;
  });
  const h = size + top - 4;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${h}" viewBox="0 0 ${size} ${h}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    title
      ? `<text x="${
        size / 2
      }" y="16" text-anchor="middle" font-family="sans-serif" font-size="13">${
        escapeXml(title)
      }</text>`
      : "",
    `<rect x="4" y="${top}" width="${size - 8}" height="${size - 8}" fill="none" stroke="#999"/>`,
    ...dots,
    `</svg>`,
  ].join("\n");
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
