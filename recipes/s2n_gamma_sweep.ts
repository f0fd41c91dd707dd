/**
 * S2N experiment (a): deterministic sampling (rho = 0) at a fixed budget of network evaluations,
 * sweeping gamma of the generalized backward step (S2N Corollary 1; gamma = 0 is DDIM). The paper
 * finds a small positive optimum near gamma = 0.026 on CIFAR-10. Writes a plot of FD against
 * gamma and a JSON table.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/s2n_gamma_sweep.ts \
 *   [checkpoint] [outDir] [n] [steps]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { linePlotSvg } from "../data/svg_plot.ts";
import { openSweep } from "./_s2n_sweep.ts";

const [
  checkpoint = "runs/edm-mnist/checkpoint.safetensors",
  outDir = "runs/s2n-gamma",
  n = "500",
  steps = "35",
] = Deno.args;
const GAMMAS = [-0.1, 0, 0.013, 0.026, 0.05, 0.1, 0.2];

const sweep = await openSweep({ checkpoint, n: Number(n), steps: Number(steps), schedule: "vp" });
const rows = [];
for (const gamma of GAMMAS) {
  const r = await sweep.score({ rho: 0, gamma, delta: 1 });
  rows.push({ gamma, fd: r.fd, is: r.is?.mean, kid: r.kid.mean });
  console.log(`gamma ${gamma.toFixed(3)}: FD ${r.fd.toFixed(3)}  IS ${r.is?.mean.toFixed(3)}`);
}
sweep.dispose();
const best = rows.reduce((a, b) => (b.fd < a.fd ? b : a));
const ddim = rows.find((r) => r.gamma === 0)!;
console.log(
  `best gamma ${best.gamma} (FD ${best.fd.toFixed(3)}) vs gamma 0 / DDIM (FD ${
    ddim.fd.toFixed(3)
  }), ` +
    `${n} samples, ${steps} NFE, VP schedule, MNIST classifier features`,
);
await Deno.mkdir(outDir, { recursive: true });
await Deno.writeTextFile(
  join(outDir, "gamma_sweep.json"),
  JSON.stringify({ checkpoint, n: Number(n), steps: Number(steps), rows, best }, null, 2),
);
await Deno.writeTextFile(
  join(outDir, "gamma_sweep.svg"),
  linePlotSvg({ x: rows.map((r) => r.gamma), y: rows.map((r) => r.fd) }, {
    title: `S2N deterministic (rho 0), ${steps} NFE: FD against gamma`,
    xLabel: "gamma",
    yLabel: "FD (MNIST classifier)",
  }),
);
console.log(`wrote ${join(outDir, "gamma_sweep.svg")} and gamma_sweep.json`);
