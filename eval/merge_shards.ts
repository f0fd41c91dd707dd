/**
 * Merging the feature shards of one evaluation (eval/feature_shard_file.ts) into the features and
 * statistics of the whole, after checking that the shards belong together: one configuration,
 * one shard count, every index once, and their rows covering the expected seeds and reference
 * positions exactly once. Rows come back in the expected order (the one-process run's), so KID,
 * IS and precision/recall on them are the one-process figures; the Frechet statistics come from
 * the merged float64 sums (eval/feature_stats.ts {@linkcode mergeFeatureSums}).
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { describeDifferences } from "../core/shards.ts";
import { mergeFeatureSums, StatsAccumulator } from "./feature_stats.ts";
import type { FeaturePart, FeatureShard } from "./feature_shard_file.ts";
import type { ExtractedFeatures } from "./evaluate.ts";
import type { FeatureStats } from "./types.ts";

/** A shard and the file it came from (named in messages). */
export interface SourcedShard {
  /** The file. */
  path: string;
  /** Its contents. */
  shard: FeatureShard;
}

/** The ids the merged shards must cover, each exactly once, in this order. */
export interface ExpectedIds {
  /** Seeds of the generated samples. */
  samples: readonly number[];
  /** Positions in the reference set. */
  reference: readonly number[];
}

/** One merged feature set. */
export interface MergedPart {
  /** Features and logits in the expected order. */
  features: ExtractedFeatures;
  /** Frechet statistics from the merged sums. */
  stats: FeatureStats;
}

/** What {@linkcode mergeFeatureShards} returns. */
export interface MergedShards {
  /** The shards' common configuration. */
  config: Record<string, unknown>;
  /** Feature network name. */
  network: string;
  /** Feature width. */
  featureDim: number;
  /** Classes of the logits. */
  numClasses: number;
  /** Number of shards merged. */
  shardCount: number;
  /** The samples. */
  samples: MergedPart;
  /** The reference set. */
  reference: MergedPart;
}

/**
 * Checks and merges the shards of one evaluation.
 *
 * @param shards Every shard file of the run.
 * @param expected The ids to cover.
 * @returns Features in the expected order and merged statistics.
 * @throws {UserError} For no shards, two configurations, a missing or duplicated shard, or rows
 *   that miss, repeat or stray outside the expected ids; each message names the files and the fix.
 * @example
 * ```ts ignore
 * const merged = mergeFeatureShards(shards, { samples: seeds, reference: positions });
 * ```
 */
export function mergeFeatureShards(
  shards: readonly SourcedShard[],
  expected: ExpectedIds,
): MergedShards {
  if (shards.length === 0) throw new UserError("no feature shard files to merge");
  const [first] = shards;
  const { config, network, featureDim, numClasses } = first.shard;
  const count = first.shard.shard.count;
  for (const { path, shard } of shards) {
    const differs = describeDifferences(first.shard.config, shard.config) ||
      (shard.network !== network ? `network ${network} vs ${shard.network}` : "");
    if (differs) {
      throw new UserError(
        `${path} and ${first.path} come from different runs (${differs}); merge one run's ` +
          `shards, each in its own --out-dir`,
      );
    }
    if (shard.shard.count !== count) {
      throw new UserError(
        `${path} is shard ${shard.shard.index}/${shard.shard.count} but ${first.path} is one of ` +
          `${count}: rerun every shard with one count, in a fresh --out-dir`,
      );
    }
  }
  const byIndex = new Map<number, string>();
  for (const { path, shard } of shards) {
    const other = byIndex.get(shard.shard.index);
    if (other !== undefined) {
      throw new UserError(
        `shard ${shard.shard.index}/${count} is there twice (${other} and ${path}); delete one`,
      );
    }
    byIndex.set(shard.shard.index, path);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    const list = missing.slice(0, 8).map((i) => `${i}/${count}`).join(", ");
    throw new UserError(
      `${missing.length} of ${count} shards missing (${list}${
        missing.length > 8 ? ", ..." : ""
      }); ` +
        `run eval with --shard ${missing[0]}/${count} (and the others) first`,
    );
  }
  const merge = (what: "samples" | "reference"): MergedPart => {
    const ids = expected[what];
    const position = new Map<number, number>();
    ids.forEach((id, p) => position.set(id, p));
    const seen = new Array<string | undefined>(ids.length);
    const d = featureDim, c = numClasses;
    const features = new Float32Array(ids.length * d);
    const logits = c > 0 ? new Float32Array(ids.length * c) : undefined;
    const name = what === "samples" ? "seed" : "reference image";
    for (const { path, shard } of shards) {
      const part: FeaturePart = shard[what];
      part.ids.forEach((id, row) => {
        const p = position.get(id);
        if (p === undefined) {
          throw new UserError(`${path} holds ${name} ${id}, outside this run's ${what}`);
        }
        if (seen[p] !== undefined) {
          throw new UserError(
            `${name} ${id} is in both ${seen[p]} and ${path}; delete one run's shards`,
          );
        }
        seen[p] = path;
        features.set(part.features.subarray(row * d, (row + 1) * d), p * d);
        if (logits) logits.set(part.logits!.subarray(row * c, (row + 1) * c), p * c);
      });
    }
    const gap = seen.findIndex((s) => s === undefined);
    if (gap >= 0) {
      throw new UserError(`no shard holds ${name} ${ids[gap]}: rerun its shard`);
    }
    const sums = mergeFeatureSums(shards.map((s) => s.shard[what].sums));
    return {
      features: { features, logits, count: ids.length },
      stats: StatsAccumulator.fromSums(sums).finish(),
    };
  };
  return {
    config,
    network,
    featureDim,
    numClasses,
    shardCount: count,
    samples: merge("samples"),
    reference: merge("reference"),
  };
}
