/**
 * Seed lists as users write them on the command line (NVlabs/edm's `--seeds 0-63` or `1,5,9`).
 *
 * @module
 */
import { UserError } from "./errors.ts";

/**
 * Parses "0-63", "1,5,9" or "0-3,10" into a list of non-negative integer seeds.
 *
 * @throws {UserError} For anything else.
 * @example
 * ```ts
 * import { parseSeeds } from "./seeds.ts";
 * console.assert(parseSeeds("0-2,7").join() === "0,1,2,7");
 * ```
 */
export function parseSeeds(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^(\d+)(?:-(\d+))?$/);
    if (!m) {
      throw new UserError(`--seeds: "${part}" is not a seed or range; write e.g. 0-63 or 1,5,9`);
    }
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UserError(`--seeds: range "${part}" runs backwards; write ${b}-${a}`);
    if (b - a > 1_000_000) throw new UserError(`--seeds: range "${part}" is too long`);
    for (let s = a; s <= b; s++) out.push(s);
  }
  if (out.length === 0) throw new UserError(`--seeds: no seeds in "${text}"; write e.g. 0-63`);
  return out;
}

/**
 * Writes a seed list back in the compact form {@linkcode parseSeeds} reads: runs of consecutive
 * seeds become ranges, in the list's order ("0-3,10"), so `parseSeeds(formatSeeds(s))` is `s`.
 *
 * @param seeds Non-negative integer seeds.
 * @returns The text; "" for an empty list.
 * @example
 * ```ts
 * import { formatSeeds } from "./seeds.ts";
 * console.assert(formatSeeds([0, 1, 2, 3, 10]) === "0-3,10");
 * ```
 */
export function formatSeeds(seeds: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < seeds.length;) {
    let j = i;
    while (j + 1 < seeds.length && seeds[j + 1] === seeds[j] + 1) j++;
    parts.push(j === i ? `${seeds[i]}` : `${seeds[i]}-${seeds[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}
