/**
 * The table of issue 15's hostile and wrong inputs, run as a user runs them: each case is one task
 * subprocess under `/usr/bin/time -v`; prints a Markdown table of the exit code, the peak memory
 * (max RSS) and the one-line message. Needs Linux and /usr/bin/time; takes a few minutes.
 *
 *   deno run -A bench/reliability_cases.ts
 */
import { join } from "node:path";
import { encodePng } from "../data/png.ts";
import { damagedCheckpoints } from "../tests/_damaged_checkpoints.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const tmp = await Deno.makeTempDir();
const env = { NO_COLOR: "1", DIFFUSE_BACKEND: "cpu" };
// The permissions `deno task` gives the tasks (deno.json).
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

async function run(task: string, args: string[], options: { sigintAfterMs?: number } = {}) {
  const cmd = new Deno.Command("/usr/bin/time", {
    args: ["-v", Deno.execPath(), "run", ...PERMS, join(ROOT, "tasks", `${task}.ts`), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  });
  if (!options.sigintAfterMs) return parse(await cmd.output());
  const child = cmd.spawn();
  await new Promise((r) => setTimeout(r, options.sigintAfterMs));
  // SIGINT to the deno process (the child of /usr/bin/time).
  const pids = new TextDecoder().decode(
    (await new Deno.Command("pgrep", { args: ["-P", String(child.pid)], stdout: "piped" }).output())
      .stdout,
  ).trim();
  await new Deno.Command("kill", { args: ["-INT", pids] }).output();
  return parse(await child.output());
}

function parse(out: Deno.CommandOutput) {
  const err = new TextDecoder().decode(out.stderr);
  const rss = Number(err.match(/Maximum resident set size \(kbytes\): (\d+)/)?.[1] ?? NaN) / 1024;
  const code = Number(err.match(/Exit status: (\d+)/)?.[1] ?? out.code);
  const line = err.split("\n").find((l) => l.startsWith("error:")) ??
    err.split("\n").find((l) => l.startsWith("interrupted: continue")) ?? "(no error)";
  return { code, rss, line };
}

const rows: string[] = [];
function report(name: string, r: { code: number; rss: number; line: string }) {
  const line = r.line.replaceAll(tmp, "$TMP").replaceAll("|", "\\|");
  rows.push(`| ${name} | ${r.code} | ${r.rss.toFixed(0)} | ${line} |`);
  console.error(rows[rows.length - 1]);
}

// Two real checkpoints: EDM and DDPM, tiny toy runs.
const edmRun = join(tmp, "edm"), ddpmRun = join(tmp, "ddpm");
const toy = ["--preset", "toy", "--channels", "16", "--batch", "16", "--kimg", "0.032"];
await run("train_edm", [...toy, "--out", edmRun]);
await run("train_ddpm", [...toy, "--out", ddpmRun]);
const edm = join(edmRun, "checkpoint.safetensors"), ddpm = join(ddpmRun, "checkpoint.safetensors");
const s = join(tmp, "s.png");
for (const c of damagedCheckpoints(await Deno.readFile(edm))) {
  const path = join(tmp, `${c.name.replaceAll(" ", "_")}.safetensors`);
  await Deno.writeFile(path, c.bytes);
  await report(
    `sample:edm, ${c.name}`,
    await run("sample_edm", ["--checkpoint", path, "--out", s]),
  );
}
const d = ["--seeds", "0-7", "--steps", "8", "--out", join(tmp, "d.png")];
const taskCases: [string, string, string[]][] = [
  ["sample:edm, a folder as --checkpoint", "sample_edm", ["--checkpoint", edmRun, "--out", s]],
  [
    "sample:edm, the .json sidecar",
    "sample_edm",
    ["--checkpoint", join(edmRun, "checkpoint.json"), "--out", s],
  ],
  ["sample:edm, --out = --checkpoint", "sample_edm", ["--checkpoint", edm, "--out", edm]],
  ['sample:edm, --out ""', "sample_edm", ["--checkpoint", edm, "--out", ""]],
  [
    "sample:edm, --out 300-byte name",
    "sample_edm",
    ["--checkpoint", edm, "--out", "x".repeat(300) + ".png"],
  ],
  ["sample:edm, --steps 1e9", "sample_edm", ["--checkpoint", edm, "--steps", "1e9"]],
  ["sample:edm on a DDPM checkpoint", "sample_edm", ["--checkpoint", ddpm, ...d]],
  ["sample:s2n on a DDPM checkpoint", "sample_s2n", ["--checkpoint", ddpm, ...d]],
  [
    "sample:edm stochastic on a DDPM checkpoint",
    "sample_edm",
    ["--checkpoint", ddpm, ...d, "--sampler", "stochastic", "--s-churn", "10"],
  ],
  ["sample:ddpm on an EDM checkpoint", "sample_ddpm", ["--checkpoint", edm, "--out", s]],
  ["train:edm --resume on a DDPM run", "train_edm", [...toy, "--out", ddpmRun, "--resume"]],
  ["train:ddpm --resume on an EDM run", "train_ddpm", [...toy, "--out", edmRun, "--resume"]],
  ["train:edm --seed 1e300", "train_edm", ["--seed", "1e300", "--dry-run"]],
  ["train:edm --channel-mult 1,,2", "train_edm", ["--channel-mult", "1,,2", "--dry-run"]],
  ["train:edm --lr Infinity", "train_edm", ["--lr", "Infinity", "--dry-run"]],
];
for (const [name, task, args] of taskCases) await report(name, await run(task, args));

const pngs = join(tmp, "pngs");
await Deno.mkdir(pngs);
const small = encodePng({ data: new Float32Array(64), shape: [8, 8, 1] });
const huge = small.slice();
new DataView(huge.buffer).setUint32(16, 100000);
new DataView(huge.buffer).setUint32(20, 100000);
await Deno.writeFile(join(pngs, "a.png"), huge);
const pngRun = (out: string) => ["--data", `png:${pngs}`, "--kimg", "0.001", "--out", out];
await report(
  "train:edm on a PNG claiming 100000x100000",
  await run("train_edm", pngRun(join(tmp, "png-run"))),
);
await Deno.writeFile(join(pngs, "a.png"), small);
await Deno.writeFile(join(pngs, "b.png"), huge);
await report(
  "train:edm, 2nd PNG claims 100000x100000",
  await run("train_edm", pngRun(join(tmp, "png-run2"))),
);
await Deno.remove(join(pngs, "b.png"));
await report(
  "eval --images of 8x8 PNGs (MNIST reference)",
  await run("eval", ["--images", pngs, "--ref-n", "16", "--out-dir", join(tmp, "ev")]),
);

await report(
  "train:edm --lr 1e30 (divergence)",
  await run("train_edm", [
    "--preset",
    "toy",
    "--channels",
    "16",
    "--batch",
    "16",
    "--kimg",
    "1",
    "--lr",
    "1e30",
    "--lr-rampup",
    "0",
    "--checkpoint-every",
    "0.016",
    "--out",
    join(tmp, "div"),
  ]),
);

// Two writers: a long run holds the folder while a second one starts.
const longRun = join(tmp, "long");
const longArgs = [
  "--preset",
  "toy",
  "--kimg",
  "1000",
  "--checkpoint-every",
  "0.256",
  "--out",
  longRun,
];
const holder = new Deno.Command(Deno.execPath(), {
  args: ["run", ...PERMS, join(ROOT, "tasks/train_edm.ts"), ...longArgs],
  env,
  stdout: "null",
  stderr: "null",
}).spawn();
while (!(await Deno.stat(join(longRun, "checkpoint.safetensors")).then(() => true, () => false))) {
  await new Promise((r) => setTimeout(r, 100));
}
await report(
  "a second train:edm on a run in progress",
  await run("train_edm", ["--preset", "toy", "--kimg", "1000", "--out", longRun, "--resume"]),
);
holder.kill("SIGKILL");
await holder.status;
await report(
  "--resume after kill -9 (stale lock), Ctrl-C",
  await run("train_edm", [...longArgs, "--resume"], { sigintAfterMs: 8000 }),
);

// A full disk: a 64 KiB tmpfs (needs root; skipped otherwise).
const full = join(tmp, "full");
await Deno.mkdir(full);
const mounted = await new Deno.Command("mount", {
  args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", full],
  stderr: "null",
}).output().then((o) => o.success, () => false);
if (mounted) {
  await report(
    "train:edm into a full disk",
    await run("train_edm", [
      "--preset",
      "toy",
      "--kimg",
      "0.512",
      "--checkpoint-every",
      "0.256",
      "--channels",
      "256",
      "--out",
      full,
    ]),
  );
  await new Deno.Command("umount", { args: [full] }).output();
}

console.log("| case | exit | max RSS (MB) | message |\n| --- | --- | --- | --- |");
console.log(rows.join("\n"));
await Deno.remove(tmp, { recursive: true });
