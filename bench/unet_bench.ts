/**
 * unet-bench (shared/bench/unet-bench.md): this project's speed beside the PyTorch reference
 * (shared/bench/torch_ref.py) on the same machine, in one run.
 *
 * Times, on the wasm backend: the primitives (conv3x3 64->64 on 16x32x32x64 forward and
 * forward+backward, a 1024x1024 matMul, in GFLOP/s) without native kernels, with OpenBLAS only
 * (`core/blas/`), and with OpenBLAS, oneDNN (`core/dnnl/`) and the fused kernels (`core/native/`),
 * interleaved round by round so all
 * see the same machine load; then the
 * unet-bench network (preset "unet-bench", EDM preconditioning): training img/s (EDM loss, Adam,
 * batch 32) and sampling img/s (Heun, 18 steps = 35 evaluations, batch 64). When
 * `/usr/bin/python3` has torch, torch_ref.py runs between the two parts with the same thread
 * count, and a table gives the ratios ours / PyTorch. Outside `--quick` the network is also
 * timed with oneDNN off, to show what each library brings. Every figure is the best of several runs
 * after a warm-up (the median is printed too); single runs on a shared machine vary by 30-50 %.
 *
 * Usage:
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run bench/unet_bench.ts [--quick]
 *   [--threads 2] [--only prims,train,sample] [--no-torch] [--torch-ref PATH] [--network-both]
 *   [--json] [--backend webgpu]
 * ```
 *
 * With `--backend webgpu` the same figures are timed once on the webgpu backend (no native-kernel
 * modes; every timed call ends with `await data()`, so the GPU's queue is drained).
 *
 * @module
 */
import { openMpVariableSetHere } from "../core/_openmp.ts";
import process from "node:process";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { registerBlasKernels } from "../core/blas/register.ts";
import { Rng } from "../core/rng.ts";
import { rngNoise } from "../core/noise.ts";
import { disposeParams } from "../core/params.ts";
import { initUNetParams, unetNetwork } from "../models/unet.ts";
import { UNET_PRESETS } from "../models/unet_presets.ts";
import { edmPrecond } from "../models/precond_edm.ts";
import { drawEdmSigmas, edmLoss } from "../training/loss_edm.ts";
import { adamStep, createAdam, disposeAdam } from "../training/adam.ts";
import { sampleHeun } from "../samplers/heun.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";

const HELP = `unet-bench: diffuse (tfjs wasm, with and without native BLAS) beside PyTorch

  deno run --allow-read --allow-write --allow-env --allow-ffi --allow-run bench/unet_bench.ts [options]

  --quick           fewer runs, train batch 16, sample batch 8 (PyTorch gets --quick too)
  --threads N       BLAS and PyTorch threads (default 2)
  --only LIST       parts to time: prims,train,sample (default all)
  --no-torch        do not run the PyTorch reference
  --torch-ref PATH  torch_ref.py (default ../shared/bench/torch_ref.py from the repo root)
  --network-both    also time train and sample with no native kernels at all (slow)
  --json            print one JSON object at the end instead of the table
  --backend NAME    wasm (default, with the native-kernel modes) or webgpu (one column)`;

interface BenchFlags {
  quick: boolean;
  threads: number;
  parts: Set<string>;
  torch: boolean;
  torchRef: string;
  networkBoth: boolean;
  json: boolean;
  backend: "wasm" | "webgpu";
}

interface Timing {
  /** Best wall time in seconds. */
  best: number;
  /** Median wall time in seconds. */
  median: number;
  /** Timed runs. */
  runs: number;
}

type Figures = Record<string, number | null>;

const CONV_FLOPS = 2 * 16 * 32 * 32 * 64 * 64 * 9;
const MATMUL_FLOPS = 2 * 1024 ** 3;

