/**
 * Shards end to end, by subprocess as on a cluster: `deno task shards` runs 4 shards with the
 * environment Kubernetes or Slurm sets; their images equal the one-process run's byte for byte,
 * `eval:merge` gives the one-process figures, a killed shard's rerun completes the set, and bad
 * shard values, missing and mismatched shards are one-line errors (exit 2).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { writePng } from "../data/png.ts";
import { assertUserError, PERMS, ROOT, runTaskFile } from "./_subprocess.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const ENV = { NO_COLOR: "1", DIFFUSE_BACKEND: "wasm" };
const task = (name: string, args: string[], env: Record<string, string> = {}) =>
  runTaskFile(name, args, { ...ENV, ...env });

/** 28x28 gray PNGs (the MNIST classifier's input) with a bar at a varying column. */
async function makeDigits(dir: string, count: number) {
  await Deno.mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const data = new Float32Array(784).map((_, j) => Math.abs((j % 28) - 6 - 2 * i) < 3 ? 1 : -1);
    await writePng(join(dir, `${i}.png`), { data, shape: [28, 28, 1] });
  }
}

async function pngs(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const e of Deno.readDirSync(dir)) {
    if (e.name.endsWith(".png")) out.set(e.name, await Deno.readFile(join(dir, e.name)));
  }
  return out;
}

const dir = await Deno.makeTempDir();
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const data = join(dir, "data");
await makeDigits(data, 8);
const trained = await task("train_edm", [
  "--data",
  `png:${data}`,
  "--model",
  "mnist-small",
  "--channels",
  "8",
  "--batch",
  "4",
  "--kimg",
  "0.008",
  "--out",
  join(dir, "run"),
]);
assert.equal(trained.code, 0, trained.stderr);
const ckpt = join(dir, "run", "checkpoint.safetensors");

Deno.test("bad shard values are one-line errors naming the fix (exit 2)", async () => {
  const s = ["--checkpoint", ckpt, "--seeds", "0-3", "--out", join(dir, "bad.png")];
  const im = ["--images-dir", join(dir, "bad")];
  assertUserError(
    await task("sample_edm", [...s, ...im, "--shard", "4/4"]),
    /not below the count 4/,
  );
  assertUserError(await task("sample_edm", [...s, ...im, "--shard", "1-4"]), /is not i\/n/);
  assertUserError(
    await task("sample_edm", [...s, ...im], { JOB_COMPLETION_INDEX: "1" }),
    /DIFFUSE_SHARD_COUNT is not/,
  );
  assertUserError(await task("sample_edm", [...s, "--shard", "0/2"]), /needs --images-dir/);
  assertUserError(
    await task("shards", ["--n", "2", "--", "sample:edm", "--shard", "0/2"]),
    /drop --shard/,
  );
});

Deno.test("4 shards sample the images of one process byte for byte; a killed shard's rerun completes the set", async () => {
  const common = ["--checkpoint", ckpt, "--seeds", "0-15", "--steps", "3"];
  const one = await task("sample_edm", [
    ...common,
    "--batch",
    "4",
    "--images-dir",
    join(dir, "one"),
    "--out",
    join(dir, "one.png"),
  ]);
  assert.equal(one.code, 0, one.stderr);
  const four = join(dir, "four");
  const driver = [
    "--n",
    "4",
    "--logs",
    join(dir, "logs"),
    "--",
    "sample:edm",
    ...common,
    "--batch",
    "3",
    "--images-dir",
    four,
    "--out",
    join(dir, "four.png"),
  ];
  const r = await task("shards", driver);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /shards: 4\/4 succeeded/);
  const want = await pngs(join(dir, "one"));
  assert.equal(want.size, 16);
  assert.deepEqual(await pngs(four), want);
  assert.match(
    (await task("eval_merge", [four])).stdout,
    /4 sampling shards, seeds 0-15 each exactly once/,
  );

  // Kill shard 1 (seeds 4-7, one image per batch) once its first image is on disk.
  await Deno.remove(join(four, "shard-00001-of-00004.json"));
  for (const s of [4, 5, 6, 7]) await Deno.remove(join(four, `seed00000${s}.png`));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "tasks", "sample_edm.ts"), ...common, "--batch", "1"]
      .concat(["--images-dir", four, "--out", join(dir, "four.png")]),
    cwd: ROOT,
    env: { ...ENV, JOB_COMPLETION_INDEX: "1", DIFFUSE_SHARD_COUNT: "4" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 3000 && !(await pngs(four)).has("seed000004.png"); i++) {
    await new Promise((res) => setTimeout(res, 10));
  }
  child.kill("SIGKILL");
  await child.status;
  const left = await pngs(four);
  assert.ok(left.size < 16, `killed before the shard finished (${left.size} images)`);
  assertUserError(await task("eval_merge", [four]), /1 of 4 sampling shards unfinished \(1\/4\)/);
  const again = await task("shards", driver);
  assert.equal(again.code, 0, again.stderr);
  const logs = await Promise.all(
    [0, 1, 2, 3].map((i) => Deno.readTextFile(join(dir, "logs", `shard-0000${i}-of-00004.log`))),
  );
  assert.deepEqual(logs.map((l) => /already finished/.test(l)), [true, false, true, true]);
  assert.deepEqual(await pngs(four), want);
});

