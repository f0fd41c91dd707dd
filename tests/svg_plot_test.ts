import assert from "node:assert/strict";
import { linePlotSvg, stackPlotsSvg } from "../data/svg_plot.ts";
import { scatterSvg } from "../data/svg_scatter.ts";

function paths(svg: string): string[] {
  return [...svg.matchAll(/<path d="([^"]*)"/g)].map((m) => m[1]);
}

function points(d: string): number[][] {
  return [...d.matchAll(/[ML]([-\d.]+),([-\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

Deno.test("linePlotSvg maps the data range onto the plot frame", () => {
  // Default 640x400 with margins left 64, right 16, top 32, bottom 48: frame x 64..624, y 32..352.
  const svg = linePlotSvg({ x: [0, 5, 10], y: [2, 3, 4] });
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  const [d] = paths(svg);
  assert.deepEqual(points(d), [[64, 352], [344, 192], [624, 32]]);
});

Deno.test("linePlotSvg uses a log10 y axis with power-of-ten ticks", () => {
  const svg = linePlotSvg({ x: [0, 1, 2], y: [100, 10, 1] }, { logY: true });
  assert.deepEqual(points(paths(svg)[0]), [[64, 32], [344, 192], [624, 352]]);
  for (const tick of [">1<", ">10<", ">100<"]) assert.ok(svg.includes(tick), tick);
});

Deno.test("linePlotSvg breaks the line at non-finite points and draws one path per series", () => {
  const svg = linePlotSvg([
    { x: [0, 1, 2, 3], y: [1, NaN, 2, 3], label: "train" },
    { x: [0, 3], y: [0, 1], label: "ema <b>" },
  ]);
  const ds = paths(svg);
  assert.equal(ds.length, 2);
  assert.equal((ds[0].match(/M/g) ?? []).length, 2, "a NaN starts a new segment");
  assert.ok(svg.includes(">train<"));
  assert.ok(svg.includes("ema &lt;b&gt;"), "labels are XML-escaped");
});

Deno.test("linePlotSvg writes title and axis labels, escaped", () => {
  const svg = linePlotSvg({ x: [1, 2], y: [1, 2] }, {
    title: "FID & NFE",
    xLabel: "NFE",
    yLabel: "FID",
  });
  assert.ok(svg.includes(">FID &amp; NFE<"));
  assert.ok(svg.includes(">NFE<") && svg.includes(">FID<"));
});

Deno.test("linePlotSvg rejects mismatched arrays, empty data and tiny sizes", () => {
  assert.throws(() => linePlotSvg({ x: [1, 2], y: [1] }), /2 x values but 1 y values/);
  assert.throws(() => linePlotSvg({ x: [1], y: [NaN] }), /no finite point/);
  assert.throws(() => linePlotSvg({ x: [1], y: [0] }, { logY: true }), /no finite, positive point/);
  assert.throws(() => linePlotSvg({ x: [1], y: [1] }, { width: 10 }), /at least 160 x 120/);
});

Deno.test("linePlotSvg marks where each series ends with its value, on a log axis too", () => {
  const svg = linePlotSvg({ x: [0, 1, 2], y: [0.5, 0.2, 0.14] }, { logY: true });
  assert.match(svg, /<text class="last"[^>]*>0\.14</);
  // A range inside one decade still gets at least three ticks (0.2, 0.3, 0.4, 0.5 here).
  const ticks = [...svg.matchAll(/text-anchor="end" dominant-baseline="middle">([^<]+)</g)]
    .map((m) => Number(m[1]));
  assert.ok(ticks.length >= 3, `${ticks}`);
  assert.ok(ticks.every((t) => t >= 0.14 && t <= 0.5), `${ticks}`);
});

Deno.test("linePlotSvg gives a short x range at least four ticks", () => {
  const svg = linePlotSvg({ x: [0, 0.008], y: [1, 2] });
  const xTicks = [...svg.matchAll(/text-anchor="middle">([^<]+)</g)].map((m) => m[1]);
  assert.ok(xTicks.length >= 4, `${xTicks}`);
});

Deno.test("stackPlotsSvg stacks panels top to bottom in one document", () => {
  const a = linePlotSvg({ x: [0, 1], y: [1, 2] }, { height: 200 });
  const b = linePlotSvg({ x: [0, 1], y: [3, 4] }, { height: 150 });
  const svg = stackPlotsSvg([a, b]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="640" height="350"/);
  assert.match(svg, /<svg x="0" y="200" /);
  assert.throws(() => stackPlotsSvg([]), /at least one plot/);
});

Deno.test("scatterSvg draws ticked axes with labels inside the picture", () => {
  const svg = scatterSvg([new Float32Array([-2, -1, 2, 1])]);
  for (const t of [">-2<", ">0<", ">2<"]) assert.ok(svg.includes(t), t);
  const height = Number(svg.match(/height="([\d.]+)"/)![1]);
  const ys = [...svg.matchAll(/<text x="[\d.]+" y="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.ok(ys.every((y) => y < height), "tick labels stay inside");
});
