import assert from "node:assert/strict";
import { formatHelp, parseFlags } from "../core/flags.ts";
import { UserError } from "../core/errors.ts";
import { parseSeeds } from "../core/seeds.ts";
import { createProgress, formatDuration } from "../core/progress.ts";

const SPECS = {
  steps: { type: "int", default: 18, min: 1, help: "steps" },
  lr: { type: "number", gt: 0, help: "learning rate" },
  sampler: { type: "string", default: "heun", choices: ["heun", "euler"], help: "sampler" },
  resume: { type: "boolean", help: "resume" },
  mult: { type: "list", help: "multipliers" },
} as const;
const parse = (args: string[]) => parseFlags(args, SPECS, { task: "t" });

Deno.test("parseFlags() applies defaults and converts values", () => {
  assert.deepEqual(parse([]), {
    steps: 18,
    lr: undefined,
    sampler: "heun",
    resume: false,
    mult: undefined,
  });
  const v = parse([
    "--steps",
    "5",
    "--lr=2e-4",
    "--sampler",
    "euler",
    "--resume",
    "--mult",
    "1,2,2",
  ]);
  assert.deepEqual(v, { steps: 5, lr: 2e-4, sampler: "euler", resume: true, mult: [1, 2, 2] });
});

Deno.test("parseFlags() names the flag and the fix for each bad input", () => {
  const cases: [string[], RegExp][] = [
    [["--stpes", "3"], /unknown flag --stpes; see --help/],
    [["--steps", "0"], /--steps must be at least 1, got 0/],
    [["--steps", "2.5"], /--steps must be an integer/],
    [["--lr", "-1"], /--lr must be greater than 0, got -1/],
    [["--lr", "abc"], /--lr must be a number, got "abc"/],
    [["--sampler", "ddim"], /--sampler must be one of heun, euler, got "ddim"/],
    [["--mult", "1,x"], /--mult must be a comma-separated list of numbers/],
    [["--steps"], /--steps needs a value/],
    [["stray"], /unexpected argument "stray"/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(
      () => parse(args),
      (e: unknown) => e instanceof UserError && pattern.test(e.message),
    );
  }
});

Deno.test("formatHelp() lists every flag with its default and the examples", () => {
  const help = formatHelp(SPECS, { task: "t", summary: "S.", examples: ["deno task t --steps 3"] });
  for (const name of Object.keys(SPECS)) assert.match(help, new RegExp(`--${name}`));
  assert.match(help, /\[default: 18\]/);
  assert.match(help, /\(heun \| euler\)/);
  assert.match(help, /deno task t --steps 3/);
});

Deno.test("parseSeeds() reads ranges and lists and rejects the rest", () => {
  assert.deepEqual(parseSeeds("0-3,7"), [0, 1, 2, 3, 7]);
  assert.throws(() => parseSeeds("5-2"), /runs backwards/);
  assert.throws(() => parseSeeds("a"), /not a seed or range/);
});

Deno.test("createProgress() reports rate and ETA from the injected clock", () => {
  let t = 0;
  const lines: string[] = [];
  const bar = createProgress({
    total: 100,
    unit: "img",
    tty: false,
    plainEverySeconds: 0,
    now: () => t,
    write: (s) => lines.push(s),
  });
  bar.update(0);
  t = 10_000;
  bar.update(50, { loss: 0.5 });
  assert.match(lines[1], /50\/100/);
  assert.match(lines[1], /5\.00 img\/s/);
  assert.match(lines[1], /eta 10s/);
  assert.match(lines[1], /loss 0\.500/);
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(65), "1m05s");
});
