/**
 * The NDM tasks end to end, as a user runs them: train:ndm on tiny PNG images (learned F,
 * discrete and continuous), resume, sample:ndm, eval:ndm's printed NELBO and files, and
 * one-line errors with exit code 2 for bad flags and checkpoints of another kind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { readPng, writePng } from "../data/png.ts";
import { assertUserError, runTaskFile } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const task = runTaskFile;

const TINY = [
  "--model",
  "mnist-small",
  "--channels",
  "8",
  "--channel-mult",
  "1,2",
  "--batch",
  "4",
  "--log-every",
  "1",
];

Deno.test("train:ndm, sample:ndm and eval:ndm print --help with examples", async () => {
  for (const name of ["train_ndm", "sample_ndm", "eval_ndm"]) {
    const r = await task(name, ["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Examples:/);
  }
});

Deno.test("train:ndm --dry-run resolves the defaults and the flags", async () => {
  const r = await task("train_ndm", ["--dry-run", "--transform", "identity", "--steps", "10"]);
  assert.equal(r.code, 0, r.stderr);
  const { config } = JSON.parse(r.stdout);
  assert.equal(config.transform, "identity");
  assert.equal(config.steps, 10);
  assert.equal(config.T, 1000);
  assert.equal(config.gridSteps, 10);
  assert.equal(config.data, "mnist:train");
  assert.equal(config.continuous, false);
});

Deno.test("NDM tasks: bad input exits with code 2 and one line", async () => {
  assertUserError(await task("train_ndm", ["--loss", "simple"]), /not offered.*collapses to 0/);
  assertUserError(await task("train_ndm", ["--eta", "0"]), /--eta must be greater than 0/);
  assertUserError(
    await task("train_ndm", ["--steps", "2000"]),
    /steps must be an integer in 2\.\.T/,
  );
  assertUserError(
    await task("train_ndm", ["--continuous", "--schedule", "cosine"]),
    /continuous objective .* linear/,
  );
  assertUserError(await task("train_ndm", ["--transform", "affine"]), /--transform must be one of/);
  assertUserError(await task("sample_ndm", ["--checkpoint", "/no/such.safetensors"]), /no\/such/);
  assertUserError(await task("eval_ndm", ["--n", "0"]), /--n must be at least 1/);
  assertUserError(await task("sample_ndm", ["--resume"]), /--resume needs --images-dir/);
  assertUserError(await task("train_ndm", ["--T", "1e9"]), /--T must be .*100000/);
});

Deno.test("train -> resume -> sample -> eval on PNG images; a DDPM checkpoint is refused", async () => {
  const dir = await Deno.makeTempDir();
  const data = join(dir, "pngs"), out = join(dir, "run");
  await Deno.mkdir(data);
  for (let i = 0; i < 8; i++) {
    const px = new Float32Array(64).map((_, j) => (j % 8 < 4) === (i % 2 === 0) ? 1 : -1);
    await writePng(join(data, `${i}.png`), { data: px, shape: [8, 8, 1] });
  }
  const common = ["--data", `png:${data}`, ...TINY, "--T", "20", "--out", out];
  const first = await task("train_ndm", [...common, "--kimg", "0.004"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /done: 1 steps/);
  assertUserError(
    await task("train_ndm", [...common, "--kimg", "0.008", "--resume", "--transform", "identity"]),
    /cannot resume .*transform="learned"/,
  );
  const resumed = await task("train_ndm", [...common, "--kimg", "0.008", "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /done: 2 steps/);
  const ckpt = join(out, "checkpoint.safetensors");

  const grid = join(dir, "new", "ndm.png");
  const s = await task("sample_ndm", [
    "--checkpoint",
    ckpt,
    "--steps",
    "5",
    "--eta",
    "0",
    "--seeds",
    "0-3",
    "--out",
    grid,
    "--images-dir",
    join(dir, "imgs"),
  ]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /4 images, 5 evaluations each/);
  assert.deepEqual((await readPng(grid)).shape.slice(2), [1]);
  // --resume samples only the seeds whose PNG is missing.
  const more = await task("sample_ndm", [
    ...["--checkpoint", ckpt, "--steps", "5", "--eta", "0", "--seeds", "0-4", "--out", grid],
    ...["--images-dir", join(dir, "imgs"), "--resume"],
  ]);
  assert.match(more.stdout, /wrote 1 PNGs to .* \(4 were there\)/, more.stderr);
  const ode = await task("sample_ndm", [
    "--checkpoint",
    ckpt,
    "--ode",
    "--seeds",
    "0-1",
    "--out",
    grid,
  ]);
  assert.equal(ode.code, 0, ode.stderr);
  assert.match(ode.stdout, /2 images, \d+ evaluations each/);
  const sde = await task("sample_ndm", [
    "--checkpoint",
    ckpt,
    "--sde",
    "3",
    "--seeds",
    "0-1",
    "--out",
    grid,
  ]);
  assert.match(sde.stdout, /2 images, 3 evaluations each/, sde.stderr);
  assertUserError(
    await task("sample_ndm", ["--checkpoint", ckpt, "--ode", "--sde", "3"]),
    /not both/,
  );

  const evalDir = join(dir, "eval");
  const e = await task("eval_ndm", [
    "--nll",
    "2",
    "--checkpoint",
    ckpt,
    "--n",
    "4",
    "--steps",
    "5",
    "--out-dir",
    evalDir,
  ]);
  assert.equal(e.code, 0, e.stderr);
  for (const term of ["prior L_prior", "diffusion", "L_rec", "NELBO", "standard error"]) {
    assert.match(e.stdout, new RegExp(`${term}\\s+-?\\d+\\.\\d+ bits/dim`));
  }
  const summary = JSON.parse(await Deno.readTextFile(join(evalDir, "summary.json")));
  assert.equal(summary.transform, "learned");
  assert.ok(
    Math.abs(summary.prior + summary.diffusion + summary.reconstruction - summary.nelbo) < 1e-9,
  );
  for (const name of ["transform.png", "predictions.png"]) await Deno.stat(join(evalDir, name));
  assert.match(e.stdout, /NLL \(ODE.*on 2 held-out images: +\d+\.\d+ \+- \d+\.\d+ bits\/dim/);
  assert.equal(summary.nll.count, 2);

  // The continuous objective trains too, and a train:ddpm checkpoint is named as such.
  const cont = await task("train_ndm", [
    ...common.slice(0, -1),
    join(dir, "cont"),
    "--continuous",
    "--kimg",
    "0.004",
  ]);
  assert.equal(cont.code, 0, cont.stderr);
  const ddpmOut = join(dir, "ddpm");
  const ddpm = await task("train_ddpm", [
    "--data",
    `png:${data}`,
    ...TINY,
    "--T",
    "20",
    "--kimg",
    "0.004",
    "--out",
    ddpmOut,
  ]);
  assert.equal(ddpm.code, 0, ddpm.stderr);
  assertUserError(
    await task("sample_ndm", ["--checkpoint", join(ddpmOut, "checkpoint.safetensors")]),
    /is a train:ddpm checkpoint \(diffuse-ddpm\/1\) but sample:ndm reads checkpoints written by train:ndm: use sample:ddpm/,
  );
  await Deno.remove(dir, { recursive: true });
});
