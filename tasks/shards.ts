/**
 * `deno task shards --n 4 -- <task> <flags...>`: runs a task as n shards on this machine, each
 * process with exactly the environment a scheduler gives a shard (core/shards.ts
 * `schedulerEnv`: a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`, or a Slurm array task's
 * `SLURM_ARRAY_*`), at most `--parallel` at a time, so the path the cluster examples take
 * (examples/k8s/, examples/slurm/) runs and is tested here. Each shard's output goes to a log
 * file; the driver prints a line as each shard starts and ends, and a summary.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { callerFolder } from "../core/paths.ts";
import { type Scheduler, schedulerEnv, SHARD_ENV_VARS, shardName } from "../core/shards.ts";
import { runTask } from "./_main.ts";
import { prepareOutputFolder } from "./_write_samples.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

const FLAGS = {
  n: { type: "int", min: 1, max: 1024, help: "number of shards (required)" },
  parallel: { type: "int", default: 2, min: 1, max: 64, help: "shards running at once" },
  scheduler: {
    type: "string",
    default: "k8s",
    choices: ["k8s", "slurm"],
    help: "whose environment each shard gets",
  },
  "slurm-min": { type: "int", default: 0, min: 0, help: "slurm: the array's first task id" },
  logs: {
    type: "string",
    default: "runs/shards",
    path: "file",
    help: "folder for the shards' logs (shard-<i>-of-<n>.log)",
  },
} as const;

const HELP = {
  task: "shards",
  usage: "deno task shards --n <n> [flags] -- <task> <task flags...>",
  summary:
    "Runs <task> as n shards here, each with the environment a Kubernetes Indexed Job or a\n" +
    "Slurm array gives it, --parallel at a time. Finished shards are skipped on a rerun.",
  examples: [
    "deno task shards --n 4 -- sample:edm --seeds 0-999 --images-dir out/images",
    "deno task shards --n 4 -- eval --n 1000 --out-dir runs/eval-sharded && deno task eval:merge runs/eval-sharded",
    "deno task shards --n 4 --scheduler slurm --slurm-min 1 -- sample:ddpm --images-dir out/ddpm",
  ],
};

/** What one shard did. */
interface ShardRun {
  index: number;
  code: number;
  seconds: number;
  log: string;
}

await runTask(async (args) => {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  if (wantsHelp(own)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(own, FLAGS, { task: "shards" });
  const [task, ...taskArgs] = split < 0 ? [] : args.slice(split + 1);
  if (f.n === undefined) throw new UserError("shards: --n <shards> is required, e.g. --n 4");
  if (!task) {
    throw new UserError(
      "shards: name the task after --, e.g. shards --n 4 -- sample:edm --seeds 0-99",
    );
  }
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks ?? {};
  if (!(task in tasks) || task === "shards") {
    throw new UserError(`shards: "${task}" is not a task to shard; see deno task`);
  }
  if (taskArgs.some((a) => a === "--shard" || a.startsWith("--shard="))) {
    throw new UserError(
      "shards: drop --shard from the task's flags: each shard's index comes from its environment",
    );
  }
  await prepareOutputFolder(f.logs!, { flag: "--logs", task: "shards" });
  const n = f.n, parallel = Math.min(f.parallel!, n);
  const base = Deno.env.toObject();
  for (const v of SHARD_ENV_VARS) delete base[v];
  base.INIT_CWD = callerFolder();
  console.log(
    `shards: ${task} as ${n} shards, ${parallel} at a time, ${f.scheduler} environment; logs in ${f.logs}`,
  );
  const start = performance.now();
  const runs: ShardRun[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const index = next++;
      const shard = { index, count: n };
      const log = join(f.logs!, `${shardName(shard)}.log`);
      const env = {
        ...base,
        ...schedulerEnv(shard, f.scheduler as Scheduler, {
          slurmMin: f["slurm-min"],
          jobId: String(Deno.pid),
        }),
      };
      console.log(`[shard ${index}/${n}] started`);
      const t0 = performance.now();
      const code = await runLogged(task, taskArgs, env, log);
      const seconds = (performance.now() - t0) / 1000;
      runs.push({ index, code, seconds, log });
      const failed = runs.filter((r) => r.code !== 0).length;
      console.log(
        `[shard ${index}/${n}] ${code === 0 ? "done" : `failed (exit ${code})`} in ` +
          `${seconds.toFixed(1)} s; ${runs.length}/${n} finished${
            failed ? `, ${failed} failed` : ""
          }`,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  const wall = (performance.now() - start) / 1000;
  runs.sort((a, b) => a.index - b.index);
  const total = runs.reduce((s, r) => s + r.seconds, 0);
  console.log(
    `shards: ${runs.filter((r) => r.code === 0).length}/${n} succeeded in ${wall.toFixed(1)} s ` +
      `wall (${total.toFixed(1)} s summed over shards)`,
  );
  const failed = runs.filter((r) => r.code !== 0);
  if (failed.length === 0) return;
  for (const r of failed) {
    console.error(
      `  shard ${r.index}/${n}: exit ${r.code}: ${await lastError(r.log)} (log ${r.log})`,
    );
  }
  console.error(
    `${failed.length} of ${n} shards failed; fix the cause and rerun the same command ` +
      `(finished shards are skipped)`,
  );
  Deno.exit(failed.every((r) => r.code === 2) ? 2 : 1);
});

// Runs `deno task <task> <args>` with `env`, its stdout and stderr into `log`; returns the code.
async function runLogged(
  task: string,
  args: string[],
  env: Record<string, string>,
  log: string,
): Promise<number> {
  using file = await Deno.open(log, { write: true, create: true, truncate: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", join(ROOT, "deno.json"), task, ...args],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let writing = Promise.resolve();
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      writing = writing.then(async () => {
        let done = 0;
        while (done < chunk.length) done += await file.write(chunk.subarray(done));
      });
    }
  };
  await Promise.all([copy(child.stdout), copy(child.stderr)]);
  const { code } = await child.status;
  await writing;
  return code;
}

async function lastError(log: string): Promise<string> {
  const lines = (await Deno.readTextFile(log)).trim().split("\n");
  return lines.findLast((l) => l.startsWith("error:")) ?? lines.at(-1) ?? "(no output)";
}
