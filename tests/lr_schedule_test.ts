import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { rampedLr } from "../training/run_loop.ts";
import { validateRunConfig } from "../training/run_config.ts";
import { EDM_PRESETS, type EdmTrainConfig } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";
import { trainSteps } from "./_train_steps.ts";

await selectBackend({ backend: "wasm", log: () => {} });

/** The schedule written piecewise, in images: a ramp up, a flat top, a ramp down to 0. */
function piecewise(lr: number, rampup: number, kimg: number, decay: number, seen: number) {
  const up = rampup === 0 || seen >= rampup * 1000 ? 1 : seen / (rampup * 1000);
  const start = (kimg - decay) * 1000;
  let down = 1;
  if (decay > 0 && seen >= kimg * 1000) down = 0;
  else if (decay > 0 && seen > start) down = (kimg * 1000 - seen) / (decay * 1000);
  return lr * up * down;
}

Deno.test("rampedLr() matches the piecewise warm-up and linear decay at every image count", () => {
  const cases = [
    { lr: 2e-3, lrRampupKimg: 2, kimg: 120, lrDecayKimg: 40 },
    { lr: 1e-4, lrRampupKimg: 0, kimg: 10, lrDecayKimg: 10 },
    // Warm-up and decay overlap: the rate is their product.
    { lr: 1, lrRampupKimg: 6, kimg: 10, lrDecayKimg: 8 },
    { lr: 1e-3, lrRampupKimg: 5, kimg: 50, lrDecayKimg: 0 },
  ];
  for (const c of cases) {
    for (let seen = 0; seen <= c.kimg * 1000 + 500; seen += 250) {
      const want = piecewise(c.lr, c.lrRampupKimg, c.kimg, c.lrDecayKimg, seen);
      const got = rampedLr(c, seen);
      assert.ok(Math.abs(got - want) <= 1e-12 * c.lr, `${JSON.stringify(c)} at ${seen}: ${got}`);
    }
  }
  // Without a decay the rate stays at its peak after the warm-up, whatever kimg says.
  assert.equal(rampedLr({ lr: 3e-4, lrRampupKimg: 1 }, 1e9), 3e-4);
});

Deno.test("validateRunConfig() rejects a decay longer than the run or negative, naming the field", () => {
  const base = { ...EDM_PRESETS.mnist, kimg: 20 };
  validateRunConfig({ ...base, lrDecayKimg: 20 });
  for (const bad of [21, -1, Number.NaN]) {
    assert.throws(
      () => validateRunConfig({ ...base, lrDecayKimg: bad }),
      (e) => e instanceof RangeError && /lrDecayKimg must be in \[0, kimg = 20\]/.test(e.message),
    );
  }
});

Deno.test("trainEdm() steps Adam at the decayed rate and logs it, falling linearly to 0", async () => {
  const dir = await Deno.makeTempDir(), flat = await Deno.makeTempDir();
  const config: EdmTrainConfig = {
    ...EDM_PRESETS.toy,
    data: "toy:eight-gaussians",
    batchSize: 100,
    kimg: 2,
    lr: 1e-3,
    lrRampupKimg: 0,
    lrDecayKimg: 1,
    checkpointKimg: 1000,
    sampleKimg: 1000,
    logEvery: 1,
    gridImages: 4,
    gridSteps: 2,
  };
  const decayed = await trainSteps(trainEdm, config, { runDir: dir, maxSteps: 20 });
  const constant = await trainSteps(trainEdm, { ...config, lrDecayKimg: 0 }, {
    runDir: flat,
    maxSteps: 20,
  });
  // The first 11 updates (images before them < 1100) are at the full rate, so the losses of the
  // first 12 steps agree; from the 12th update on the rates differ, and so does every loss.
  assert.deepEqual(decayed.losses.slice(0, 12), constant.losses.slice(0, 12));
  for (let i = 12; i < 20; i++) {
    assert.notEqual(decayed.losses[i], constant.losses[i], `step ${i + 1}`);
  }
  const rows = (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
    .map((line) => JSON.parse(line) as { kimg: number; lr: number });
  assert.equal(rows.length, 20);
  for (const { kimg, lr } of rows) {
    const want = kimg <= 1 ? 1e-3 : 1e-3 * (2 - kimg);
    assert.ok(Math.abs(lr - want) < 1e-12, `at ${kimg} kimg: lr ${lr}, want ${want}`);
  }
  assert.equal(rows.at(-1)?.lr, 0);
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(flat, { recursive: true });
});