function parseFlags(args: string[]): BenchFlags | null {
  const flags: BenchFlags = {
    quick: false,
    threads: 2,
    parts: new Set(["prims", "train", "sample"]),
    torch: true,
    torchRef: new URL("../../shared/bench/torch_ref.py", import.meta.url).pathname,
    networkBoth: false,
    json: false,
    backend: "wasm",
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new TypeError(`${a} needs a value; see --help`);
      return v;
    };
    if (a === "--help" || a === "-h") return null;
    else if (a === "--quick") flags.quick = true;
    else if (a === "--threads") flags.threads = Number(value());
    else if (a === "--only") flags.parts = new Set(value().split(","));
    else if (a === "--no-torch") flags.torch = false;
    else if (a === "--torch-ref") flags.torchRef = value();
    else if (a === "--network-both") flags.networkBoth = true;
    else if (a === "--json") flags.json = true;
    else if (a === "--backend") {
      const b = value();
      if (b !== "wasm" && b !== "webgpu") {
        throw new RangeError(`--backend: unknown backend "${b}"; use wasm or webgpu`);
      }
      flags.backend = b;
    } else throw new TypeError(`unknown flag ${a}; see --help`);
  }
  if (!(Number.isInteger(flags.threads) && flags.threads >= 1)) {
    throw new RangeError(`--threads must be a positive integer, got ${flags.threads}`);
  }
  for (const p of flags.parts) {
    if (!["prims", "train", "sample"].includes(p)) {
      throw new RangeError(`--only: unknown part "${p}"; use prims, train, sample`);
    }
  }
  return flags;
}

function summarize(times: number[]): Timing {
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { best: sorted[0], median, runs: times.length };
}

// Same rule as torch_ref.py's best_time: warm-up, then runs, stopping past the budget (>= 2 runs).
async function bestTime(
  fn: () => void | Promise<void>,
  opts: { warm: number; runs: number; budgetS?: number },
): Promise<Timing> {
  for (let i = 0; i < opts.warm; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  for (let r = 0; r < opts.runs; r++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
    if (opts.budgetS !== undefined && r >= 1 && (performance.now() - start) / 1000 > opts.budgetS) {
      break;
    }
  }
  return summarize(times);
}

/**
 * Native kernels in use: none, OpenBLAS only, or OpenBLAS, oneDNN and the fused kernels of
 * core/native (when installed and buildable).
 */
type Mode = "off" | "sgemm" | "on";
const MODES: Mode[] = ["off", "sgemm", "on"];

function setBlas(mode: Mode | boolean, threads: number): string {
  const m: Mode = mode === true ? "on" : mode === false ? "off" : mode;
  return registerBlasKernels({
    backend: "wasm",
    disable: m === "off",
    dnnl: m === "on",
    native: m === "on",
    threads,
  }).message;
}

// Conv3x3 forward, forward+backward (both gradient kernels, 3x the FLOPs), and the 1024 matMul,
// in each mode in alternating rounds.
async function benchPrimitives(flags: BenchFlags, modes: Mode[]): Promise<Record<Mode, Figures>> {
  const warm = flags.quick ? 2 : 3, runs = flags.quick ? 5 : 10;
  const rng = new Rng(0);
  const randn = (shape: number[], scale = 1) =>
    tf.tensor(
      rng.fillNormal(new Float32Array(shape.reduce((p, d) => p * d, 1))).map((v) => v * scale),
      shape,
    );
  const x = randn([16, 32, 32, 64]) as tf.Tensor4D, w = randn([3, 3, 64, 64], 0.05) as tf.Tensor4D;
  const dy = randn([16, 32, 32, 64]) as tf.Tensor4D;
  const a = randn([1024, 1024]) as tf.Tensor2D, b = randn([1024, 1024]) as tf.Tensor2D;
  const attrs = { strides: 1, pad: "same", dataFormat: "NHWC" };
  // On webgpu a kernel call only queues work: reading the result waits for it.
  const done = async (ts: tf.Tensor[]) => {
    if (flags.backend === "webgpu") { for (const t of ts) await t.data(); }
    tf.dispose(ts);
  };
  const prims: Record<string, { flops: number; fn: () => Promise<void> }> = {
    conv3x3_fwd: { flops: CONV_FLOPS, fn: () => done([tf.conv2d(x, w, 1, "same")]) },
    conv3x3_fwdbwd: {
      flops: 3 * CONV_FLOPS,
      fn: () =>
        done([
          tf.conv2d(x, w, 1, "same"),
          tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, {
            ...attrs,
            inputShape: x.shape,
          }) as tf.Tensor,
          tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
            ...attrs,
            filterShape: w.shape,
          }) as tf.Tensor,
        ]),
    },
    matmul1024: { flops: MATMUL_FLOPS, fn: () => done([tf.matMul(a, b)]) },
  };
  const times: Record<string, Record<string, number[]>> = { off: {}, sgemm: {}, on: {} };
  for (let round = 0; round < warm + runs; round++) {
    for (const mode of modes) {
      if (flags.backend === "wasm") setBlas(mode, flags.threads);
      for (const [name, p] of Object.entries(prims)) {
        const t0 = performance.now();
        try {
          await p.fn();
        } catch (e) {
          if (round === 0) console.error(`${name} (${mode}) failed: ${(e as Error).message}`);
          continue;
        }
        if (round >= warm) (times[mode][name] ??= []).push((performance.now() - t0) / 1000);
      }
    }
  }
  tf.dispose([x, w, dy, a, b]);
  const out: Record<Mode, Figures> = { off: {}, sgemm: {}, on: {} };
  for (const mode of MODES) {
    for (const [name, p] of Object.entries(prims)) {
      const t = times[mode][name];
      const s = t ? summarize(t) : null;
      out[mode][`${name}_gflops`] = s ? p.flops / s.best / 1e9 : null;
      out[mode][`${name}_gflops_median`] = s ? p.flops / s.median / 1e9 : null;
    }
  }
  return out;
}

