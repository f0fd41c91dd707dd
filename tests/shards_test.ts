/**
 * core/shards.ts (parsing, the schedulers' environments, the partition), merged feature sums
 * against brute force, feature shard files, and the checks of eval/merge_shards.ts.
 */
import assert from "node:assert/strict";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { formatSeeds, parseSeeds } from "../core/seeds.ts";
import {
  parseShard,
  resolveShard,
  schedulerEnv,
  shardFromEnv,
  shardPositions,
} from "../core/shards.ts";
import { mergeFeatureSums, StatsAccumulator } from "../eval/feature_stats.ts";
import {
  decodeFeatureShard,
  type FeatureShard,
  loadFeatureShard,
  saveFeatureShard,
} from "../eval/feature_shard_file.ts";
import { mergeFeatureShards } from "../eval/merge_shards.ts";

Deno.test("parseShard() reads i/n and refuses bad values with the fix", () => {
  assert.deepEqual(parseShard("0/4"), { index: 0, count: 4 });
  assert.deepEqual(parseShard(" 3/4 "), { index: 3, count: 4 });
  assert.throws(
    () => parseShard("4/4"),
    (e) => e instanceof UserError && /not below the count 4/.test(e.message),
  );
  assert.throws(() => parseShard("1/0"), /from 1 to/);
  assert.throws(() => parseShard("-1/4"), /is not i\/n; write e\.g\. 0\/4/);
  assert.throws(() => parseShard("1of4"), /is not i\/n/);
});

Deno.test("shardFromEnv() reads Kubernetes' and Slurm's variables, minding the array's min and step", () => {
  assert.equal(shardFromEnv({}), undefined);
  assert.deepEqual(
    shardFromEnv({ JOB_COMPLETION_INDEX: "2", DIFFUSE_SHARD_COUNT: "8" }),
    { index: 2, count: 8 },
  );
  assert.throws(() => shardFromEnv({ JOB_COMPLETION_INDEX: "2" }), /DIFFUSE_SHARD_COUNT is not/);
  const slurm = (id: string, min: string, count: string, step?: string) =>
    shardFromEnv({
      SLURM_ARRAY_TASK_ID: id,
      SLURM_ARRAY_TASK_MIN: min,
      SLURM_ARRAY_TASK_COUNT: count,
      SLURM_ARRAY_TASK_STEP: step,
    });
  assert.deepEqual(slurm("5", "4", "4"), { index: 1, count: 4 }); // --array=4-7
  assert.deepEqual(slurm("6", "0", "4", "2"), { index: 3, count: 4 }); // --array=0-6:2
  assert.throws(() => slurm("5", "0", "4", "2"), /not on the array's grid/);
  assert.throws(() => slurm("7", "0", "4"), /shard index 7 is not below the count 4/);
  assert.throws(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: "x" }), /not a non-negative integer/);
  // --shard wins over the environment.
  assert.deepEqual(resolveShard("1/2", { JOB_COMPLETION_INDEX: "0" }), { index: 1, count: 2 });
  for (const scheduler of ["k8s", "slurm"] as const) {
    for (const shard of [{ index: 0, count: 1 }, { index: 3, count: 5 }]) {
      assert.deepEqual(shardFromEnv(schedulerEnv(shard, scheduler, { slurmMin: 7 })), shard);
    }
  }
});

