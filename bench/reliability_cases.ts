/**
 * The table of issue 15's hostile and wrong inputs, run as a user runs them: each case is one task
 * subprocess under `/usr/bin/time -v`; prints a Markdown table of the exit code, the peak memory
 * (max RSS) and the one-line message. Needs Linux and /usr/bin/time; takes a few minutes.
 *
 *   deno run -A bench/reliability_cases.ts
 */
import { join } from "node:path";
import { encodePng } from "../data/png.ts";

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
async function report(name: string, r: { code: number; rss: number; line: string }) {
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
const bytes = await Deno.readFile(edm);
const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
const state = JSON.parse(header.__metadata__.diffuse);
async function variant(name: string, make: () => Uint8Array) {
  const path = join(tmp, `${name}.safetensors`);
  await Deno.writeFile(path, make());
  return path;
}
function withHeader(h: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}
const withState = (patch: Record<string, unknown>) => () =>
  withHeader({
    ...header,
    __metadata__: { ...header.__metadata__, diffuse: JSON.stringify({ ...state, ...patch }) },
  });
const flip = (at: number) => () => {
  const b = bytes.slice();
  b[at] ^= 0x5a;
  return b;
};
const first = Object.keys(header).find((k) => k !== "__metadata__")!;
const hugeUnet = {
  kind: "unet",
  name: "x",
  config: {
    imgResolution: 1024,
    inChannels: 3,
    outChannels: 3,
    modelChannels: 4096,
    channelMult: [1, 2, 4, 8],
    numBlocks: 64,
    attnResolutions: [],
  },
};
const cases: [string, () => Uint8Array][] = [
  ["truncated to half", () => bytes.subarray(0, bytes.length >> 1)],
  ["flipped header byte", flip(9)],
  ["flipped data byte", flip(bytes.length - 3)],
  ["header length 2^40", () => {
    const b = bytes.slice();
    new DataView(b.buffer).setBigUint64(0, 2n ** 40n, true);
    return b;
  }],
  [
    "huge declared shape",
    () => withHeader({ ...header, [first]: { ...header[first], shape: [1e9, 1e9] } }),
  ],
  ["state declares a huge U-Net", withState({ model: hugeUnet })],
  [
    "negative width",
    withState({ model: { ...state.model, config: { ...state.model.config, hidden: -8 } } }),
  ],
  ["state without model", withState({ model: undefined })],
  ["state without config", withState({ config: undefined })],
  ["unknown model kind", withState({ model: { kind: "gan", config: {} } })],
  ["made-up format tag", withState({ format: "made-up/9" })],
];
for (const [name, make] of cases) {
  await report(
    `sample:edm, ${name}`,
    await run("sample_edm", [
      "--checkpoint",
      await variant(name.replaceAll(" ", "_"), make),
      "--out",
      join(tmp, "s.png"),
    ]),
  );
}
await report(
  "sample:edm, a folder as --checkpoint",
  await run("sample_edm", ["--checkpoint", edmRun, "--out", join(tmp, "s.png")]),
);
await report(
  "sample:edm, the .json sidecar",
  await run("sample_edm", [
    "--checkpoint",
    join(edmRun, "checkpoint.json"),
    "--out",
    join(tmp, "s.png"),
  ]),
);
await report(
  "sample:edm, --out = --checkpoint",
  await run("sample_edm", ["--checkpoint", edm, "--out", edm]),
);
await report('sample:edm, --out ""', await run("sample_edm", ["--checkpoint", edm, "--out", ""]));
await report(
  "sample:edm, --out 300-byte name",
  await run("sample_edm", ["--checkpoint", edm, "--out", "x".repeat(300) + ".png"]),
);
await report(
  "sample:edm, --steps 1e9",
  await run("sample_edm", ["--checkpoint", edm, "--steps", "1e9"]),
);
await report(
  "sample:edm on a DDPM checkpoint",
  await run("sample_edm", [
    "--checkpoint",
    ddpm,
    "--seeds",
    "0-7",
    "--steps",
    "8",
    "--out",
    join(tmp, "d.png"),
  ]),
);
await report(
  "sample:s2n on a DDPM checkpoint",
  await run("sample_s2n", [
    "--checkpoint",
    ddpm,
    "--seeds",
    "0-7",
    "--steps",
    "8",
    "--out",
    join(tmp, "d2.png"),
  ]),
);
await report(
  "sample:edm stochastic on a DDPM checkpoint",
  await run("sample_edm", [
    "--checkpoint",
    ddpm,
    "--seeds",
    "0-7",
    "--steps",
    "8",
    "--sampler",
    "stochastic",
    "--s-churn",
    "10",
    "--out",
    join(tmp, "d3.png"),
  ]),
);
await report(
  "sample:ddpm on an EDM checkpoint",
  await run("sample_ddpm", ["--checkpoint", edm, "--out", join(tmp, "e.png")]),
);
await report(
  "train:edm --resume on a DDPM run",
  await run("train_edm", [...toy, "--out", ddpmRun, "--resume"]),
);
await report(
  "train:ddpm --resume on an EDM run",
  await run("train_ddpm", [...toy, "--out", edmRun, "--resume"]),
);
await report("train:edm --seed 1e300", await run("train_edm", ["--seed", "1e300", "--dry-run"]));
await report(
  "train:edm --channel-mult 1,,2",
  await run("train_edm", ["--channel-mult", "1,,2", "--dry-run"]),
);
await report("train:edm --lr Infinity", await run("train_edm", ["--lr", "Infinity", "--dry-run"]));

const pngs = join(tmp, "pngs");
await Deno.mkdir(pngs);
const small = encodePng({ data: new Float32Array(64), shape: [8, 8, 1] });
const huge = small.slice();
new DataView(huge.buffer).setUint32(16, 100000);
new DataView(huge.buffer).setUint32(20, 100000);
await Deno.writeFile(join(pngs, "a.png"), huge);
await report(
  "train:edm on a PNG claiming 100000x100000",
  await run("train_edm", [
    "--data",
    `png:${pngs}`,
    "--kimg",
    "0.001",
    "--out",
    join(tmp, "png-run"),
  ]),
);
await Deno.writeFile(join(pngs, "a.png"), small);
await Deno.writeFile(join(pngs, "b.png"), huge);
await report(
  "train:edm, 2nd PNG claims 100000x100000",
  await run("train_edm", [
    "--data",
    `png:${pngs}`,
    "--kimg",
    "0.001",
    "--out",
    join(tmp, "png-run2"),
  ]),
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
const holder = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...PERMS,
    join(ROOT, "tasks/train_edm.ts"),
    "--preset",
    "toy",
    "--kimg",
    "1000",
    "--checkpoint-every",
    "0.256",
    "--out",
    longRun,
  ],
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
  await run("train_edm", [
    "--preset",
    "toy",
    "--kimg",
    "1000",
    "--checkpoint-every",
    "0.256",
    "--out",
    longRun,
    "--resume",
  ], { sigintAfterMs: 8000 }),
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
