/**
 * Per-kernel profile of one unet-bench training step (EDM loss, Adam, batch 32) and one sampling
 * step (a Heun step of EDM Algorithm 1: two denoiser evaluations, batch 64) on the wasm backend
 * with the native BLAS kernels, as shared/bench/unet-bench.md defines the network.
 *
 * Every kernel registered for `wasm` is wrapped in a timer for the profiled runs. Kernels that
 * call other kernels (the project's composed ones) are charged their self time only, so the
 * table adds up; "(engine, outside kernels)" is the wall time of the step minus the time spent
 * in top-level kernels: tape bookkeeping, tidy scopes, tensor creation and disposal.
 *
 * A baseline for before/after measurements is this code with some kernels reverted to
 * tfjs-backend-wasm's own (`--compare-without A,B`, as registered at import, before this
 * project's overrides), without the fused kernels of core/native (`--baseline-no-native`: oneDNN's
 * GroupNorm, separate residual add and scale) and/or another copy of models/unet.ts
 * (`--baseline-unet PATH`, e.g. one
 * importing the previous models/layers.ts). `--compare` times whole steps of both in alternating
 * rounds, so that both see the same machine load, and prints the medians of wall and CPU time
 * (CPU time varies less on a shared machine) and their ratios; `--profile-baseline` prints the
 * baseline's table before the current one.
 *
 * Usage:
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi bench/profile_step.ts
 *   [--train-batch 32] [--sample-batch 64] [--runs 3] [--top 25] [--by-shape] [--threads N]
 *   [--only train,sample] [--compare-without Slice,SplitV] [--baseline-no-native]
 *   [--baseline-unet PATH]
 *   [--compare --rounds 5 | --profile-baseline] [--model mnist-small]
 * ```
 *
 * @module
 */
