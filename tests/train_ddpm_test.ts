import assert from "node:assert/strict";
import { assertNothingUnconfirmedToResume } from "./_diverged_run.ts";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { DDPM_PRESETS, type DdpmTrainConfig } from "../training/ddpm_config.ts";
import { type DdpmRunState, trainDdpm } from "../training/train_ddpm.ts";
import { readRunCheckpoint } from "../training/run_checkpoint.ts";
import { loadDdpm } from "../training/load_ddpm.ts";
import { trainEdm } from "../training/train_edm.ts";
import { EDM_PRESETS } from "../training/edm_config.ts";
import { trainSteps } from "./_train_steps.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const TOY: DdpmTrainConfig = {
  ...DDPM_PRESETS.toy,
  data: "toy:two-moons",
  T: 100,
  batchSize: 128,
  kimg: 1000,
  lrRampupKimg: 0.5,
  checkpointKimg: 1000,
  sampleKimg: 1000,
  logEvery: 10,
  gridImages: 16,
  gridSteps: 4,
};
const quiet = { progress: false, log: () => {} };

const run = (config: DdpmTrainConfig, runDir: string, maxSteps: number, resume = false) =>
  trainSteps(trainDdpm, config, { runDir, maxSteps, resume });

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test("trainDdpm() lowers L_simple on toy data and leaks no tensor per step", async () => {
  const dir = await Deno.makeTempDir();
  const { losses, tensors, result } = await run(TOY, dir, 150);
  const first = mean(losses.slice(0, 20)), last = mean(losses.slice(-20));
  // L_simple starts near E||eps||^2 / D = 1 for an untrained predictor.
  assert.ok(first > 0.7, `first losses ${first}`);
  assert.ok(last < 0.75 * first, `loss fell from ${first} to only ${last}`);
  assert.equal(result.step, 150);
  assert.deepEqual(new Set(tensors.slice(5)).size, 1, `tensor counts ${[...new Set(tensors)]}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainDdpm() resumed from a checkpoint continues with exactly the same losses", async () => {
  for (const loss of ["simple", "vlb"] as const) {
    const config = { ...TOY, loss, T: 8 };
    const straight = await Deno.makeTempDir(), split = await Deno.makeTempDir();
    const a = await run(config, straight, 12);
    const b1 = await run(config, split, 7);
    const b2 = await run(config, split, 5, true);
    assert.deepEqual(b1.losses, a.losses.slice(0, 7), loss);
    assert.deepEqual(b2.losses, a.losses.slice(7), loss);
    assert.equal(b2.result.step, 12);
    await Deno.remove(straight, { recursive: true });
    await Deno.remove(split, { recursive: true });
  }
});

Deno.test("trainDdpm() with the bound samples t by importance once the history is full", async () => {
  const dir = await Deno.makeTempDir();
  // T = 4 and 128 draws a step: every step's 10-value history fills within the first steps.
  const config: DdpmTrainConfig = { ...TOY, loss: "vlb", T: 4 };
  const { losses, tensors } = await run(config, dir, 30);
  assert.ok(losses.every(Number.isFinite));
  assert.deepEqual(new Set(tensors.slice(5)).size, 1, `tensor counts ${[...new Set(tensors)]}`);
  const ckpt = await readRunCheckpoint<DdpmRunState>(join(dir, "checkpoint.safetensors"));
  const history = ckpt.state.importance!;
  ckpt.dispose();
  assert.equal(history.T, 4);
  // 30 steps x 128 draws, each recorded once.
  assert.equal(history.counts.reduce((a, b) => a + b, 0), 30 * 128);
  // Importance sampling is on: the draws are no longer uniform, the decoder term L_0 (t = 1,
  // largest for continuous data near the data) gets more than its 1/4 share.
  assert.ok(history.counts[0] > 30 * 128 / 4, `counts ${history.counts}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainDdpm() stops on a non-finite loss and leaves no unconfirmed checkpoint to resume from", async () => {
  const dir = await Deno.makeTempDir();
  const config = { ...TOY, lr: 1e30, lrRampupKimg: 0, checkpointKimg: TOY.batchSize / 1000 };
  let err: unknown;
  try {
    await run(config, dir, 100);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
  await assertNothingUnconfirmedToResume(dir, (err as Error).message);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainDdpm() refuses to overwrite a run or resume with another T", async () => {
  const dir = await Deno.makeTempDir();
  await run(TOY, dir, 2);
  await assert.rejects(
    () => run(TOY, dir, 2),
    (e) => e instanceof UserError && /--resume/.test(e.message),
  );
  await assert.rejects(
    () => run({ ...TOY, T: 50 }, dir, 2, true),
    (e) => e instanceof UserError && /T=100/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadDdpm() rebuilds the eps predictor and its process, and refuses EDM checkpoints", async () => {
  const dir = await Deno.makeTempDir();
  await run(TOY, dir, 3);
  const loaded = await loadDdpm(join(dir, "checkpoint.safetensors"));
  assert.deepEqual(loaded.shape, [2]);
  assert.equal(loaded.process.T, 100);
  assert.equal(loaded.state.step, 3);
  const before = tf.memory().numTensors;
  const e = tf.tidy(() => loaded.eps(tf.ones([4, 2]), tf.tensor1d([1, 10, 50, 100])));
  assert.deepEqual(e.shape, [4, 2]);
  assert.ok(Array.from(e.dataSync()).every(Number.isFinite));
  e.dispose();
  assert.equal(tf.memory().numTensors, before);
  loaded.dispose();
  const edmDir = await Deno.makeTempDir();
  await trainEdm({ ...EDM_PRESETS.toy, kimg: 1 }, { ...quiet, runDir: edmDir, maxSteps: 1 });
  await assert.rejects(
    () => loadDdpm(join(edmDir, "checkpoint.safetensors")),
    (e) => e instanceof UserError && /train:edm/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(edmDir, { recursive: true });
});
