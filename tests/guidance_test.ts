import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import type { Conditioning, Denoiser } from "../core/types.ts";
import { guidedDenoiser } from "../models/guidance.ts";
import { dropLabels } from "../training/label_dropout.ts";
import { UserError } from "../core/errors.ts";
import { checkGuidance } from "../tasks/_guidance.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** A class-conditional toy denoiser: D = 0.5 x + labels . means (no labels: 0.5 x + 0.1). */
const MEANS = tf.tensor2d([[1, 2, 3], [-1, 0, 4]]);
const conditional: Denoiser = (x, sigma, cond?: Conditioning) =>
  tf.tidy(() => {
    const base = tf.mul(x, tf.reshape(tf.div(1, tf.add(sigma, 1)), [-1, 1]));
    const labels = cond?.classLabels;
    return labels ? tf.add(base, tf.matMul(labels, MEANS)) : tf.add(base, 0.1);
  });

function values(t: tf.Tensor): number[] {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

Deno.test("guidedDenoiser() with w = 0 is the unconditional and with w = 1 the conditional denoiser, exactly", () => {
  const x = tf.tensor2d([[0.3, -1, 2], [1, 1, 1]]);
  const sigma = tf.tensor1d([0.7, 2]);
  const labels = tf.tensor2d([[1, 0], [0, 1]]);
  const cond = { classLabels: labels };
  const nullCond = { classLabels: tf.zeros([2, 2]) as tf.Tensor2D };
  assert.deepEqual(
    values(guidedDenoiser(conditional, { scale: 0 })(x, sigma, cond)),
    values(conditional(x, sigma, nullCond)),
  );
  assert.deepEqual(
    values(guidedDenoiser(conditional, { scale: 1 })(x, sigma, cond)),
    values(conditional(x, sigma, cond)),
  );
  // w = 3: D_u + 3 (D_c - D_u), computed by hand: D_c - D_u = labels . means here.
  const du = values(conditional(x, sigma, nullCond));
  const diff = [[1, 2, 3], [-1, 0, 4]].flat();
  const got = values(guidedDenoiser(conditional, { scale: 3 })(x, sigma, cond));
  got.forEach((v, i) => assert.ok(Math.abs(v - (du[i] + 3 * diff[i])) < 1e-5, `${v}`));
  // Without class labels it passes through; no tensors leak.
  const before = tf.memory().numTensors;
  values(guidedDenoiser(conditional, { scale: 3 })(x, sigma));
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => guidedDenoiser(conditional, { scale: -1 }), RangeError);
  tf.dispose([x, sigma, labels, nullCond.classLabels]);
});

Deno.test("dropLabels() zeroes rows with probability p and leaves the rest untouched", () => {
  const n = 4000;
  const ids = tf.tensor1d(Array.from({ length: n }, (_, i) => i % 3), "int32");
  const labels = tf.cast(tf.oneHot(ids, 3), "float32") as tf.Tensor2D;
  ids.dispose();
  const dropped = dropLabels(labels, 0.25, new Rng(1));
  const v = dropped.dataSync(), orig = labels.dataSync();
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const row = v.subarray(3 * i, 3 * i + 3);
    const sum = row[0] + row[1] + row[2];
    if (sum === 0) zeros++;
    else assert.deepEqual(Array.from(row), Array.from(orig.subarray(3 * i, 3 * i + 3)));
  }
  // Binomial(4000, 0.25): sd ~27.
  assert.ok(Math.abs(zeros - 1000) < 110, `dropped ${zeros} of ${n}`);
  assert.equal(dropLabels(labels, 0, new Rng(1)), labels);
  assert.throws(() => dropLabels(labels, 1, new Rng(1)), RangeError);
  tf.dispose([labels, dropped]);
});

Deno.test("checkGuidance() refuses unconditional and label-dropout-free checkpoints, naming the fix", () => {
  const conditional = (condDrop?: number) => ({ numClasses: 10, state: { config: { condDrop } } });
  checkGuidance("eval", conditional(0.1), 2);
  checkGuidance("eval", { numClasses: 0, state: { config: {} } }, undefined);
  assert.throws(
    () => checkGuidance("eval", { numClasses: 0, state: { config: {} } }, 2),
    (e) =>
      e instanceof UserError &&
      /^eval: --guidance needs a class-conditional checkpoint/.test(e.message),
  );
  for (const drop of [0, undefined]) {
    assert.throws(
      () => checkGuidance("sample:edm", conditional(drop), 1.5),
      (e) =>
        e instanceof UserError &&
        /^sample:edm: --guidance needs a checkpoint trained with label dropout \(this one: --cond-drop 0,.*train with --cond-drop 0\.1 or drop --guidance$/
          .test(e.message),
    );
  }
});