import process from "node:process";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import type { KernelConfig, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { registerBlasKernels } from "../core/blas/register.ts";
import { Rng } from "../core/rng.ts";
import { rngNoise } from "../core/noise.ts";
import { disposeParams, type Params } from "../core/params.ts";
import { initUNetParams, unetNetwork } from "../models/unet.ts";
import { UNET_PRESETS } from "../models/unet_presets.ts";
import { edmPrecond } from "../models/precond_edm.ts";
import { drawEdmSigmas, edmLoss } from "../training/loss_edm.ts";
import { adamStep, createAdam } from "../training/adam.ts";
import { heunStep, sigmaNode } from "../samplers/_util.ts";

const HELP = `profile_step: per-kernel time table of one unet-bench train step and sampling step

  deno run --allow-read --allow-write --allow-env --allow-ffi bench/profile_step.ts [options]

  --train-batch N        training batch (default 32)
  --sample-batch N       sampling batch (default 64)
  --runs N               profiled runs per step, after one warm-up; the table shows the median
                         per kernel (default 3)
  --top N                rows of the table (default 25)
  --by-shape             one row per kernel and input shapes instead of per kernel
  --only LIST            train,sample (default both)
  --compare-without LIST the baseline runs these kernels as tfjs-backend-wasm's own
  --baseline-no-native   the baseline runs without the fused kernels of core/native
  --baseline-unet PATH   the baseline runs the network of this copy of models/unet.ts
                         (e.g. one importing the previous models/layers.ts)
  --compare              time whole steps against the baseline (kernels of --compare-without
                         and/or --baseline-unet), interleaved
  --profile-baseline     print the per-kernel table of the baseline too, before the current one
  --rounds N             rounds of a comparison (default 5)
  --threads N            BLAS threads (default: the library's choice)
  --model NAME           U-Net preset (default unet-bench; mnist-small is train:edm's)`;

interface Flags {
  trainBatch: number;
  sampleBatch: number;
  runs: number;
  top: number;
  byShape: boolean;
  parts: Set<string>;
  without: string[];
  baselineUnet: string | null;
  noNative: boolean;
  compare: boolean;
  profileBaseline: boolean;
  rounds: number;
  threads: number | undefined;
  model: string;
}

// tfjs-backend-wasm's own kernels, before selectBackend installs the project's replacements.
const TFJS_WASM = new Map<string, KernelConfig>(
  tf.getKernelsForBackend("wasm").map((c) => [c.kernelName, c]),
);

function parseFlags(args: string[]): Flags | null {
  const f: Flags = {
    trainBatch: 32,
    sampleBatch: 64,
    runs: 3,
    top: 25,
    byShape: false,
    parts: new Set(["train", "sample"]),
    without: [],
    baselineUnet: null,
    noNative: false,
    compare: false,
    profileBaseline: false,
    rounds: 5,
    threads: undefined,
    model: "unet-bench",
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new TypeError(`${a} needs a value; see --help`);
      return v;
    };
    const int = () => {
      const v = Number(value());
      if (!(Number.isInteger(v) && v >= 1)) {
        throw new RangeError(`${a} must be a positive integer, got ${args[i]}`);
      }
      return v;
    };
    if (a === "--help" || a === "-h") return null;
    else if (a === "--train-batch") f.trainBatch = int();
    else if (a === "--sample-batch") f.sampleBatch = int();
    else if (a === "--runs") f.runs = int();
    else if (a === "--top") f.top = int();
    else if (a === "--by-shape") f.byShape = true;
    else if (a === "--only") f.parts = new Set(value().split(","));
    else if (a === "--compare-without") f.without = value().split(",").filter((s) => s);
    else if (a === "--baseline-unet") f.baselineUnet = value();
    else if (a === "--baseline-no-native") f.noNative = true;
    else if (a === "--compare") f.compare = true;
    else if (a === "--profile-baseline") f.profileBaseline = true;
    else if (a === "--rounds") f.rounds = int();
    else if (a === "--threads") f.threads = int();
    else if (a === "--model") f.model = value();
    else throw new TypeError(`unknown flag ${a}; see --help`);
  }
  for (const p of f.parts) {
    if (p !== "train" && p !== "sample") {
      throw new RangeError(`--only: unknown part "${p}"; use train, sample`);
    }
  }
  const noBaseline = f.without.length === 0 && f.baselineUnet === null && !f.noNative;
  if ((f.compare || f.profileBaseline) && noBaseline) {
    throw new RangeError(
      "a baseline needs --compare-without, --baseline-no-native and/or --baseline-unet",
    );
  }
  if (!(f.model in UNET_PRESETS)) {
    throw new RangeError(`--model: unknown U-Net "${f.model}"; use ${Object.keys(UNET_PRESETS)}`);
  }
  for (const k of f.without) {
    if (!TFJS_WASM.has(k)) throw new RangeError(`--compare-without: wasm has no kernel "${k}"`);
  }
  return f;
}

/** Time spent in one kernel (or kernel and shapes): self wall and CPU milliseconds, calls. */
interface Entry {
  ms: number;
  cpu: number;
  calls: number;
}

/** Wraps every wasm kernel in a timer; `stop()` puts the unwrapped ones back. */
class KernelTimer {
  readonly entries = new Map<string, Entry>();
  /** Wall time of top-level kernels (for the engine overhead). */
  topLevelMs = 0;
  /** CPU time (all threads) of top-level kernels. */
  topLevelCpu = 0;
  #childMs: number[] = [];
  #childCpu: number[] = [];
  #saved: KernelConfig[] = [];

  constructor(readonly byShape: boolean) {}

  start(): void {
    for (const config of tf.getKernelsForBackend("wasm")) {
      this.#saved.push(config);
      tf.unregisterKernel(config.kernelName, "wasm");
      tf.registerKernel({
        ...config,
        kernelFunc: this.#wrap(config.kernelName, config.kernelFunc),
      });
    }
  }

  stop(): void {
    for (const config of this.#saved.splice(0)) {
      tf.unregisterKernel(config.kernelName, "wasm");
      tf.registerKernel(config);
    }
  }

  reset(): void {
    this.entries.clear();
    this.topLevelMs = 0;
    this.topLevelCpu = 0;
  }