function hasGradients(): boolean {
  try {
    tf.dispose(tf.grad((v: tf.Tensor) => tf.sum(v))(tf.ones([1])));
    return true;
  } catch {
    return false;
  }
}

/** CPU time of this process (all threads, user + system) in seconds. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Wraps a step so that its process CPU time and wall time add up over every call: their ratio
 * is the average number of cores busy while it runs (2 on a 2-core machine kept fully busy).
 */
function coresBusy(step: () => Promise<void>): { step: () => Promise<void>; cores: () => number } {
  let cpu = 0, wall = 0;
  return {
    async step() {
      const c0 = cpuSeconds(), t0 = performance.now();
      await step();
      cpu += cpuSeconds() - c0;
      wall += (performance.now() - t0) / 1000;
    },
    cores: () => (wall > 0 ? cpu / wall : NaN),
  };
}

async function benchNetwork(flags: BenchFlags): Promise<Figures> {
  const out: Figures = {};
  const config = UNET_PRESETS["unet-bench"];
  const params = initUNetParams(config, new Rng(0));
  const denoiser = edmPrecond(unetNetwork(config, params));
  const rng = new Rng(1);
  const image = (n: number, scale: number) =>
    tf.tensor(
      rng.fillNormal(new Float32Array(n * 32 * 32 * 3)).map((v) => v * scale),
      [n, 32, 32, 3],
    );
  if (flags.parts.has("train")) {
    if (!hasGradients()) {
      console.error("train: skipped (tfjs-core has no gradient functions registered here)");
      out.train_imgs_per_s = null;
    } else {
      const batch = flags.quick ? 16 : 32;
      const loss = edmLoss();
      // Plain Adam, as torch.optim.Adam in torch_ref.py (no nan_to_num pass).
      const adam = createAdam(params, { nanToNum: false });
      const y = image(batch, 0.5);
      const noise = rngNoise(rng);
      const step = async () => {
        const sigma = tf.tensor1d(drawEdmSigmas(batch, rng));
        const n = noise.randn(y.shape);
        const { value, grads } = tf.variableGrads(() => loss(denoiser, y, { sigma, noise: n }));
        const named: Record<string, tf.Tensor> = {};
        for (const [name, v] of Object.entries(params)) named[name] = grads[v.name];
        adamStep(adam, named, { lr: 2e-4 });
        await value.data(); // one scalar; on webgpu this waits for the queued step
        tf.dispose([sigma, n, value, ...Object.values(grads)]);
      };
      const busy = coresBusy(step);
      const t = await bestTime(busy.step, {
        warm: flags.quick ? 1 : 2,
        runs: flags.quick ? 3 : 5,
        budgetS: flags.quick ? 8 : 25,
      });
      out.train_cores_busy = busy.cores();
      out.train_batch = batch;
      out.train_imgs_per_s = batch / t.best;
      out.train_imgs_per_s_median = batch / t.median;
      tf.dispose(y);
      disposeAdam(adam);
    }
  }
  if (flags.parts.has("sample")) {
    const batch = flags.quick ? 8 : 64;
    const sigmas = karrasSigmas({ numSteps: 18, sigmaMin: 0.002, sigmaMax: 80, rho: 7 });
    const x0 = image(batch, sigmas[0]);
    let nfe = 0;
    const warm = tf.tidy(() => denoiser(x0, tf.fill([batch], 1) as tf.Tensor1D)); // warm-up
    await warm.data();
    warm.dispose();
    const busy = coresBusy(async () => {
      const r = await sampleHeun(denoiser, x0, { sigmas });
      nfe = r.nfe;
      await r.x.data();
      r.x.dispose();
    });
    const t = await bestTime(busy.step, {
      warm: 0,
      runs: flags.quick ? 2 : 3,
      budgetS: flags.quick ? 10 : 60,
    });
    out.sample_cores_busy = busy.cores();
    out.sample_batch = batch;
    out.sample_nfe = nfe;
    out.sample_imgs_per_s = batch / t.best;
    out.sample_imgs_per_s_median = batch / t.median;
    x0.dispose();
  }
  disposeParams(params);
  return out;
}

