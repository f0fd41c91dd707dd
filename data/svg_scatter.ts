/**
 * A scatter plot of 2-D points as SVG, for toy data and its samples (people would rather look
 * than read), on a square of equal x and y scales with ticked axes.
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
  // The square plot area, with room for tick labels left of and below it.
  const [left, bottom] = [40, 20];
  const side = size - left - 4;
  const px = (v: number) => left + ((v + extent) / (2 * extent)) * side;
  const py = (v: number) => top + ((extent - v) / (2 * extent)) * side;
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
  const h = top + side + bottom;
  const axes: string[] = [];
  for (const t of axisTicks(extent)) {
    const [x, y] = [px(t).toFixed(1), py(t).toFixed(1)];
    const text = String(Number(t.toPrecision(3)));
    axes.push(
      `<line x1="${x}" y1="${top + side}" x2="${x}" y2="${top + side + 4}" stroke="#999"/>`,
      `<text x="${x}" y="${top + side + 15}" text-anchor="middle">${text}</text>`,
      `<line x1="${left - 4}" y1="${y}" x2="${left}" y2="${y}" stroke="#999"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${text}</text>`,
    );
  }
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
    `<rect x="${left}" y="${top}" width="${side}" height="${side}" fill="none" stroke="#999"/>`,
    `<g font-family="sans-serif" font-size="10" fill="#333">${axes.join("")}</g>`,
    ...dots,
    `</svg>`,
  ].join("\n");
}

// Ticks at multiples of 1, 2 or 5 x 10^k within [-extent, extent], about five.
function axisTicks(extent: number): number[] {
  const raw = (2 * extent) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(-extent / step) * step; t <= extent + 1e-9 * step; t += step) {
    out.push(Math.abs(t) < 1e-9 * step ? 0 : t);
  }
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
