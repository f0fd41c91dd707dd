import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { featureStats, StatsAccumulator } from "../eval/feature_stats.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** Features with a large common offset (as post-ReLU features have), n x d. */
function features(n: number, d: number, rng: Rng): Float32Array {
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const z = rng.normal();
    for (let j = 0; j < d; j++) x[i * d + j] = 1000 + j + rng.normal() * (1 + j / d) + z * (j % 3);
  }
  return x;
}

/** Two-pass float64 mean and unbiased covariance, written out directly. */
function naiveStats(x: Float32Array, n: number, d: number): { mu: number[]; sigma: number[] } {
  const mu = new Array(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += x[i * d + j] / n;
  const sigma = new Array(d * d).fill(0);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        sigma[a * d + b] += (x[i * d + a] - mu[a]) * (x[i * d + b] - mu[b]) / (n - 1);
      }
    }
  }
  return { mu, sigma };
}

function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0, err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}

Deno.test("featureStats() equals the two-pass mean and unbiased covariance despite a large offset", () => {
  const n = 300, d = 7, x = features(n, d, new Rng(1));
  const s = featureStats(x, { dim: d, network: "toy" });
  const ref = naiveStats(x, n, d);
  assert.equal(s.count, n);
  assert.equal(s.network, "toy");
  assert.ok(maxRelError(s.mu, ref.mu) < 1e-14);
  assert.ok(maxRelError(s.sigma, ref.sigma) < 1e-12, `${maxRelError(s.sigma, ref.sigma)}`);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) assert.equal(s.sigma[a * d + b], s.sigma[b * d + a]);
  }
});

Deno.test("StatsAccumulator over uneven batches (and an empty one) equals one-shot featureStats()", () => {
  const n = 600, d = 9, x = features(n, d, new Rng(2));
  const oneShot = featureStats(x, { dim: d, network: "toy" });
  const acc = new StatsAccumulator({ dim: d, network: "toy" });
  const cuts = [0, 1, 2, 2, 259, 517, 600];
  for (let i = 1; i < cuts.length; i++) acc.add(x.subarray(cuts[i - 1] * d, cuts[i] * d));
  assert.equal(acc.count, n);
  const streamed = acc.finish();
  assert.ok(maxRelError(streamed.mu, oneShot.mu) < 1e-15);
  assert.ok(maxRelError(streamed.sigma, oneShot.sigma) < 1e-13);
  // finish() does not end the stream: more data changes the result.
  acc.add(x.subarray(0, d));
  assert.equal(acc.finish().count, n + 1);
});

Deno.test("StatsAccumulator rejects bad input with messages that name the problem", () => {
  const acc = new StatsAccumulator({ dim: 3, network: "toy" });
  assert.throws(() => acc.finish(), /at least 2/);
  assert.throws(() => acc.add(new Float32Array(4)), /multiple of dim 3/);
  assert.throws(() => acc.add(new Float32Array([0, NaN, 0])), /NaN/);
  assert.throws(() => new StatsAccumulator({ dim: 0, network: "toy" }), RangeError);
  assert.throws(() => new StatsAccumulator({ dim: 2, network: "" }), TypeError);
});
