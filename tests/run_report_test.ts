/**
 * The per-run HTML report: what it links, and (where Debian's `chromium` is installed) that a
 * headless browser opens it with every image loaded.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { writePng } from "../data/png.ts";
import { writeLossPlot } from "../training/metrics_log.ts";
import { writeRunReport } from "../training/run_report.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** A run folder as training leaves it: metrics, curves, two grids, the sidecar and an eval. */
async function makeRun(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const lines = [1, 2, 3].map((step) =>
    JSON.stringify({
      step,
      kimg: step * 0.064,
      loss: 1 / step,
      lr: 1e-4 * step,
      imagesPerSecond: 50,
    })
  );
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
  await writeLossPlot(join(dir, "metrics.jsonl"), join(dir, "loss.svg"));
  const image = { data: new Float32Array(16).fill(0.5), shape: [4, 4, 1] };
  await writePng(join(dir, "samples-000010.png"), image);
  await writePng(join(dir, "samples.png"), image);
  await Deno.writeTextFile(
    join(dir, "checkpoint.json"),
    JSON.stringify({ state: { config: { lr: 1e-4, data: "mnist <train>" } } }),
  );
  await Deno.mkdir(join(dir, "eval"));
  await Deno.writeTextFile(join(dir, "eval", "summary.json"), JSON.stringify({ bitsPerDim: 2.1 }));
  return dir;
}

Deno.test("writeRunReport() links the curves and the grids in kimg order, with config and eval", async () => {
  const dir = await makeRun();
  const html = await Deno.readTextFile(await writeRunReport(dir));
  const images = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(images, ["loss.svg", "samples-000010.png", "samples.png"]);
  assert.match(html, /10 kimg/);
  assert.match(html, /&quot;bitsPerDim&quot;: 2\.1/);
  assert.match(html, /mnist &lt;train&gt;/, "values are HTML-escaped");
  assert.match(html, /<th>loss<\/th>[\s\S]*<td>0\.3333<\/td>/, "the last metric record");
  await Deno.remove(dir, { recursive: true });
});

const CHROMIUM = ["chromium", "chromium-browser"].find((name) => {
  try {
    return new Deno.Command(name, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
});

Deno.test({
  name: "the report opens in headless Chromium with every image loaded",
  ignore: CHROMIUM === undefined,
  async fn() {
    const dir = await makeRun();
    const path = await writeRunReport(dir);
    const out = await new Deno.Command(CHROMIUM!, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        `--user-data-dir=${join(dir, "profile")}`,
        "--virtual-time-budget=5000",
        "--dump-dom",
        `file://${path}`,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const dom = new TextDecoder().decode(out.stdout);
    assert.match(dom, /data-images="3"/, dom.slice(0, 400));
    assert.match(dom, /data-broken="0"/);
    await Deno.remove(dir, { recursive: true });
  },
});
