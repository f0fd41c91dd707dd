/**
 * Command-line flags for tasks: a typed spec, parsed with `node:util` parseArgs (jsr:@std/cli is
 * unreachable here), with every bad value turned into a one-line {@linkcode UserError} that names
 * the flag and the fix, and `--help` generated from the same spec.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "./errors.ts";
import { callerDataSpec, callerPath } from "./paths.ts";

/** One flag of a task. */
export type FlagSpec =
  | {
    type: "number" | "int";
    /** Default value; undefined means "not set" (the task decides). */
    default?: number;
    /** Smallest allowed value (inclusive). */
    min?: number;
    /** Values must be strictly greater than this. */
    gt?: number;
    /** Largest allowed value (inclusive). */
    max?: number;
    /** One line for --help. */
    help: string;
  }
  | {
    type: "string";
    default?: string;
    /** Allowed values, when the set is closed. */
    choices?: readonly string[];
    /**
     * A path the user types: a given value is resolved against the caller's folder (core/paths.ts;
     * "file" for a path, "dataset" for the path inside `png:<folder>`); defaults are not.
     */
    path?: "file" | "dataset";
    help: string;
  }
  | { type: "boolean"; default?: boolean; help: string }
  | { type: "list"; default?: number[]; help: string };

/** A map from flag name (kebab-case, without dashes) to its spec. */
export type FlagSpecs = Record<string, FlagSpec>;

/** Parsed values, keyed by flag name. */
export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends { type: "number" | "int" } ? number | undefined
    : S[K] extends { type: "boolean" } ? boolean
    : S[K] extends { type: "list" } ? number[] | undefined
    : string | undefined;
};

/** Options of {@linkcode parseFlags}. */
export interface ParseFlagsOptions {
  /** Task name used in messages, e.g. "train:edm". */
  task: string;
}

/**
 * Parses `args` against `specs`. `--help` is handled by the caller through {@linkcode wantsHelp}.
 *
 * @throws {UserError} For an unknown flag, a missing value, a non-number, or a value out of range.
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const v = parseFlags(["--steps", "10"], {
 *   steps: { type: "int", default: 18, min: 1, help: "sampling steps" },
 * }, { task: "sample:edm" });
 * console.assert(v.steps === 10);
 * ```
 */
export function parseFlags<S extends FlagSpecs>(
  args: string[],
  specs: S,
  options: ParseFlagsOptions,
): FlagValues<S> {
  const config: Record<string, { type: "string" | "boolean" }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    config[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
    if (spec.type === "boolean") config[`no-${name}`] = { type: "boolean" };
  }
  config.help = { type: "boolean" };
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args, specs),
      options: config,
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw new UserError(`${options.task}: ${describeParseError(e as Error)}; see --help`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name];
    if (spec.type === "boolean") {
      const negated = parsed.values[`no-${name}`] === true;
      out[name] = negated ? false : raw === true ? true : spec.default ?? false;
      continue;
    }
    if (raw === undefined) {
      out[name] = spec.default;
      continue;
    }
    out[name] = convert(name, String(raw), spec, options.task);
  }
  return out as FlagValues<S>;
}

/** True when `--help` or `-h` is among `args`. */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** Options of {@linkcode formatHelp}. */
export interface FormatHelpOptions {
  /** Task name, e.g. "train:edm". */
  task: string;
  /** One paragraph on what the task does. */
  summary: string;
  /** Copy-paste examples, one command each. */
  examples: string[];
  /** The usage line, for scripts run without `deno task`. @default "deno task <task> [flags]" */
  usage?: string;
}

/**
 * Renders `--help` text from the same specs the parser uses.
 *
 * @example
 * ```ts
 * import { formatHelp } from "./flags.ts";
 * console.log(formatHelp({ n: { type: "int", default: 64, help: "images" } },
 *   { task: "sample:edm", summary: "Samples.", examples: ["deno task sample:edm"] }));
 * ```
 */
export function formatHelp(specs: FlagSpecs, options: FormatHelpOptions): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const arg = spec.type === "boolean"
      ? `--${name}`
      : `--${name} <${spec.type === "list" ? "a,b,..." : spec.type}>`;
    let help = spec.help;
    if (spec.type === "string" && spec.choices) help += ` (${spec.choices.join(" | ")})`;
    if (spec.default !== undefined && spec.default !== false) {
      help += ` [default: ${Array.isArray(spec.default) ? spec.default.join(",") : spec.default}]`;
    }
    return [arg, help] as const;
  });
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return [
    options.usage ?? `deno task ${options.task} [flags]`,
    "",
    options.summary,
    "",
    "Flags:",
    ...rows.map(([a, h]) => `  ${a.padEnd(width)}${h}`),
    `  ${"--help".padEnd(width)}show this help`,
    "",
    "Examples:",
    ...options.examples.map((e) => `  ${e}`),
  ].join("\n");
}

function convert(name: string, raw: string, spec: FlagSpec, task: string): unknown {
  const bad = (why: string) => new UserError(`${task}: --${name} ${why}`);
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(raw)) {
      throw bad(`must be one of ${spec.choices.join(", ")}, got "${raw}"`);
    }
    if (spec.path === "file") return callerPath(raw);
    if (spec.path === "dataset") return callerDataSpec(raw);
    return raw;
  }
  if (spec.type === "list") {
    const items = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    const nums = items.map(Number);
    if (nums.length === 0 || nums.some((x) => !Number.isFinite(x))) {
      throw bad(`must be a comma-separated list of numbers, e.g. 1,2,2; got "${raw}"`);
    }
    return nums;
  }
  if (spec.type === "number" || spec.type === "int") {
    const x = raw.trim() === "" ? NaN : Number(raw);
    if (!Number.isFinite(x)) throw bad(`must be a number, got "${raw}"`);
    if (spec.type === "int" && !Number.isInteger(x)) throw bad(`must be an integer, got "${raw}"`);
    if (spec.min !== undefined && x < spec.min) throw bad(`must be at least ${spec.min}, got ${x}`);
    if (spec.gt !== undefined && !(x > spec.gt)) {
      throw bad(`must be greater than ${spec.gt}, got ${x}`);
    }
    if (spec.max !== undefined && x > spec.max) throw bad(`must be at most ${spec.max}, got ${x}`);
    return x;
  }
  return raw;
}

// parseArgs reads "--lr -1" as two flags; join a negative number to its flag so it is
// reported as a bad value rather than an ambiguous option.
function joinNegativeValues(args: string[], specs: FlagSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    const spec = specs[name];
    if (spec && spec.type !== "boolean" && /^-[\d.]/.test(args[i + 1] ?? "")) {
      out.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else out.push(args[i]);
  }
  return out;
}

function describeParseError(e: Error): string {
  const msg = e.message;
  const unknown = msg.match(/Unknown option '([^']+)'/);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = msg.match(/Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/);
  if (missing) return `flag ${missing[1]} needs a value`;
  const positional = msg.match(/Unexpected argument '([^']+)'/);
  if (positional) return `unexpected argument "${positional[1]}" (flags start with --)`;
  return msg.split("\n")[0];
}
