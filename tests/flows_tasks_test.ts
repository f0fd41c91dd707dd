/**
 * train:glow and sample:glow as a user runs them: help, a tiny train -> sample -> bits/dim round
 * trip on PNG images made here, and exit code 2 with one line for bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { writePng } from "../data/png.ts";
import { assertUserError, runTaskFile as task } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

Deno.test("train:glow and sample:glow print --help with examples", async () => {
  for (const name of ["train_glow", "sample_glow"]) {
    const r = await task(name, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
  }
});

Deno.test("train:glow --dry-run resolves --model realnvp and the Glow flags", async () => {
  const r = await task("train_glow", [
    "--dry-run",
    "--steps",
    "3",
    "--hidden",
    "16",
    "--n-bits",
    "5",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const { config } = JSON.parse(r.stdout);
  assert.deepEqual([config.arch.kind, config.arch.steps, config.arch.hidden, config.nBins], [
    "glow",
    3,
    16,
    32,
  ]);
  const nvp = JSON.parse((await task("train_glow", ["--dry-run", "--model", "realnvp"])).stdout);
  assert.equal(nvp.config.arch.kind, "realnvp");
});

Deno.test("train:glow then sample:glow: PNG grid, per-image PNGs and test bits/dim on tiny images", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "png"));
  for (let i = 0; i < 8; i++) {
    const data = new Float32Array(64).map((_, j) => ((j + i) % 8 < 4 ? 1 : -1));
    await writePng(join(dir, "png", `${i}.png`), { data, shape: [8, 8, 1] });
  }
  const out = join(dir, "run");
  const args = [
    "--data",
    `png:${join(dir, "png")}`,
    "--levels",
    "2",
    "--steps",
    "1",
    "--hidden",
    "4",
    "--batch",
    "4",
  ];
  const t = await task("train_glow", [
    ...args,
    "--kimg",
    "0.008",
    "--log-every",
    "1",
    "--out",
    out,
  ]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /done: 2 steps/);
  const s = await task("sample_glow", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--seeds",
    "0-3",
    "--out",
    join(dir, "s.png"),
    "--images-dir",
    join(dir, "imgs"),
    "--bpd",
    `png:${join(dir, "png")}`,
  ]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /bits\/dim on .* \(8 examples\): \d+\.\d+/);
  assert.equal([...Deno.readDirSync(join(dir, "imgs"))].length, 4);
  // Bad input: one line, exit 2.
  assertUserError(
    await task("train_glow", [...args, "--levels", "4", "--out", join(dir, "r2")]),
    /squeeze/,
  );
  assertUserError(
    await task("train_glow", ["--model", "realnvp", "--steps", "2", "--dry-run"]),
    /--steps is a Glow flag/,
  );
  assertUserError(
    await task("train_glow", [...args, "--out", out]),
    /already exists: pass --resume/,
  );
  assertUserError(await task("sample_glow", ["--temperature", "-1"]), /temperature/);
  assertUserError(await task("sample_glow", ["--resume"]), /--resume needs --images-dir/);
  assertUserError(await task("train_glow", ["--hidden", "1e9"]), /--hidden must be .*4096/);
  assertUserError(
    await task("sample_glow", ["--checkpoint", join(dir, "missing.safetensors")]),
    /missing/,
  );
  await Deno.remove(dir, { recursive: true });
});
