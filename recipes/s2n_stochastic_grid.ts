/**
 * S2N experiment (b): stochastic sampling (rho = 1) over a grid of gamma and delta of the
 * generalized backward step (S2N Corollary 1; gamma = delta = 1 is the ancestral posterior step
 * of eq. 8). The paper's best is gamma = 1.25, delta = 0.95. Writes a plot of FD against gamma
 * (one line per delta) and a JSON table.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/s2n_stochastic_grid.ts \
 *   [--checkpoint <file>] [--out-dir <folder>] [--n 500] [--steps 35]; --help lists the flags
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { linePlotSvg } from "../data/svg_plot.ts";
import { openSweep, sweepFlags } from "./_s2n_sweep.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { runTask } from "../tasks/_main.ts";

const FLAGS = sweepFlags("runs/s2n-stochastic");

const HELP = {
  task: "recipes/s2n_stochastic_grid.ts",
  usage:
    "deno run --allow-read --allow-write --allow-env --allow-ffi recipes/s2n_stochastic_grid.ts [flags]",
  summary: "S2N experiment (b): stochastic sampling (rho 1) over a grid of gamma and delta, FD\n" +
    "against gamma per delta; MNIST-classifier features against all of MNIST.",
  examples: [
    "deno run -A recipes/s2n_stochastic_grid.ts                       # the default checkpoint, 500 samples",
    "deno run -A recipes/s2n_stochastic_grid.ts --n 100 --steps 10 --out-dir runs/quick",
  ],
};
const GAMMAS = [0.75, 1, 1.25, 1.5];
const DELTAS = [0.9, 0.95, 1];

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "s2n_stochastic_grid" });
  const { checkpoint, n, steps } = { checkpoint: f.checkpoint!, n: f.n!, steps: f.steps! };
  const outDir = f["out-dir"]!;
  const sweep = await openSweep({ checkpoint, n, steps, schedule: "vp", backend: f.backend });
  const rows: { gamma: number; delta: number; fd: number; is?: number; kid: number }[] = [];
  for (const delta of DELTAS) {
    for (const gamma of GAMMAS) {
      const r = await sweep.score({ rho: 1, gamma, delta });
      rows.push({ gamma, delta, fd: r.fd, is: r.is?.mean, kid: r.kid.mean });
      console.log(
        `gamma ${gamma} delta ${delta}: FD ${r.fd.toFixed(3)}  IS ${r.is?.mean.toFixed(3)}`,
      );
    }
  }
  sweep.dispose();
  const best = rows.reduce((a, b) => (b.fd < a.fd ? b : a));
  console.log(`best (gamma ${best.gamma}, delta ${best.delta}): FD ${best.fd.toFixed(3)}`);
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(
    join(outDir, "stochastic_grid.json"),
    JSON.stringify({ checkpoint, n: n, steps: steps, rows, best }, null, 2),
  );
  await Deno.writeTextFile(
    join(outDir, "stochastic_grid.svg"),
    linePlotSvg(
      DELTAS.map((delta) => {
        const line = rows.filter((r) => r.delta === delta);
        return { x: line.map((r) => r.gamma), y: line.map((r) => r.fd), label: `delta ${delta}` };
      }),
      {
        title: `S2N stochastic (rho 1), ${steps} NFE: FD against gamma`,
        xLabel: "gamma",
        yLabel: "FD (MNIST classifier)",
      },
    ),
  );
  console.log(`wrote ${join(outDir, "stochastic_grid.svg")} and stochastic_grid.json`);
});