Deno.test("shardPositions() deals every position to exactly one shard, contiguous and strided", () => {
  for (const mode of ["contiguous", "strided"] as const) {
    for (const [length, count] of [[10, 4], [3, 5], [64, 1], [0, 2], [17, 17]]) {
      const all = Array.from(
        { length: count },
        (_, index) => shardPositions(length, { index, count }, mode),
      );
      const flat = all.flat().sort((a, b) => a - b);
      assert.deepEqual(flat, Array.from({ length }, (_, i) => i), `${mode} ${length}/${count}`);
      const sizes = all.map((s) => s.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced ${sizes}`);
    }
  }
  assert.deepEqual(shardPositions(10, { index: 3, count: 4 }), [8, 9]);
  assert.deepEqual(shardPositions(10, { index: 0, count: 4 }, "strided"), [0, 4, 8]);
});

Deno.test("formatSeeds() writes what parseSeeds() reads back", () => {
  for (const text of ["0-63", "1,5,9", "0-3,10,12-13", "7"]) {
    assert.equal(formatSeeds(parseSeeds(text)), text);
  }
});

/** Brute-force float64 mean and unbiased covariance (two passes). */
function bruteStats(x: Float64Array, d: number) {
  const n = x.length / d, mu = new Float64Array(d), sigma = new Float64Array(d * d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mu[j] += x[r * d + j] / n;
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        sigma[i * d + j] += (x[r * d + i] - mu[i]) * (x[r * d + j] - mu[j]) / (n - 1);
      }
    }
  }
  return { mu, sigma };
}

Deno.test("mergeFeatureSums() of disjoint parts gives the statistics of the whole (brute force)", () => {
  const d = 5, rng = new Rng(3);
  // A large common offset against a small spread: the case the shifts are for.
  const x = new Float64Array(40 * d).map(() => 1000 + rng.normal());
  const parts = [[0, 7], [7, 8], [8, 8], [8, 40]].map(([a, b]) => {
    const acc = new StatsAccumulator({ dim: d, network: "toy" });
    acc.add(x.subarray(a * d, b * d));
    return acc.sums();
  });
  assert.equal(parts[2].count, 0);
  const merged = StatsAccumulator.fromSums(mergeFeatureSums(parts)).finish();
  const want = bruteStats(x, d);
  assert.equal(merged.count, 40);
  for (let i = 0; i < d; i++) assert.ok(Math.abs(merged.mu[i] - want.mu[i]) < 1e-9);
  for (let i = 0; i < d * d; i++) assert.ok(Math.abs(merged.sigma[i] - want.sigma[i]) < 1e-9);
  // Continuing from saved sums equals having seen the rows.
  const whole = new StatsAccumulator({ dim: d, network: "toy" });
  whole.add(x.subarray(0, 7 * d));
  const resumed = StatsAccumulator.fromSums(whole.sums());
  resumed.add(x.subarray(7 * d));
  whole.add(x.subarray(7 * d));
  assert.deepEqual(resumed.finish(), whole.finish());
  assert.throws(
    () => mergeFeatureSums([parts[0], { ...parts[1], network: "other" }]),
    /cannot be merged/,
  );
});

/** A shard of `count` shards over seeds 0..n-1 and reference positions 0..r-1, features = id. */
function fakeShard(index: number, count: number, n: number, r: number, config = { steps: 2 }) {
  const d = 2, c = 3;
  const part = (ids: number[]) => {
    const features = new Float32Array(ids.flatMap((id) => [id, id * id % 7]));
    const acc = new StatsAccumulator({ dim: d, network: "toy" });
    acc.add(features);
    return {
      sums: acc.sums(),
      features,
      logits: new Float32Array(ids.flatMap((id) => [id % 3, 1, 0])),
      ids: Int32Array.from(ids),
    };
  };
  const shard = { index, count };
  return {
    network: "toy",
    featureDim: d,
    numClasses: c,
    shard,
    config,
    samples: part(shardPositions(n, shard, "strided")),
    reference: part(shardPositions(r, shard)),
  } satisfies FeatureShard;
}

Deno.test("feature shard files keep the float64 sums bit for bit", async () => {
  const s = fakeShard(1, 3, 10, 6);
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await saveFeatureShard(path, s);
  assert.deepEqual(await loadFeatureShard(path), s);
  await Deno.remove(path);
  assert.throws(
    () => decodeFeatureShard(new Uint8Array(16), "bad.safetensors"),
    (e) => e instanceof UserError && /bad\.safetensors: .*rerun that shard/.test(e.message),
  );
});

Deno.test("mergeFeatureShards() puts rows in seed order and refuses missing, duplicated and mismatched shards", () => {
  const n = 10,
    r = 6,
    expected = {
      samples: Array.from({ length: n }, (_, i) => i),
      reference: Array.from({ length: r }, (_, i) => i),
    };
  const files = [0, 1, 2].map((i) => ({ path: `s${i}`, shard: fakeShard(i, 3, n, r) }));
  const merged = mergeFeatureShards(files, expected);
  assert.deepEqual(
    [...merged.samples.features.features].filter((_, k) => k % 2 === 0),
    expected.samples,
  );
  const one = fakeShard(0, 1, n, r);
  const whole = StatsAccumulator.fromSums(one.samples.sums).finish();
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(merged.samples.stats.sigma[i] - whole.sigma[i]) < 1e-12);
  }
  const refuses = (list: typeof files, pattern: RegExp) =>
    assert.throws(
      () => mergeFeatureShards(list, expected),
      (e) => e instanceof UserError && pattern.test(e.message),
    );
  refuses([files[0], files[2]], /1 of 3 shards missing \(1\/3\); run eval with --shard 1\/3/);
  refuses(
    [...files, { path: "copy", shard: files[1].shard }],
    /shard 1\/3 is there twice \(s1 and copy\)/,
  );
  refuses(
    [files[0], files[1], { path: "s2", shard: fakeShard(2, 3, n, r, { steps: 4 }) }],
    /s2 and s0 come from different runs \(steps 2 vs 4\)/,
  );
  refuses(
    [...files, { path: "t", shard: fakeShard(1, 2, n, r) }],
    /t is shard 1\/2 but s0 is one of 3/,
  );
  assert.throws(
    () => mergeFeatureShards(files, { ...expected, samples: expected.samples.slice(0, 9) }),
    /holds seed 9, outside this run's samples/,
  );
  assert.throws(
    () => mergeFeatureShards(files, { ...expected, samples: [...expected.samples, 10] }),
    /no shard holds seed 10/,
  );
  assert.throws(() => mergeFeatureShards([], expected), /no feature shard files/);
});
