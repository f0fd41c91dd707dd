import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { inceptionScore } from "../eval/inception_score.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** n samples of C classes, sample i confidently of class i mod C (logit gap `gap`). */
function confidentLogits(n: number, c: number, gap: number): Float32Array {
  const x = new Float32Array(n * c);
  for (let i = 0; i < n; i++) x[i * c + (i % c)] = gap;
  return x;
}

Deno.test("inceptionScore() of identical (uniform) predictions is 1", () => {
  const { mean, std } = inceptionScore(new Float32Array(50 * 7), { numClasses: 7, splits: 5 });
  assert.ok(Math.abs(mean - 1) < 1e-12);
  assert.ok(std < 1e-12);
});

Deno.test("inceptionScore() of confident predictions spread evenly over C classes is C", () => {
  for (const c of [2, 10]) {
    const fromLogits = inceptionScore(confidentLogits(10 * c * 3, c, 60), { numClasses: c });
    assert.ok(Math.abs(fromLogits.mean - c) < 1e-9 * c, `${fromLogits.mean}`);
    assert.ok(fromLogits.std < 1e-9);
    const oneHot = new Float64Array(4 * c * c);
    for (let i = 0; i < 4 * c; i++) oneHot[i * c + (i % c)] = 1;
    const fromProbs = inceptionScore(oneHot, { numClasses: c, splits: 4, from: "probabilities" });
    assert.ok(Math.abs(fromProbs.mean - c) < 1e-12);
  }
});

Deno.test("inceptionScore() matches the closed form 2 a^a (1 - a)^(1 - a) for mirrored two-class predictions", () => {
  const a = 0.8, n = 20;
  const p = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    p[2 * i] = i % 2 ? a : 1 - a;
    p[2 * i + 1] = i % 2 ? 1 - a : a;
  }
  const expected = 2 * a ** a * (1 - a) ** (1 - a);
  const { mean } = inceptionScore(p, { numClasses: 2, splits: 2, from: "probabilities" });
  assert.ok(Math.abs(mean - expected) < 1e-12, `${mean} vs ${expected}`);
  // The same predictions as logits (log-probabilities are valid logits).
  const logits = p.map(Math.log);
  assert.ok(Math.abs(inceptionScore(logits, { numClasses: 2, splits: 2 }).mean - expected) < 1e-12);
});

Deno.test("inceptionScore() scores each consecutive split on its own: mean and population std", () => {
  // First half uniform (score 1), second half confident over C = 4 classes (score 4).
  const c = 4, half = 8;
  const x = new Float32Array(2 * half * c);
  x.set(confidentLogits(half, c, 80), half * c);
  const { mean, std } = inceptionScore(x, { numClasses: c, splits: 2 });
  assert.ok(Math.abs(mean - 2.5) < 1e-9);
  assert.ok(Math.abs(std - 1.5) < 1e-9);
  // One split mixes both halves: p(y) = mixture, a different (closed-form) value.
  const one = inceptionScore(x, { numClasses: c, splits: 1 }).mean;
  // p(y) is uniform (1/4 each): uniform rows have KL 0, confident rows KL log 4, so the mean KL
  // is log(4) / 2 and IS = 2.
  assert.ok(Math.abs(one - 2) < 1e-9, `${one}`);
});

Deno.test("inceptionScore() rejects malformed predictions with messages that name the fix", () => {
  assert.throws(() => inceptionScore(new Float32Array(7), { numClasses: 2 }), /multiple/);
  assert.throws(() => inceptionScore(new Float32Array(8), { numClasses: 2, splits: 5 }), /splits/);
  assert.throws(
    () =>
      inceptionScore(new Float32Array([0.5, 0.2]), {
        numClasses: 2,
        splits: 1,
        from: "probabilities",
      }),
    /sum to/,
  );
  assert.throws(
    () => inceptionScore(new Float32Array([NaN, 0]), { numClasses: 2, splits: 1 }),
    RangeError,
  );
});