  #wrap(name: string, fn: KernelFunc): KernelFunc {
    return (args) => {
      this.#childMs.push(0);
      this.#childCpu.push(0);
      // Kernels run synchronously on the calling thread, so the process's CPU time over a call
      // is the kernel's: its own thread plus any native threads it woke.
      const c0 = cpuMs(), t0 = performance.now();
      let out;
      try {
        out = fn(args);
      } finally {
        const ms = performance.now() - t0, cpu = cpuMs() - c0;
        const children = this.#childMs.pop()!, childCpu = this.#childCpu.pop()!;
        const depth = this.#childMs.length;
        if (depth > 0) {
          this.#childMs[depth - 1] += ms;
          this.#childCpu[depth - 1] += cpu;
        } else {
          this.topLevelMs += ms;
          this.topLevelCpu += cpu;
        }
        const key = this.byShape ? `${name} ${shapesOf(args.inputs)}` : name;
        const e = this.entries.get(key) ?? { ms: 0, cpu: 0, calls: 0 };
        e.ms += ms - children;
        e.cpu += cpu - childCpu;
        e.calls++;
        this.entries.set(key, e);
      }
      return out;
    };
  }
}

function shapesOf(inputs: Record<string, unknown>): string {
  return Object.values(inputs)
    .filter((t) => t !== undefined && t !== null)
    .map((t) => `[${(t as TensorInfo).shape}]`)
    .join(" ");
}

/** CPU time of this process (all threads, user + system) in milliseconds. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

type Step = () => Promise<void>;
type Network = ReturnType<typeof unetNetwork>;
type UNetConfig = (typeof UNET_PRESETS)[keyof typeof UNET_PRESETS];
type UNetModule = { unetNetwork: (c: UNetConfig, p: Params) => Network };

// The network profiled (--model); unet-bench unless asked.
let config: UNetConfig = UNET_PRESETS["unet-bench"];

/** The train and sampling steps of one network; `network` picks the U-Net code (A/B runs). */
interface Steps {
  train: (network: Network) => Promise<void>;
  sample: (network: Network) => Promise<void>;
  params: Params;
  dispose: () => void;
}

function makeSteps(flags: Flags): Steps {
  const params = initUNetParams(config, new Rng(0));
  const r = config.imgResolution, ch = config.inChannels;
  const rng = new Rng(1);
  const image = (n: number, scale: number) =>
    tf.tensor(
      rng.fillNormal(new Float32Array(n * r * r * ch)).map((v) => v * scale),
      [n, r, r, ch],
    );
  const loss = edmLoss();
  const adam = createAdam(params, { nanToNum: false });
  const y = image(flags.trainBatch, 0.5);
  const noise = rngNoise(rng);
  const train = async (network: Network) => {
    const denoiser = edmPrecond(network);
    const sigma = tf.tensor1d(drawEdmSigmas(flags.trainBatch, rng));
    const n = noise.randn(y.shape);
    const { value, grads } = tf.variableGrads(() => loss(denoiser, y, { sigma, noise: n }));
    const named: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(params)) named[name] = grads[v.name];
    adamStep(adam, named, { lr: 2e-4 });
    await value.data();
    tf.dispose([sigma, n, value, ...Object.values(grads)]);
  };
  const x0 = image(flags.sampleBatch, 10);
  const sample = async (network: Network) => {
    const denoiser = edmPrecond(network);
    const out = tf.tidy(() => heunStep(denoiser, x0, sigmaNode(10), sigmaNode(7), true).x);
    await out.data();
    out.dispose();
  };
  const dispose = () => {
    tf.dispose([y, x0]);
    for (const s of [adam.m, adam.v]) tf.dispose(Object.values(s));
    disposeParams(params);
  };
  return { train, sample, params, dispose };
}

/** What a profiled step measured: wall and CPU milliseconds per kernel class (medians). */
export interface StepProfile {
  wall: number;
  cpu: number;
  classes: Record<KernelClass, { ms: number; cpu: number }>;
}

/** Kernel classes of the thread summary. */
type KernelClass = "native" | "wasm/JS" | "engine";
const CLASSES: KernelClass[] = ["native", "wasm/JS", "engine"];

