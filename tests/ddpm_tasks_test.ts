/**
 * The DDPM tasks end to end, as a user runs them: train:ddpm on tiny PNG images, resume,
 * sample:ddpm with the ancestral sampler and DDIM, eval:ddpm's printed terms and files, and
 * one-line errors with exit code 2 for bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { readPng, writePng } from "../data/png.ts";
import { assertUserError, runTaskFile as task } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** A folder of 8x8 gray PNGs (two patterns). */
async function makePngFolder(dir: string, count = 8) {
  await Deno.mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const data = new Float32Array(64).map((_, j) => (j % 8 < 4) === (i % 2 === 0) ? 1 : -1);
    await writePng(join(dir, `${i}.png`), { data, shape: [8, 8, 1] });
  }
}

const TINY = ["--model", "mnist-small", "--channels", "8", "--batch", "4", "--log-every", "1"];

Deno.test("train:ddpm, sample:ddpm and eval:ddpm print --help with examples", async () => {
  for (const name of ["train_ddpm", "sample_ddpm", "eval_ddpm"]) {
    const r = await task(name, ["--help"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Examples:/);
  }
});

Deno.test("train:ddpm --dry-run prints the resolved options", async () => {
  const r = await task("train_ddpm", [
    "--dry-run",
    "--loss",
    "vlb",
    "--T",
    "50",
    "--schedule",
    "cosine",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const { config } = JSON.parse(r.stdout);
  assert.equal(config.loss, "vlb");
  assert.equal(config.T, 50);
  assert.equal(config.schedule, "cosine");
  assert.equal(config.gridSteps, 50);
  assert.equal(config.data, "mnist:train");
});

Deno.test("DDPM tasks: bad input exits with code 2 and one line", async () => {
  assertUserError(await task("train_ddpm", ["--loss", "l1"]), /--loss must be one of/);
  assertUserError(await task("train_ddpm", ["--T", "1"]), /--T must be at least 2/);
  assertUserError(await task("train_ddpm", ["--T", "10", "--grid-steps", "20"]), /gridSteps/);
  assertUserError(await task("sample_ddpm", ["--sampler", "heun"]), /--sampler must be one of/);
  assertUserError(
    await task("sample_ddpm", ["--checkpoint", "/no/such/checkpoint.safetensors"]),
    /no\/such/,
  );
  assertUserError(await task("eval_ddpm", ["--n", "0"]), /--n must be at least 1/);
});

Deno.test("train -> resume -> sample (ancestral, ddim) -> eval on PNG images", async () => {
  const dir = await Deno.makeTempDir();
  const data = join(dir, "pngs"), out = join(dir, "run");
  await makePngFolder(data);
  const common = ["--data", `png:${data}`, ...TINY, "--T", "20", "--loss", "vlb", "--out", out];
  const first = await task("train_ddpm", [...common, "--kimg", "0.004"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /done: 1 steps/);
  assertUserError(
    await task("train_ddpm", [...common, "--kimg", "0.008", "--resume", "--T", "30"]),
    /cannot resume .*T=20/,
  );
  const resumed = await task("train_ddpm", [...common, "--kimg", "0.008", "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /done: 2 steps/);
  const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n");
  assert.deepEqual(metrics.map((l) => JSON.parse(l).step), [1, 2]);
  await Deno.stat(join(out, "samples.png"));

  const ckpt = join(out, "checkpoint.safetensors");
  for (const sampler of ["ancestral", "ddim"]) {
    // The grid goes into a folder that does not exist yet: the task makes it.
    const grid = join(dir, "new", `${sampler}.png`), each = join(dir, sampler);
    const r = await task("sample_ddpm", [
      "--checkpoint",
      ckpt,
      "--sampler",
      sampler,
      "--steps",
      "5",
      "--seeds",
      "0-3",
      "--out",
      grid,
      "--images-dir",
      each,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /4 images, 5 evaluations each/);
    const png = await readPng(grid);
    assert.deepEqual(png.shape.slice(2), [1]);
    assert.equal([...Deno.readDirSync(each)].length, 4);
  }
  assertUserError(
    await task("sample_ddpm", ["--checkpoint", ckpt, "--steps", "50"]),
    /--steps must be at most .*T = 20/,
  );
  // eval:ddpm checks its chain and its held-out set before evaluating anything.
  assertUserError(
    await task("eval_ddpm", ["--checkpoint", ckpt, "--steps", "50"]),
    /eval:ddpm: --steps must be at most the checkpoint's T = 20, got 50/,
  );
  assertUserError(
    await task("eval_ddpm", ["--checkpoint", ckpt, "--n", "100000"]),
    /eval:ddpm: --n must be at most \d+ \(.*\), got 100000/,
  );
  assertUserError(
    await task("eval_ddpm", ["--checkpoint", ckpt, "--data", "toy:two-moons"]),
    /eval:ddpm: the data has shape \[2\] but the model makes \[.*\]; pass the --data/,
  );

  const evalDir = join(dir, "eval");
  const r = await task("eval_ddpm", [
    "--checkpoint",
    ckpt,
    "--n",
    "4",
    "--steps",
    "5",
    "--progressive-seeds",
    "0-1",
    "--out-dir",
    evalDir,
  ]);
  assert.equal(r.code, 0, r.stderr);
  for (const term of ["prior L_T", "diffusion", "decoder L_0", "total", "standard error"]) {
    assert.match(r.stdout, new RegExp(`${term}\\s+-?\\d+\\.\\d+ bits/dim`));
  }
  const summary = JSON.parse(await Deno.readTextFile(join(evalDir, "summary.json")));
  assert.equal(summary.heldOut.count, 4);
  assert.equal(summary.steps, 5);
  // The printed total is the sum of its parts.
  assert.ok(
    Math.abs(summary.prior + summary.diffusion + summary.decoderTerm - summary.bitsPerDim) < 1e-9,
  );
  assert.equal(summary.rateDistortion.length, 6);
  for (const name of ["rate_distortion.svg", "progressive.png", "interpolation.png"]) {
    await Deno.stat(join(evalDir, name));
  }
  await Deno.remove(dir, { recursive: true });
});
