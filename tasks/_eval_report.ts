/**
 * How `eval` and `eval:merge` print an evaluation and write `eval.json`, written once so the two
 * routes read alike.
 *
 * @module
 */
import { writeFileAtomic } from "../core/atomic_write.ts";
import type { EvaluationReport } from "../eval/evaluate.ts";

/**
 * Prints one evaluation: FD, IS, KID, precision/recall and the warnings.
 *
 * @param r The report.
 * @param what What was evaluated, e.g. "1000 samples, heun 18 steps (35 NFE)".
 * @param reference The reference set, e.g. "mnist (10000 images)".
 * @example
 * ```ts ignore
 * printReport(report, "8 samples", "mnist (10000 images)");
 * ```
 */
export function printReport(r: EvaluationReport, what: string, reference: string): void {
  const is = r.is ? `IS ${r.is.mean.toFixed(3)} +- ${r.is.std.toFixed(3)}` : "IS n/a";
  const refIs = r.referenceIs ? ` (reference IS ${r.referenceIs.mean.toFixed(3)})` : "";
  console.log(
    `${what} vs ${reference}, features ${r.network}:\n` +
      `  FD ${r.fd.toFixed(3)} | ${is}${refIs} | KID ${r.kid.mean.toExponential(3)} +- ` +
      `${r.kid.std.toExponential(2)} | precision ${r.precision.toFixed(3)} | recall ${
        r.recall.toFixed(3)
      }`,
  );
  for (const w of r.warnings) console.log(`  warning: ${w}`);
}

/**
 * Writes `value` as indented JSON, atomically.
 *
 * @param path The file.
 * @param value Anything JSON-able.
 * @example
 * ```ts ignore
 * await writeJson("runs/eval/eval.json", { rows });
 * ```
 */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