async function runTorch(flags: BenchFlags): Promise<Figures | string> {
  const python = "/usr/bin/python3";
  try {
    Deno.statSync(flags.torchRef);
    Deno.statSync(python);
  } catch {
    return `not run (${python} or ${flags.torchRef} missing)`;
  }
  const only = [...flags.parts].join(",");
  const args = [flags.torchRef, "--threads", String(flags.threads), "--json", "--only", only];
  if (flags.quick) args.push("--quick");
  console.error(`running ${python} ${args.join(" ")} ...`);
  // PyTorch runs with its own OpenMP defaults, not the wait policy this process chose for itself
  // (an inherited OMP_WAIT_POLICY=PASSIVE slowed its training by ~15 %).
  const env = Deno.env.toObject();
  const ours = openMpVariableSetHere();
  if (ours !== undefined) delete env[ours];
  const r = await new Deno.Command(python, {
    args,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout).trim();
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr).trim().split("\n").pop();
    return `failed: ${err || text.split("\n").pop()}`;
  }
  const out = JSON.parse(text.split("\n").pop()!) as Figures & Record<string, unknown>;
  console.error(
    `PyTorch ${out.torch_version}, ${out.threads} threads, ${out.layout}, BLAS ` +
      `${(out.blas as unknown as string[] | undefined)?.join(", ") || "?"}, ${
        Number(out.wall_s).toFixed(0)
      } s` +
      (out.blas_warning ? `; WARNING: ${out.blas_warning}` : ""),
  );
  return out;
}

const ROWS: [string, string][] = [
  ["conv3x3 fwd GFLOP/s", "conv3x3_fwd_gflops"],
  ["conv3x3 fwd+bwd GFLOP/s", "conv3x3_fwdbwd_gflops"],
  ["matmul 1024 GFLOP/s", "matmul1024_gflops"],
  ["train img/s", "train_imgs_per_s"],
  ["sample img/s", "sample_imgs_per_s"],
];

function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(digits);
}

