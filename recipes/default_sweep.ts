/**
 * How the default of `deno task train:edm` was chosen: candidate recipes (model, batch, learning
 * rate, EMA, augmentation) each trained by `train:edm` for the same wall-clock budget, then
 * 1000 samples (Heun, 18 steps) scored by `deno task eval` against the held-out `mnist:test`
 * digits with the shipped classifier (FD, classifier IS, precision, recall). The candidate with
 * the lowest FD that finished inside the budget on a 2-core machine became `EDM_PRESETS.mnist`.
 *
 * Each candidate runs as the user would run it (a `deno task` subprocess), so start-up, data
 * loading, checkpoints and sample grids count against its budget. Finished candidates are not
 * rerun (their `eval/eval.json` is reused): Ctrl-C and run again to continue. Run it on an
 * otherwise idle machine: the candidates compete for the same wall time.
 *
 * ```sh
 * deno run -A recipes/default_sweep.ts                          # all candidates, ~11 min each
 * deno run -A recipes/default_sweep.ts --only small-b128 --minutes 3 --samples 200
 * ```
 * Writes `<out>/<candidate>/` (the run and its `eval/`) and `<out>/sweep.json`, `<out>/sweep.md`.
 *
 * @module
 */
import { join } from "node:path";
import { UserError } from "../core/errors.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { fileExists } from "../training/_loop_utils.ts";
import { runTask } from "../tasks/_main.ts";

/** One recipe to try: `train:edm` flags on top of the `mnist` preset. */
export interface Candidate {
  /** Folder name and table label. */
  name: string;
  /** Extra `train:edm` flags. */
  flags: string[];
}

// mnist-small at a batch size and learning rate, run to the time guard at a constant rate (as
// measured; the preset's decay would begin only near its --kimg), plus other train:edm flags.
const small = (batch: number, lr: string, ...more: string[]): string[] => [
  ...["--model", "mnist-small", "--batch", String(batch), "--lr", lr, "--lr-decay", "0"],
  ...more,
];
// Class-conditional mnist-small at batch 128 for 120 kimg (about 8.5 minutes), the rate falling
// linearly to 0 over the last `decay` kimg, labels dropped with probability `drop`.
const decayed = (lr: string, drop: string, decay: string): string[] =>
  small(128, lr, "--cond", "--cond-drop", drop, "--kimg", "120", "--lr-decay", decay);

/** The candidates, measured on 2026-12-07 (README, "What the default run gives"). */
export const CANDIDATES: readonly Candidate[] = [
  { name: "small-b64", flags: small(64, "2e-3") },
  { name: "small-b128", flags: small(128, "2e-3") },
  { name: "small-b128-lr3-ema10", flags: small(128, "3e-3", "--ema", "10") },
  { name: "small-b128-cond", flags: small(128, "2e-3", "--cond", "--cond-drop", "0.1") },
  { name: "small-b128-cond-nodrop", flags: small(128, "2e-3", "--cond", "--cond-drop", "0") },
  { name: "small-b256-cond", flags: small(256, "2e-3", "--cond", "--cond-drop", "0.1") },
  { name: "small-b128-cond-decay60", flags: decayed("2e-3", "0.1", "60") },
  { name: "small-b128-cond-nodrop-decay60", flags: decayed("2e-3", "0", "60") },
  { name: "small-b128-cond-lr4-decay120", flags: decayed("4e-3", "0.1", "120") },
];

const FLAGS = {
  minutes: {
    type: "number",
    default: 9,
    gt: 0,
    help: "training budget of every candidate (train:edm --max-minutes)",
  },
  samples: { type: "int", default: 1000, min: 10, help: "samples scored per candidate" },
  only: { type: "string", help: "comma-separated candidate names to run [default: all]" },
  out: { type: "string", default: "runs/default-sweep", path: "file", help: "output folder" },
} as const;

const HELP = {
  task: "recipes/default_sweep.ts",
  summary: "Train each default-recipe candidate for the same wall time; FD against mnist:test.",
  examples: [
    "deno run -A recipes/default_sweep.ts",
    "deno run -A recipes/default_sweep.ts --only small-b128 --minutes 3 --samples 200",
  ],
};

/** One candidate's measured outcome. */
interface Row {
  name: string;
  flags: string;
  trainSeconds: number;
  kimg: number;
  fd: number;
  is: number;
  precision: number;
  recall: number;
}

async function deno(args: string[]): Promise<number> {
  const t0 = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new UserError(`default_sweep: deno ${args.join(" ")} exited with ${code}`);
  return (performance.now() - t0) / 1000;
}

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "default_sweep" });
  const chosen = f.only === undefined
    ? CANDIDATES
    : f.only.split(",").map((n) =>
      CANDIDATES.find((c) => c.name === n) ??
        (() => {
          throw new UserError(
            `default_sweep: unknown candidate "${n}"; use ${CANDIDATES.map((c) => c.name)}`,
          );
        })()
    );
  const rows: Row[] = [];
  for (const c of chosen) {
    const dir = join(f.out!, c.name);
    const evalJson = join(dir, "eval", "eval.json");
    const timing = join(dir, "sweep_timing.json");
    if (!await fileExists(evalJson)) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      console.log(`\n== ${c.name}: train:edm ${c.flags.join(" ")} (${f.minutes} min)`);
      const trainSeconds = await deno([
        "task",
        "train:edm",
        // Run to the time guard unless the candidate fixes its length (a decay needs one).
        "--kimg",
        "1000",
        ...c.flags,
        "--max-minutes",
        String(f.minutes),
        "--out",
        dir,
      ]);
      await writeFileAtomic(timing, JSON.stringify({ trainSeconds }));
      await deno([
        "task",
        "eval",
        "--checkpoint",
        join(dir, "checkpoint.safetensors"),
        "--data",
        "mnist:test",
        "--n",
        String(f.samples),
        "--out-dir",
        join(dir, "eval"),
      ]);
    }
    const report = JSON.parse(await Deno.readTextFile(evalJson)).rows[0].report;
    const state = JSON.parse(await Deno.readTextFile(join(dir, "checkpoint.json"))).state;
    rows.push({
      name: c.name,
      flags: c.flags.join(" "),
      trainSeconds: JSON.parse(await Deno.readTextFile(timing)).trainSeconds,
      kimg: state.imagesSeen / 1000,
      fd: report.fd,
      is: report.is?.mean ?? NaN,
      precision: report.precision,
      recall: report.recall,
    });
  }
  rows.sort((a, b) => a.fd - b.fd);
  const table = [
    `candidates trained ${f.minutes} min each; ${f.samples} samples (Heun, 18 steps) vs mnist:test`,
    "",
    "| candidate | flags | train s | kimg | FD | IS | precision | recall |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.name} | ${r.flags} | ${r.trainSeconds.toFixed(0)} | ${r.kimg.toFixed(1)} | ` +
      `${r.fd.toFixed(2)} | ${r.is.toFixed(2)} | ${r.precision.toFixed(3)} | ` +
      `${r.recall.toFixed(3)} |`
    ),
  ].join("\n");
  console.log(`\n${table}`);
  await writeFileAtomic(join(f.out!, "sweep.json"), JSON.stringify(rows, null, 2));
  await writeFileAtomic(join(f.out!, "sweep.md"), table + "\n");
});