Deno.test("eval in 4 shards (Slurm environment, strided) merges to the one-process FD, IS, KID, precision/recall", async () => {
  const common = ["--checkpoint", ckpt, "--data", `png:${data}`, "--n", "10", "--steps", "2"]
    .concat(["--kid-size", "4", "--kid-subsets", "3", "--batch", "4"]);
  const one = await task("eval", [...common, "--out-dir", join(dir, "e1")]);
  assert.equal(one.code, 0, one.stderr);
  const out = join(dir, "e4");
  const driver = [
    "--n",
    "4",
    "--scheduler",
    "slurm",
    "--slurm-min",
    "1",
    "--logs",
    join(dir, "elogs"),
  ]
    .concat(["--", "eval", ...common, "--shard-mode", "strided", "--out-dir", out]);
  const r = await task("shards", driver);
  assert.equal(r.code, 0, r.stderr);
  const merge = async () => {
    const m = await task("eval_merge", [out]);
    assert.equal(m.code, 0, m.stderr);
    const a = JSON.parse(await Deno.readTextFile(join(dir, "e1", "eval.json"))).rows[0].report;
    const b = JSON.parse(await Deno.readTextFile(join(out, "eval.json"))).rows[0].report;
    // Shards batch other images together, and BLAS/oneDNN products may round a row differently
    // in a batch of another size (measured on an AMD EPYC: 1.5e-7 relative in the reference IS),
    // so the figures agree to float32 rounding of the features; counts exactly.
    const near = (x: number, y: number, what: string) =>
      assert.ok(Math.abs(x - y) <= 1e-5 * Math.max(1, Math.abs(y)), `${what}: ${x} vs ${y}`);
    near(b.fd, a.fd, "FD");
    assert.ok(Number.isFinite(a.fd) && a.fd > 0);
    for (const key of ["is", "referenceIs", "kid"]) {
      near(b[key].mean, a[key].mean, `${key} mean`);
      near(b[key].std, a[key].std, `${key} std`);
    }
    for (const key of ["precision", "recall", "sampleCount", "referenceCount"]) {
      assert.deepEqual(b[key], a[key], key);
    }
  };
  await merge();
  // A missing shard is named; rerunning the same command redoes only that one.
  await Deno.remove(join(out, "shard-00002-of-00004.safetensors"));
  assertUserError(await task("eval_merge", [out]), /1 of 4 shards missing \(2\/4\)/);
  const again = await task("shards", driver);
  assert.equal(again.code, 0, again.stderr);
  await merge();
  // A shard of another configuration in the same folder is refused.
  assertUserError(
    await task("eval", [...common, "--steps", "3", "--out-dir", out, "--shard", "1/4"]),
    /holds shard 1\/4 of another run \(steps 2 vs 3\); use another --out-dir/,
  );
  // So is one computed on another backend (they round differently).
  assertUserError(
    await task("eval", [...common, "--out-dir", out, "--shard", "1/4"], { DIFFUSE_BACKEND: "cpu" }),
    /of another run \(backend "wasm" vs "cpu"\)/,
  );
  // A copy of a shard under another name is a duplicate.
  await Deno.copyFile(
    join(out, "shard-00001-of-00004.safetensors"),
    join(out, "shard-00001-of-00002.safetensors"),
  );
  assertUserError(await task("eval_merge", [out]), /shard 1\/4 is there twice \(.*; delete one/);
});