async function profile(
  name: string,
  step: Step,
  flags: Flags,
  native: Set<string>,
): Promise<StepProfile> {
  await step(); // warm-up: first-call allocations and kernel set-up stay out of the table
  const timer = new KernelTimer(flags.byShape);
  const perRun: Map<string, Entry>[] = [];
  const walls: number[] = [], cpus: number[] = [], engine: number[] = [], engineCpu: number[] = [];
  timer.start();
  try {
    for (let r = 0; r < flags.runs; r++) {
      timer.reset();
      const c0 = cpuMs(), t0 = performance.now();
      await step();
      const wall = performance.now() - t0, cpu = cpuMs() - c0;
      walls.push(wall);
      cpus.push(cpu);
      engine.push(wall - timer.topLevelMs);
      engineCpu.push(cpu - timer.topLevelCpu);
      perRun.push(new Map([...timer.entries].map(([k, e]) => [k, { ...e }])));
    }
  } finally {
    timer.stop();
  }
  const keys = new Set(perRun.flatMap((m) => [...m.keys()]));
  const kernelOf = (key: string) => key.split(" ")[0];
  const rows = [...keys].map((k) => ({
    key: k,
    cls: (native.has(kernelOf(k)) ? "native" : "wasm/JS") as KernelClass,
    ms: median(perRun.map((m) => m.get(k)?.ms ?? 0)),
    cpu: median(perRun.map((m) => m.get(k)?.cpu ?? 0)),
    calls: perRun[0].get(k)?.calls ?? 0,
  }));
  rows.push({
    key: "(engine, outside kernels)",
    cls: "engine",
    ms: median(engine),
    cpu: median(engineCpu),
    calls: 0,
  });
  rows.sort((a, b) => b.ms - a.ms);
  const wall = median(walls), cpu = median(cpus);
  const cores = (c: number, w: number) => (w > 0 ? c / w : 0).toFixed(2);
  console.log(
    `\n## ${name}: median wall ${wall.toFixed(0)} ms, CPU ${cpu.toFixed(0)} ms ` +
      `(${cores(cpu, wall)} cores busy) over ${flags.runs} runs\n`,
  );
  console.log("| kernel | class | ms | % | CPU ms | cores | calls |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows.slice(0, flags.top)) {
    console.log(
      `| ${row.key} | ${row.cls} | ${row.ms.toFixed(1)} | ${(100 * row.ms / wall).toFixed(1)} | ` +
        `${row.cpu.toFixed(1)} | ${cores(row.cpu, row.ms)} | ${row.calls || ""} |`,
    );
  }
  const rest = rows.slice(flags.top).reduce((s, r) => s + r.ms, 0);
  if (rows.length > flags.top) {
    console.log(`| (${rows.length - flags.top} more) | | ${rest.toFixed(1)} | | | | |`);
  }
  const classes = Object.fromEntries(CLASSES.map((c) => {
    const of = rows.filter((r) => r.cls === c);
    return [c, { ms: of.reduce((s, r) => s + r.ms, 0), cpu: of.reduce((s, r) => s + r.cpu, 0) }];
  })) as StepProfile["classes"];
  console.log(`\n| class | wall ms | % of wall | CPU ms | cores busy |`);
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const c of CLASSES) {
    const { ms, cpu: cc } = classes[c];
    console.log(
      `| ${c} | ${ms.toFixed(0)} | ${(100 * ms / wall).toFixed(1)} | ${cc.toFixed(0)} | ` +
        `${cores(cc, ms)} |`,
    );
  }
  const serial = CLASSES.reduce(
    (s, c) => s + (classes[c].cpu < 1.2 * classes[c].ms ? classes[c].ms : 0),
    0,
  );
  console.log(
    `\nserial share (classes on ~1 core): ${(100 * serial / wall).toFixed(1)} % of wall; ` +
      `whole step ${cores(cpu, wall)} cores busy`,
  );
  return { wall, cpu, classes };
}

