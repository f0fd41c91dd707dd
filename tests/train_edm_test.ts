import assert from "node:assert/strict";
import { assertNothingUnconfirmedToResume } from "./_diverged_run.ts";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { EDM_PRESETS, type EdmTrainConfig } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { trainSteps } from "./_train_steps.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const TOY: EdmTrainConfig = {
  ...EDM_PRESETS.toy,
  data: "toy:eight-gaussians",
  batchSize: 128,
  kimg: 1000,
  lrRampupKimg: 0.5,
  checkpointKimg: 1000,
  sampleKimg: 1000,
  logEvery: 10,
  gridImages: 16,
  gridSteps: 4,
};

const run = (config: EdmTrainConfig, runDir: string, maxSteps: number, resume = false) =>
  trainSteps(trainEdm, config, { runDir, maxSteps, resume });

Deno.test("trainEdm() lowers the loss on toy data and leaks no tensor per step", async () => {
  const dir = await Deno.makeTempDir();
  const { losses, tensors, result } = await run(TOY, dir, 150);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = mean(losses.slice(0, 20)), last = mean(losses.slice(-20));
  assert.ok(last < 0.7 * first, `loss fell from ${first} to only ${last}`);
  assert.equal(result.step, 150);
  // After the first steps (lazily created state), the tensor count stays flat.
  assert.deepEqual(new Set(tensors.slice(5)).size, 1, `tensor counts ${[...new Set(tensors)]}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainEdm() resumed from a checkpoint continues with exactly the same losses", async () => {
  const straight = await Deno.makeTempDir(), split = await Deno.makeTempDir();
  const a = await run(TOY, straight, 12);
  const b1 = await run(TOY, split, 7);
  const b2 = await run(TOY, split, 5, true);
  assert.deepEqual(b1.losses, a.losses.slice(0, 7));
  assert.deepEqual(b2.losses, a.losses.slice(7));
  assert.equal(b2.result.step, 12);
  await Deno.remove(straight, { recursive: true });
  await Deno.remove(split, { recursive: true });
});

Deno.test("trainEdm() refuses to overwrite a run directory's checkpoint without resume", async () => {
  const dir = await Deno.makeTempDir();
  await run(TOY, dir, 2);
  await assert.rejects(
    () => run(TOY, dir, 2),
    (e) => e instanceof UserError && /--resume/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("trainEdm() stops on a non-finite loss and leaves no unconfirmed checkpoint to resume from", async () => {
  const dir = await Deno.makeTempDir();
  // A learning rate of 1e30 sends the weights to infinity within a few steps; a checkpoint is
  // written after every step, so the last good one precedes the blow-up.
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

Deno.test("loadDenoiser() rebuilds the trained network from its checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await run(TOY, dir, 3);
  const loaded = await loadDenoiser(join(dir, "checkpoint.safetensors"));
  assert.deepEqual(loaded.shape, [2]);
  assert.equal(loaded.state.step, 3);
  const y = tf.tidy(() => loaded.denoiser(tf.ones([4, 2]), tf.fill([4], 1) as tf.Tensor1D));
  assert.deepEqual(y.shape, [4, 2]);
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  y.dispose();
  loaded.dispose();
  await Deno.remove(dir, { recursive: true });
});
