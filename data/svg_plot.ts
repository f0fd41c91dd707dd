/**
 * A tiny line plot as an SVG string, for loss curves and FID-vs-NFE plots (DESIGN.md
 * "Checkpoints and files": plots as SVG). No dependencies: axes with "nice" ticks (1, 2, 5 x 10^k),
 * axis labels, a title, an optional log-scale y axis and a legend when series have labels.
 * Non-finite points (and non-positive ones on a log axis) are skipped and break the line.
 *
 * @module
 */

/** One line: matching x and y values, and an optional legend label. */
export interface PlotSeries {
  /** x values. */
  x: ArrayLike<number>;
  /** y values, same length as `x`. */
  y: ArrayLike<number>;
  /** Legend label; the legend is drawn when any series has one. */
  label?: string;
}

/** Options of {@linkcode linePlotSvg}. */
export interface LinePlotOptions {
  /** Width of the image in pixels. @default 640 */
  width?: number;
  /** Height of the image in pixels. @default 400 */
  height?: number;
  /** Title above the plot. @default "" */
  title?: string;
  /** Label under the x axis. @default "" */
  xLabel?: string;
  /** Label beside the y axis. @default "" */
  yLabel?: string;
  /** Logarithmic y axis (base 10), e.g. for losses. @default false */
  logY?: boolean;
  /** Line colours, cycled over the series. @default a 6-colour palette */
  colors?: string[];
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const MARGIN = { left: 64, right: 16, top: 32, bottom: 48 };

/**
 * Draws one or more series as a line plot and returns the SVG document.
 *
 * @param series One series or several, drawn in order.
 * @param options See {@linkcode LinePlotOptions}.
 * @returns A standalone SVG document (write it to a `.svg` file).
 * @throws {RangeError} When x and y lengths differ, no point is finite, or the size is too small.
 * @example A loss curve
 * ```ts
 * import { linePlotSvg } from "./svg_plot.ts";
 * const svg = linePlotSvg({ x: [0, 1, 2], y: [1, 0.5, 0.3], label: "loss" }, {
 *   xLabel: "step",
 *   yLabel: "loss",
 *   logY: true,
 * });
 * ```
 */
export function linePlotSvg(
  series: PlotSeries | PlotSeries[],
  options: LinePlotOptions = {},
): string {
  const {
    width = 640,
    height = 400,
    title = "",
    xLabel = "",
    yLabel = "",
    logY = false,
    colors = PALETTE,
  } = options;
  const list = Array.isArray(series) ? series : [series];
  if (!(width >= 160 && height >= 120)) {
    throw new RangeError(`plot size must be at least 160 x 120, got ${width} x ${height}`);
  }
  const fy = (v: number): number => (logY ? Math.log10(v) : v);
  const usable = (x: number, y: number): boolean =>
    Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  list.forEach((s, k) => {
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `series ${k} has ${s.x.length} x values but ${s.y.length} y values; pass matching arrays`,
      );
    }
    for (let i = 0; i < s.x.length; i++) {
      if (!usable(s.x[i], s.y[i])) continue;
      x0 = Math.min(x0, s.x[i]), x1 = Math.max(x1, s.x[i]);
      y0 = Math.min(y0, fy(s.y[i])), y1 = Math.max(y1, fy(s.y[i]));
    }
  });
  if (x0 > x1) {
    throw new RangeError(`no finite${logY ? ", positive" : ""} point to plot`);
  }
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const px = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const py = (v: number): number => MARGIN.top + (1 - (v - y0) / (y1 - y0)) * plotH;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" ` +
    `fill="none" stroke="#333"/>`,
  ];
  for (const t of niceTicks(x0, x1)) {
    const x = fmt(px(t));
    out.push(
      `<line x1="${x}" y1="${MARGIN.top + plotH}" x2="${x}" y2="${
        MARGIN.top + plotH + 4
      }" stroke="#333"/>`,
      `<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`,
    );
  }
  const yTicks = logY ? niceTicks(y0, y1).filter(Number.isInteger) : niceTicks(y0, y1);
  for (const t of yTicks.length >= 2 ? yTicks : niceTicks(y0, y1)) {
    const y = fmt(py(t));
    out.push(
      `<line x1="${MARGIN.left - 4}" y1="${y}" x2="${
        MARGIN.left + plotW
      }" y2="${y}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">` +
        `${label(logY ? 10 ** t : t)}</text>`,
    );
  }
  list.forEach((s, k) => {
    let d = "";
    let pen = "M";
    for (let i = 0; i < s.x.length; i++) {
      if (!usable(s.x[i], s.y[i])) {
        pen = "M";
        continue;
      }
      d += `${pen}${fmt(px(s.x[i]))},${fmt(py(fy(s.y[i])))}`;
      pen = "L";
    }
    const color = escapeXml(colors[k % colors.length]);
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  });
  const labelled = list.filter((s) => s.label);
  if (labelled.length > 0) {
    list.forEach((s, k) => {
      if (!s.label) return;
      const y = MARGIN.top + 14 + 16 * labelled.indexOf(s);
      const x = MARGIN.left + plotW - 120;
      out.push(
        `<line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${
          escapeXml(colors[k % colors.length])
        }" stroke-width="2"/>`,
        `<text x="${x + 24}" y="${y}" dominant-baseline="middle">${escapeXml(s.label)}</text>`,
      );
    });
  }
  if (title) {
    out.push(
      `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${
        escapeXml(title)
      }</text>`,
    );
  }
  if (xLabel) {
    out.push(
      `<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">${
        escapeXml(xLabel)
      }</text>`,
    );
  }
  if (yLabel) {
    const cy = MARGIN.top + plotH / 2;
    out.push(
      `<text x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})">${
        escapeXml(yLabel)
      }</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Ticks at multiples of 1, 2 or 5 x 10^k inside [lo, hi], about five of them. */
function niceTicks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  }
  return ticks;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (v === 0) return "0";
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

function fmt(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