/** Swaps the listed kernels between the project's and tfjs-backend-wasm's own. */
function kernelSwitch(names: string[]): (useOurs: boolean) => void {
  const ours = new Map(names.map((n) => [n, tf.getKernel(n, "wasm")!]));
  return (useOurs) => {
    for (const n of names) {
      tf.unregisterKernel(n, "wasm");
      tf.registerKernel(useOurs ? ours.get(n)! : TFJS_WASM.get(n)!);
    }
  };
}

/** One side of an A/B comparison: how to switch to it and which network it runs. */
interface Side {
  name: string;
  enter: () => void;
  network: Network;
}

async function compare(
  label: string,
  step: (network: Network) => Promise<void>,
  sides: Side[],
  rounds: number,
): Promise<void> {
  const times = sides.map(() => [] as number[]);
  const cpu = sides.map(() => [] as number[]);
  try {
    for (let r = 0; r <= rounds; r++) {
      // Alternate the order too, so neither side always runs first in a round.
      const order = r % 2 ? [...sides.keys()].reverse() : [...sides.keys()];
      for (const i of order) {
        sides[i].enter();
        const c0 = cpuMs(), t0 = performance.now();
        await step(sides[i].network);
        if (r > 0) { // round 0 warms both up
          times[i].push(performance.now() - t0);
          cpu[i].push(cpuMs() - c0);
        }
      }
    }
  } finally {
    sides[0].enter();
  }
  const [a, b] = times.map(median), [ca, cb] = cpu.map(median);
  console.log(
    `${label}, medians of ${rounds}: ${sides[0].name} ${a.toFixed(0)} ms wall ` +
      `(${ca.toFixed(0)} ms CPU), ${sides[1].name} ${b.toFixed(0)} ms wall (${cb.toFixed(0)} ms ` +
      `CPU); speed-up ${(b / a).toFixed(3)}x wall, ${(cb / ca).toFixed(3)}x CPU`,
  );
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  if (flags === null) {
    console.log(HELP);
    return;
  }
  config = UNET_PRESETS[flags.model as keyof typeof UNET_PRESETS];
  await selectBackend({ backend: "wasm", log: () => {} });
  const registration = registerBlasKernels({ backend: "wasm", threads: flags.threads });
  console.error(registration.message);
  const native = new Set(registration.kernels);
  const steps = makeSteps(flags);
  const network = unetNetwork(config, steps.params);
  try {
    const swap = kernelSwitch(flags.without);
    const use = (ours: boolean) => {
      swap(ours);
      if (flags.noNative) {
        registerBlasKernels({ backend: "wasm", threads: flags.threads, native: ours });
      }
    };
    let baseline = network;
    if (flags.baselineUnet !== null) {
      const url = new URL(flags.baselineUnet, `file://${Deno.cwd()}/`).href;
      baseline = ((await import(url)) as UNetModule).unetNetwork(config, steps.params);
    }
    const what = [
      flags.without.length ? `tfjs's ${flags.without.join(",")}` : "",
      flags.noNative ? "no fused native kernels" : "",
      flags.baselineUnet ?? "",
    ].filter((w) => w).join(" + ");
    const sides: Side[] = [
      { name: "current", enter: () => use(true), network },
      { name: `baseline (${what})`, enter: () => use(false), network: baseline },
    ];
    const profiled = flags.profileBaseline ? [sides[1], sides[0]] : [sides[0]];
    for (const part of ["train", "sample"] as const) {
      if (!flags.parts.has(part)) continue;
      const label = part === "train"
        ? `train step (batch ${flags.trainBatch})`
        : `sampling step (Heun, 2 evaluations, batch ${flags.sampleBatch})`;
      if (flags.compare) await compare(label, steps[part], sides, flags.rounds);
      else {
        for (const side of profiled) {
          side.enter();
          try {
            await profile(
              `${label}, ${side.name}`,
              () => steps[part](side.network),
              flags,
              native,
            );
          } finally {
            sides[0].enter();
          }
        }
      }
    }
  } finally {
    steps.dispose();
  }
  console.error(`tensors left: ${tf.memory().numTensors}`);
}

if (import.meta.main) await main();
