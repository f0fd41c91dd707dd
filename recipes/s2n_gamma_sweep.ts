/**
 * S2N experiment (a): deterministic sampling (rho = 0) at a fixed budget of network evaluations,
 * sweeping gamma of the generalized backward step (S2N Corollary 1; gamma = 0 is DDIM). The paper
 * finds a small positive optimum near gamma = 0.026 on CIFAR-10. Writes a plot of FD against
 * gamma and a JSON table.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/s2n_gamma_sweep.ts \
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

const FLAGS = sweepFlags("runs/s2n-gamma");

const HELP = {
  task: "recipes/s2n_gamma_sweep.ts",
  usage:
    "deno run --allow-read --allow-write --allow-env --allow-ffi recipes/s2n_gamma_sweep.ts [flags]",
  summary:
    "S2N experiment (a): deterministic sampling (rho 0) at a fixed budget, FD against gamma\n" +
    "(gamma 0 is DDIM); MNIST-classifier features against all of MNIST.",
  examples: [
    "deno run -A recipes/s2n_gamma_sweep.ts                       # the default checkpoint, 500 samples",
    "deno run -A recipes/s2n_gamma_sweep.ts --n 100 --steps 10 --out-dir runs/quick",
  ],
};
const GAMMAS = [-0.1, 0, 0.013, 0.026, 0.05, 0.1, 0.2];

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "s2n_gamma_sweep" });
  const { checkpoint, n, steps } = { checkpoint: f.checkpoint!, n: f.n!, steps: f.steps! };
  const outDir = f["out-dir"]!;
  const sweep = await openSweep({ checkpoint, n, steps, schedule: "vp", backend: f.backend });
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
    JSON.stringify({ checkpoint, n: n, steps: steps, rows, best }, null, 2),
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
});
