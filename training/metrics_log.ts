/**
 * Training metrics as JSON lines (one record per logging step, DESIGN.md "Checkpoints and
 * files"), and the loss curve drawn from them as SVG.
 *
 * @module
 */
import { linePlotSvg, stackPlotsSvg } from "../data/svg_plot.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";

/**
 * Appends one JSON record as a line to `path`.
 *
 * @example
 * ```ts ignore
 * await appendMetrics("runs/x/metrics.jsonl", { step: 20, loss: 0.31 });
 * ```
 */
export async function appendMetrics(path: string, record: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(record) + "\n", { append: true });
}

/**
 * Reads a JSON-lines metrics file; lines that do not parse (a crash mid-write) are skipped.
 *
 * @example
 * ```ts ignore
 * const records = await readMetrics("runs/x/metrics.jsonl");
 * ```
 */
export async function readMetrics(path: string): Promise<Record<string, number>[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return [];
  }
  const out: Record<string, number>[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a partial last line from an interrupted run
    }
  }
  return out;
}

/**
 * Draws loss (log scale), learning rate and training speed against kimg from a metrics file into
 * one SVG of stacked panels; does nothing when the file has no records.
 *
 * @example
 * ```ts ignore
 * await writeLossPlot("runs/x/metrics.jsonl", "runs/x/loss.svg");
 * ```
 */
export async function writeLossPlot(metricsPath: string, svgPath: string): Promise<void> {
  const records = (await readMetrics(metricsPath)).filter((r) => Number.isFinite(r.loss));
  if (records.length === 0) return;
  const x = records.map((r) => r.kimg);
  const panel = (y: number[], title: string, yLabel: string, logY = false) =>
    linePlotSvg({ x, y }, { title, xLabel: "kimg", yLabel, logY, height: 260 });
  const panels = [
    panel(records.map((r) => r.loss), "training loss", "loss (weighted, per pixel)", true),
  ];
  const lr = records.map((r) => Number(r.lr));
  if (lr.some(Number.isFinite)) panels.push(panel(lr, "learning rate", "lr"));
  const speed = records.map((r) => Number(r.imagesPerSecond));
  if (speed.some((v) => v > 0)) panels.push(panel(speed, "training speed", "images / s"));
  await writeFileAtomic(svgPath, stackPlotsSvg(panels));
}

/**
 * Drops records after `step` (written after the checkpoint a run resumes from), so a resumed
 * run's metrics read as one uninterrupted run.
 *
 * @example
 * ```ts ignore
 * await truncateMetrics("runs/x/metrics.jsonl", 1200);
 * ```
 */
export async function truncateMetrics(path: string, step: number): Promise<void> {
  const records = await readMetrics(path);
  const kept = records.filter((r) => !(r.step > step));
  if (kept.length === records.length) return;
  await writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
}
