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
  /** Mark each series' last point with a dot and its value (where a loss ended). @default true */
  markLast?: boolean;
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
    markLast = true,
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
  const yTicks = logY ? logTicks(y0, y1) : niceTicks(y0, y1);
  for (const t of yTicks) {
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
    let last = -1;
    for (let i = 0; i < s.x.length; i++) if (usable(s.x[i], s.y[i])) last = i;
    if (markLast && last >= 0) {
      const [cx, cy] = [px(s.x[last]), py(fy(s.y[last]))];
      const left = cx > MARGIN.left + plotW / 2;
      out.push(
        `<circle cx="${fmt(cx)}" cy="${fmt(cy)}" r="3" fill="${color}"/>`,
        `<text class="last" x="${fmt(cx + (left ? -6 : 6))}" y="${fmt(cy - 8)}" ` +
          `text-anchor="${left ? "end" : "start"}" fill="${color}">${label(s.y[last])}</text>`,
      );
    }
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

/**
 * Stacks plots (SVG documents from {@linkcode linePlotSvg}) into one SVG, top to bottom, e.g.
 * loss, learning rate and speed of a training run sharing its x axis.
 *
 * @param plots SVG documents with `width` and `height` attributes.
 * @returns One SVG document as wide as the widest plot.
 * @throws {RangeError} When `plots` is empty or a plot has no size.
 * @example
 * ```ts
 * import { linePlotSvg, stackPlotsSvg } from "./svg_plot.ts";
 * const a = linePlotSvg({ x: [0, 1], y: [1, 2] }, { height: 200 });
 * const svg = stackPlotsSvg([a, a]); // 640 x 400
 * ```
 */
export function stackPlotsSvg(plots: string[]): string {
  if (plots.length === 0) throw new RangeError("stackPlotsSvg needs at least one plot");
  let y = 0, width = 0;
  const parts = plots.map((svg, k) => {
    const w = Number(svg.match(/width="([\d.]+)"/)?.[1]);
    const h = Number(svg.match(/height="([\d.]+)"/)?.[1]);
    if (!(w > 0 && h > 0)) throw new RangeError(`plot ${k} has no width and height attributes`);
    const part = svg.replace(/^<svg /, `<svg x="0" y="${y}" `);
    y += h, width = Math.max(width, w);
    return part;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" ` +
    `viewBox="0 0 ${width} ${y}">`,
    ...parts,
    "</svg>",
  ].join("\n") + "\n";
}

// Log-axis ticks (exponents) at 1, 2, 5 x 10^k, or at every integer multiple when the range is
// narrower than that gives three ticks, or linear-space nice ticks of a very narrow range.
function logTicks(lo: number, hi: number): number[] {
  for (const ms of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: number[] = [];
    for (let k = Math.floor(lo) - 1; k <= Math.ceil(hi); k++) {
      for (const m of ms) {
        const t = Math.log10(m) + k;
        if (t >= lo - 1e-9 && t <= hi + 1e-9) ticks.push(t);
      }
    }
    if (ticks.length >= 3) return ticks;
  }
  return niceTicks(10 ** lo, 10 ** hi).filter((v) => v > 0).map(Math.log10);
}

/** Ticks at multiples of 1, 2 or 5 x 10^k inside [lo, hi], four to ten of them. */
function niceTicks(lo: number, hi: number): number[] {
  const ticks = niceTicksEvery(lo, hi, (hi - lo) / 5);
  return ticks.length >= 4 ? ticks : niceTicksEvery(lo, hi, (hi - lo) / 10);
}

function niceTicksEvery(lo: number, hi: number, raw: number): number[] {
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
