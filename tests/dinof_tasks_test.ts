/**
 * train:dinof and sample:dinof as a user runs them: one-line errors with exit code 2 for bad
 * input, and a tiny joint run on 2-D data sampled with both the PC sampler and the ODE.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

async function task(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "tasks", `${name}.ts`), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DIFFUSE_BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertUserError(r: { code: number; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
}

Deno.test("train:dinof rejects --joint with --score-checkpoint, a bad T_m and a missing score checkpoint", async () => {
  assertUserError(
    await task("train_dinof", ["--joint", "--score-checkpoint", "x.safetensors"]),
    /--joint .* --score-checkpoint/,
  );
  assertUserError(await task("train_dinof", ["--tm", "0"]), /--tm/);
  const dir = await Deno.makeTempDir();
  assertUserError(
    await task("train_dinof", [
      "--preset",
      "toy",
      "--score-checkpoint",
      join(dir, "none.safetensors"),
      "--out",
      join(dir, "run"),
    ]),
    /none\.safetensors/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train:dinof -> sample:dinof on 2-D data, PC, ODE and --bpd; a missing checkpoint, a bad --eps and a mismatched --bpd set are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  const run = join(dir, "run");
  const trained = await task("train_dinof", [
    "--preset",
    "toy",
    "--kimg",
    "1",
    "--batch",
    "250",
    "--tm",
    "0.5",
    "--out",
    run,
  ]);
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stdout, /done: 4 steps/);
  const ckpt = join(run, "checkpoint.safetensors");
  for (const extra of [[], ["--ode"]]) {
    const out = join(dir, `s${extra.length}.png`);
    const r = await task("sample_dinof", [
      "--checkpoint",
      ckpt,
      "--seeds",
      "0-7",
      "--N",
      "20",
      "--out",
      out,
      ...extra,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // 2-D data: a scatter; PC: round(0.5 * 20) = 10 steps of 2 evaluations.
    assert.match(
      r.stdout,
      extra.length ? /wrote .*s1\.svg/ : /wrote .*s0\.svg \(8 points, 20 evaluations/,
    );
  }
  const bpd = await task("sample_dinof", [
    "--checkpoint",
    ckpt,
    "--seeds",
    "0-3",
    "--N",
    "10",
    "--bpd",
    "toy:eight-gaussians",
    "--bpd-count",
    "8",
    "--out",
    join(dir, "b.png"),
  ]);
  assert.equal(bpd.code, 0, bpd.stderr);
  assert.match(bpd.stdout, /DiNof \(PF ODE to T_m = 0.5, then the flow\): -?\d+\.\d+ ± /);
  assert.match(bpd.stdout, /score model alone \(PF ODE to T\): +-?\d+\.\d+ ± /);
  assertUserError(
    await task("sample_dinof", [
      "--checkpoint",
      ckpt,
      "--bpd",
      "mnist",
      "--out",
      join(dir, "c.png"),
    ]),
    /--bpd mnist has examples of shape/,
  );
  assertUserError(
    await task("sample_dinof", ["--checkpoint", join(dir, "missing.safetensors")]),
    /missing\.safetensors/,
  );
  assertUserError(
    await task("sample_dinof", ["--checkpoint", ckpt, "--eps", "0.9", "--out", join(dir, "x.png")]),
    /--tm, --eps, --N/,
  );
  await Deno.remove(dir, { recursive: true });
});
