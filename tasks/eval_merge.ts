/**
 * `deno task eval:merge <dir>`: the figures of a sharded evaluation (`eval --shard i/n`,
 * core/shards.ts). It reads every `shard-*-of-*.safetensors` in the folder, checks that the
 * shards are one run (one configuration, one count, each index once) and cover the seeds and the
 * reference set exactly once (eval/merge_shards.ts), then computes FD from the merged float64 sums
 * and IS, KID and precision/recall from the features in seed order: the one-process `eval`'s
 * figures. In a folder of sampled images with shard records (`sample:* --shard`) it checks those
 * records cover the seeds exactly once.
 *
 * @module
 */
import { join } from "node:path";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { selectBackend } from "../core/engine.ts";
import { callerPath } from "../core/paths.ts";
import { Rng } from "../core/rng.ts";
import { parseSeeds } from "../core/seeds.ts";
import { describeDifferences } from "../core/shards.ts";
import { compareFeatures } from "../eval/evaluate.ts";
import { loadFeatureShard } from "../eval/feature_shard_file.ts";
import { mergeFeatureShards } from "../eval/merge_shards.ts";
import { readSampleShard, type SampleShardRecord } from "./_sample_shard.ts";
import { printReport, writeJson } from "./_eval_report.ts";
import { BACKEND_FLAG } from "./_flags.ts";
import { runTask } from "./_main.ts";

const FLAGS = { backend: BACKEND_FLAG } as const;

const HELP = {
  task: "eval:merge",
  usage: "deno task eval:merge <dir> [flags]",
  summary:
    "Merges the shards of `eval --shard i/n --out-dir <dir>` into the one-process figures\n" +
    "(FD, IS, KID, precision/recall), after checking that they cover the seeds exactly once\n" +
    "with one configuration; writes <dir>/eval.json. On a folder of sampled images it checks\n" +
    "the sampling shards' records instead.",
  examples: [
    "deno task eval:merge runs/eval-sharded",
    "deno task eval:merge out/images       # after sample:edm --shard i/n --images-dir out/images",
  ],
};

const SHARD_FILE = /^shard-\d+-of-\d+\.(safetensors|json)$/;

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const dirArg = args[0] !== undefined && !args[0].startsWith("--") ? args[0] : undefined;
  const f = parseFlags(dirArg === undefined ? args : args.slice(1), FLAGS, { task: "eval:merge" });
  if (dirArg === undefined) {
    throw new UserError(
      "eval:merge: name the folder of shards, e.g. deno task eval:merge runs/eval",
    );
  }
  const dir = callerPath(dirArg);
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => SHARD_FILE.test(n)).sort();
  } catch {
    throw new UserError(`eval:merge: cannot read folder ${dir}; check the path`);
  }
  const stats = names.filter((n) => n.endsWith(".safetensors"));
  if (stats.length === 0) {
    const records = names.filter((n) => n.endsWith(".json"));
    if (records.length === 0) {
      throw new UserError(
        `eval:merge: no shard files (shard-<i>-of-<n>.safetensors or .json) in ${dir}; run ` +
          `eval --shard i/n --out-dir ${dir} (or sample:* --shard i/n --images-dir ${dir}) first`,
      );
    }
    return await checkSampleShards(dir, records);
  }
  const shards = [];
  for (const name of stats) {
    const path = join(dir, name);
    shards.push({ path, shard: await loadFeatureShard(path) });
  }
  const config = shards[0].shard.config;
  const n = Number(config.n), seed = Number(config.seed), refCount = Number(config.refCount);
  const merged = mergeFeatureShards(shards, {
    samples: Array.from({ length: n }, (_, i) => seed + i),
    reference: Array.from({ length: refCount }, (_, i) => i),
  });
  await selectBackend({ backend: f.backend });
  const report = await compareFeatures(merged.reference.features, merged.samples.features, {
    network: { name: merged.network, featureDim: merged.featureDim, numClasses: merged.numClasses },
    rng: new Rng(seed),
    kidSubsets: Number(config["kid-subsets"]),
    kidSubsetSize: Number(config["kid-size"]),
    k: Number(config.k),
    stats: { reference: merged.reference.stats, samples: merged.samples.stats },
  });
  const refName = `${String(config.data)} (${refCount} images)`;
  printReport(
    report,
    `${n} samples from ${merged.shardCount} shards, ${config.sampler} ${config.steps} steps`,
    refName,
  );
  const path = join(dir, "eval.json");
  await writeJson(path, {
    checkpoint: config.checkpoint,
    reference: refName,
    sampler: config.sampler,
    shards: merged.shardCount,
    rows: [{ steps: config.steps, report }],
  });
  console.log(`wrote ${path}`);
});

// The records of sampling shards: one run, every index once, the seeds covered exactly once.
async function checkSampleShards(dir: string, names: string[]): Promise<void> {
  const records: { path: string; r: SampleShardRecord }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    records.push({ path, r: (await readSampleShard(path))! });
  }
  const first = records[0];
  const count = first.r.shard.count;
  for (const { path, r } of records) {
    const differs = describeDifferences(first.r.config, r.config) ||
      (r.shard.count !== count ? `shard count ${count} vs ${r.shard.count}` : "");
    if (differs) {
      throw new UserError(
        `eval:merge: ${path} and ${first.path} come from different runs (${differs}); give each ` +
          `run its own --images-dir`,
      );
    }
  }
  const have = new Set(records.map(({ r }) => r.shard.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.has(i));
  if (missing.length > 0) {
    throw new UserError(
      `eval:merge: ${missing.length} of ${count} sampling shards unfinished (${
        missing.slice(0, 8).map((i) => `${i}/${count}`).join(", ")
      }); rerun them with --shard <i>/${count}`,
    );
  }
  const owner = new Map<number, string>();
  for (const { path, r } of records) {
    for (const s of parseSeeds(r.shardSeeds || "0").slice(0, r.images)) {
      if (owner.has(s)) {
        throw new UserError(`eval:merge: seed ${s} is in both ${owner.get(s)} and ${path}`);
      }
      owner.set(s, path);
    }
  }
  const all = parseSeeds(String(first.r.config.seeds));
  const gap = all.find((s) => !owner.has(s));
  if (gap !== undefined || owner.size !== all.length) {
    throw new UserError(
      `eval:merge: the shards cover ${owner.size} of ${all.length} seeds (first missing: ${gap})`,
    );
  }
  console.log(
    `${dir}: ${count} sampling shards, seeds ${first.r.config.seeds} each exactly once ` +
      `(${all.length} images); score them with deno task eval --images ${dir}`,
  );
}
