/**
 * A per-run HTML report, `report.html` in the run folder, that opens in any browser: the loss,
 * learning-rate and speed panels (`loss.svg`), the sample grids over training (`samples-*.png` in
 * kimg order, then `samples.png`), the last metric record, the run's configuration (from
 * `checkpoint.json`) and any evaluation results kept in the folder (`eval.json`, `eval/*.json`).
 * Files are linked by relative paths, so the folder can be moved or copied as a whole. Training
 * rewrites the report at every checkpoint and at the end.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { readMetrics } from "./metrics_log.ts";

/**
 * Writes `<runDir>/report.html` from the files in the run folder and returns its path.
 *
 * @param runDir A run folder written by a training task.
 * @returns The report's path.
 * @example
 * ```ts
 * import { writeRunReport } from "./run_report.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":1,"kimg":0.064,"loss":0.5}\n');
 * const path = await writeRunReport(dir); // dir/report.html
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeRunReport(runDir: string): Promise<string> {
  const names = await listFiles(runDir);
  const grids = names.filter((n) => /^samples-\d+\.png$/.test(n)).sort();
  if (names.includes("samples.png")) grids.push("samples.png");
  const metrics = await readMetrics(join(runDir, "metrics.jsonl"));
  const last = metrics.at(-1);
  const config = await readJson(join(runDir, "checkpoint.json"));
  const evals: [string, unknown][] = [];
  if (names.includes("eval.json")) {
    evals.push(["eval.json", await readJson(join(runDir, "eval.json"))]);
  }
  for (
    const n of (await listFiles(join(runDir, "eval"))).filter((n) => n.endsWith(".json")).sort()
  ) {
    evals.push([`eval/${n}`, await readJson(join(runDir, "eval", n))]);
  }
  const state = (config ?? {}) as { state?: Record<string, unknown> };
  const runState = state.state ?? config as Record<string, unknown> | null;
  const html = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>diffuse run: ${escapeHtml(runDir)}</title>`,
    "<style>body{font-family:sans-serif;margin:2em;max-width:70em}img{max-width:100%;" +
    "image-rendering:pixelated}figure{display:inline-block;margin:0 1em 1em 0}" +
    "td,th{padding:2px 8px;text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
    "</head><body>",
    `<h1>Run ${escapeHtml(runDir)}</h1>`,
    last
      ? `<table id="last"><tr>${
        Object.keys(last).map((k) => `<th>${escapeHtml(k)}</th>`).join("")
      }</tr><tr>${
        Object.values(last).map((v) => `<td>${escapeHtml(formatValue(v))}</td>`).join("")
      }</tr></table>`
      : "<p>No metrics yet.</p>",
    names.includes("loss.svg")
      ? '<h2>Loss, learning rate, speed</h2><img src="loss.svg" alt="training curves">'
      : "",
    grids.length > 0 ? "<h2>Samples over training</h2>" : "",
    ...grids.map((g) =>
      `<figure><img src="${escapeHtml(g)}" alt="${escapeHtml(g)}"><figcaption>${
        escapeHtml(gridCaption(g))
      }</figcaption></figure>`
    ),
    ...evals.map(([n, v]) =>
      `<h2>Evaluation: ${escapeHtml(n)}</h2><pre>${escapeHtml(JSON.stringify(v, null, 2))}</pre>`
    ),
    runState && typeof runState === "object" && "config" in runState
      ? `<h2>Configuration</h2><pre>${
        escapeHtml(JSON.stringify((runState as { config: unknown }).config, null, 2))
      }</pre>`
      : "",
    // Marks the page once every image has loaded (or failed), for a headless browser to read.
    "<script>addEventListener('load',()=>{const i=[...document.images];" +
    "document.body.dataset.images=i.length;" +
    "document.body.dataset.broken=i.filter(x=>!x.complete||x.naturalWidth===0).length;});</script>",
    "</body></html>",
    "",
  ].join("\n");
  const path = join(runDir, "report.html");
  await writeFileAtomic(path, html);
  return path;
}

function gridCaption(name: string): string {
  const m = name.match(/^samples-(\d+)\.png$/);
  return m ? `${Number(m[1])} kimg` : "end of training";
}

function formatValue(v: unknown): string {
  return typeof v === "number" && !Number.isInteger(v)
    ? String(Number(v.toPrecision(4)))
    : String(v);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile) out.push(e.name);
  } catch {
    // no such folder: nothing to list
  }
  return out;
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