function printTable(
  figures: Record<Mode, Figures>,
  torch: Figures | null,
  flags: BenchFlags,
): void {
  const { off, sgemm, on } = figures;
  const lines = [
    "| figure | wasm | + OpenBLAS | + oneDNN, fused | PyTorch | native speed-up | ours / PyTorch |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const [label, key] of ROWS) {
    const o = off[key], b = sgemm[key], n = on[key], p = torch?.[key];
    const batch = key.startsWith("train")
      ? ` (batch ${on.train_batch ?? "-"})`
      : key.startsWith("sample")
      ? ` (batch ${on.sample_batch ?? "-"}, ${on.sample_nfe ?? "-"} NFE)`
      : "";
    const ratio = (a?: number | null, b?: number | null) => a && b ? `${(a / b).toFixed(2)}x` : "-";
    lines.push(
      `| ${label}${batch} | ${fmt(o)} | ${fmt(b)} | ${fmt(n)} | ${fmt(p)} | ${ratio(n, o)} | ` +
        `${ratio(n ?? o, p)} |`,
    );
  }
  console.log(lines.join("\n"));
  console.log(
    `cores busy (process CPU time / wall time, + oneDNN, fused): train ${
      fmt(on.train_cores_busy)
    }, ` +
      `sample ${fmt(on.sample_cores_busy)}`,
  );
  console.log(
    `threads ${flags.threads}${flags.quick ? ", quick" : ""}; best of several runs; one run of ` +
      `each side by side on a shared machine: single figures vary 30-50 %.`,
  );
}

// One column: the primitives and the network on webgpu, beside PyTorch when it runs.
async function benchWebGpu(flags: BenchFlags): Promise<void> {
  const figures: Figures = {};
  if (flags.parts.has("prims")) Object.assign(figures, (await benchPrimitives(flags, ["on"])).on);
  const torch = flags.torch ? await runTorch(flags) : "not run (--no-torch)";
  if (typeof torch === "string") console.error(`PyTorch reference ${torch}`);
  if (flags.parts.has("train") || flags.parts.has("sample")) {
    Object.assign(figures, await benchNetwork(flags));
  }
  const ref = typeof torch === "string" ? null : torch;
  if (flags.json) {
    return console.log(JSON.stringify({ backend: "webgpu", webgpu: figures, torch: ref }));
  }
  const lines = ["| figure | webgpu | PyTorch | ours / PyTorch |", "| --- | ---: | ---: | ---: |"];
  for (const [label, key] of ROWS) {
    const o = figures[key], p = ref?.[key];
    lines.push(`| ${label} | ${fmt(o)} | ${fmt(p)} | ${o && p ? `${(o / p).toFixed(2)}x` : "-"} |`);
  }
  console.log(lines.join("\n"));
  console.log(`webgpu${flags.quick ? ", quick" : ""}; best of several runs on a shared machine.`);
}

async function main(): Promise<void> {
  const flags = parseFlags(Deno.args);
  if (flags === null) {
    console.log(HELP);
    return;
  }
  await selectBackend({ backend: flags.backend, log: (m) => console.error(m) });
  if (flags.backend === "webgpu") return await benchWebGpu(flags);
  console.error(setBlas(true, flags.threads));
  const figures: Record<Mode, Figures> = { off: {}, sgemm: {}, on: {} };
  const { off, sgemm, on } = figures;
  if (flags.parts.has("prims")) {
    const prims = await benchPrimitives(flags, MODES);
    for (const mode of MODES) {
      Object.assign(figures[mode], prims[mode]);
      console.error(`primitives (${mode}): ${JSON.stringify(prims[mode])}`);
    }
  }
  let torch: Figures | null = null;
  if (flags.torch) {
    const r = await runTorch(flags);
    if (typeof r === "string") console.error(`PyTorch reference ${r}`);
    else torch = r;
  }
  if (flags.parts.has("train") || flags.parts.has("sample")) {
    setBlas("on", flags.threads);
    Object.assign(on, await benchNetwork(flags));
    console.error(`network (OpenBLAS + oneDNN + fused): ${JSON.stringify(on)}`);
    if (!flags.quick) {
      setBlas("sgemm", flags.threads);
      Object.assign(sgemm, await benchNetwork(flags));
      console.error(`network (OpenBLAS only): ${JSON.stringify(sgemm)}`);
    }
    if (flags.networkBoth) {
      setBlas("off", flags.threads);
      Object.assign(off, await benchNetwork(flags));
    }
    setBlas("on", flags.threads);
  }
  if (flags.json) {
    console.log(
      JSON.stringify({ threads: flags.threads, quick: flags.quick, off, sgemm, on, torch }),
    );
  } else printTable(figures, torch, flags);
}

if (import.meta.main) await main();
