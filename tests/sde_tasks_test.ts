/**
 * train:sde and sample:sde as a user runs them: --help, one-line errors with exit code 2, and a
 * tiny train -> sample (PC and ODE) round trip on 2-D toy data.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { subVpPrecond } from "../models/precond_subvp.ts";
import { subVpLogSnrSchedule } from "../schedules/score_sde.ts";
import { assertUserError, runTaskFile } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// These task runs use the cpu backend (not the wasm default of runTaskFile).
const task = (name: string, args: string[]) => runTaskFile(name, args, { DIFFUSE_BACKEND: "cpu" });

Deno.test("subVpPrecond() feeds the network alpha(t) z-scaled input and c_noise = 999 t", () => {
  const schedule = subVpLogSnrSchedule();
  const d = subVpPrecond((x) => tf.zerosLike(x));
  for (const t of [1e-5, 0.01, 0.3, 1]) {
    const c = d.coefficients(schedule.sigma(t) / schedule.alpha(t));
    assert.ok(Math.abs(c.cIn - schedule.alpha(t)) < 1e-9, `c_in at ${t}`);
    assert.ok(Math.abs(c.cNoise - 999 * t) < 1e-6 * Math.max(1, 999 * t), `c_noise at ${t}`);
  }
  // The tensor coefficients agree with the scalar ones: record what the network receives.
  let seen: number[] = [];
  const sigma = 0.7;
  const wrapped = subVpPrecond((x, cNoise) => {
    seen = [...x.dataSync(), ...cNoise.dataSync()];
    return tf.zerosLike(x);
  });
  tf.tidy(() => wrapped(tf.ones([1, 1]), tf.tensor1d([sigma])));
  const c = wrapped.coefficients(sigma);
  assert.ok(Math.abs(seen[0] - c.cIn) < 1e-6 && Math.abs(seen[1] - c.cNoise) < 1e-3, `${seen}`);
});

Deno.test("train:sde and sample:sde print --help with examples", async () => {
  for (const name of ["train_sde", "sample_sde"]) {
    const r = await task(name, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
  }
});

Deno.test("train:sde bad flags are one-line errors with exit code 2", async () => {
  assertUserError(await task("train_sde", ["--importance"]), /importance sampling/);
  assertUserError(await task("train_sde", ["--sde", "cosine"]), /--sde must be one of/);
  assertUserError(await task("train_sde", ["--eps", "0.6", "--t-max", "0.5"]), /eps < tMax/);
});

Deno.test("train:sde -> sample:sde (PC and ODE) on toy data; sample:sde refuses bad input", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = join(dir, "run");
    const train = await task("train_sde", [
      "--preset",
      "toy",
      "--sde",
      "subvp",
      "--weighting",
      "likelihood",
      "--importance",
      "--kimg",
      "0.5",
      "--out",
      out,
    ]);
    assert.equal(train.code, 0, train.stderr);
    const ckpt = join(out, "checkpoint.safetensors");
    const cfg = JSON.parse(await Deno.readTextFile(join(out, "checkpoint.json")));
    assert.deepEqual(cfg.state.config.sde, {
      weighting: "likelihood",
      importance: true,
      eps: 1e-5,
      tMax: 1,
      reduce: "sum",
    });
    const pc = await task("sample_sde", [
      "--checkpoint",
      ckpt,
      "--seeds",
      "0-7",
      "--steps",
      "20",
      "--out",
      join(dir, "pc.png"),
    ]);
    assert.equal(pc.code, 0, pc.stderr);
    assert.match(pc.stdout, /8 points, 40 evaluations each/);
    const ode = await task("sample_sde", [
      "--checkpoint",
      ckpt,
      "--seeds",
      "0-7",
      "--ode",
      "--rtol",
      "1e-3",
      "--atol",
      "1e-3",
      "--out",
      join(dir, "ode.png"),
    ]);
    assert.equal(ode.code, 0, ode.stderr);
    assert.ok((await Deno.stat(join(dir, "ode.svg"))).isFile);
    assertUserError(
      await task("sample_sde", ["--checkpoint", ckpt, "--t-start", "0.001", "--eps", "0.01"]),
      /eps = 0.01 must lie in \(0, tStart/,
    );
    assertUserError(
      await task("sample_sde", ["--checkpoint", join(dir, "missing.safetensors")]),
      /missing\.safetensors/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
