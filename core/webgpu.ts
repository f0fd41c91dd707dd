/**
 * The `webgpu` backend (DESIGN.md "Engine"): Deno's built-in WebGPU (wgpu over Vulkan, Metal or
 * DX12) with `@tensorflow/tfjs-backend-webgpu`. Not tied to a paper.
 *
 * The package is imported only by {@linkcode startWebGpu} (a dynamic import), because importing it
 * registers `webgpu` as tfjs' automatic default. Before that, {@linkcode probeWebGpu} asks for an
 * adapter and reads its description and limits, so the engine can skip a CPU-type adapter (Mesa's
 * llvmpipe, SwiftShader) unless `webgpu` was asked for by name.
 *
 * Guards, because tfjs-backend-webgpu fails silently:
 * - a GPU validation or out-of-memory error (an `uncapturederror` event) or a lost device is kept,
 *   printed once, and thrown as a {@linkcode WebGpuError} by the next read (`await t.data()`), so a
 *   task stops instead of going on with zeros;
 * - a tensor larger than the adapter's storage-binding limit (128 MiB on llvmpipe) is refused with
 *   a {@linkcode UserError} before it is allocated (wgpu would bind nothing and return zeros);
 * - a synchronous read of a tensor that lives on the GPU (`dataSync`, `arraySync`, or a tfjs op that
 *   reads synchronously) throws a one-line error naming the fix; in Deno it would otherwise crash
 *   inside tfjs (no 2-D OffscreenCanvas context).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { UserError } from "./errors.ts";
import { registerWebGpuKernels, type WebGpuUtil } from "./webgpu_kernels.ts";

/** What the engine reports about a WebGPU adapter. */
export interface WebGpuAdapterSummary {
  /** The adapter's description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** The vendor id as the adapter reports it. */
  vendor: string;
  /** True for an adapter that runs on the CPU (software rasterizer or fallback adapter). */
  isCpu: boolean;
  /** Largest storage buffer one kernel may bind, in bytes. */
  maxStorageBufferBindingSize: number;
  /** Largest buffer the device may allocate, in bytes. */
  maxBufferSize: number;
  /** The wgpu graphics API, from `DENO_WEBGPU_BACKEND`, or `auto` (wgpu's platform default). */
  api: string;
}

/** Result of {@linkcode probeWebGpu}: an adapter, or why there is none. */
export type WebGpuProbe =
  | { ok: true; adapter: GPUAdapter; summary: WebGpuAdapterSummary }
  | { ok: false; why: string };

/** A GPU error (validation, out of memory, device lost) that makes later results invalid. */
export class WebGpuError extends Error {
  /**
   * Makes the error.
   *
   * @param message One line: what the GPU reported.
   */
  constructor(message: string) {
    super(message);
    this.name = "WebGpuError";
  }
}

const CPU_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render/i;
const MIB = 1024 * 1024;
let fault: WebGpuError | null = null;
let started: string | null = null;

/**
 * Asks Deno's WebGPU for a high-performance adapter and summarises it; starts nothing.
 *
 * @returns The adapter and its summary, or `{ ok: false, why }` when there is none.
 * @example Probe before choosing a backend
 * ```ts
 * import { probeWebGpu } from "./webgpu.ts";
 * const probe = await probeWebGpu();
 * console.log(probe.ok ? probe.summary.description : probe.why);
 * ```
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu === undefined) return { ok: false, why: "this Deno has no navigator.gpu" };
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    return { ok: false, why: `requestAdapter failed: ${(e as Error).message.split("\n")[0]}` };
  }
  if (adapter === null) return { ok: false, why: "no WebGPU adapter found" };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const description = info.description || info.device || "unnamed adapter";
  const isCpu = info.isFallbackAdapter === true || CPU_ADAPTER.test(description);
  const summary: WebGpuAdapterSummary = {
    description,
    vendor: info.vendor,
    isCpu,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    api: readEnv("DENO_WEBGPU_BACKEND") ?? "auto",
  };
  return { ok: true, adapter, summary };
}

/**
 * Whether this machine may have a hardware GPU, without asking wgpu (which takes 0.5-2 s to
 * enumerate adapters and makes Mesa print warnings). On Linux a GPU shows up as a DRM render node,
 * an NVIDIA device or WSL's `/dev/dxg`; elsewhere (macOS, Windows) the answer is `true`. Deno
 * hides device nodes from processes without `--allow-all` (the tasks run with `--allow-read`), so
 * there the answer is `false` too: the automatic choice then skips webgpu, and
 * `--backend webgpu` (or `DIFFUSE_BACKEND=webgpu`) asks for it by name.
 *
 * @returns False where no GPU device node is visible to this process.
 * @example Skip the probe on a CPU-only Linux machine
 * ```ts
 * import { mayHaveGpu } from "./webgpu.ts";
 * if (mayHaveGpu()) console.log("probing for a WebGPU adapter");
 * ```
 */
export function mayHaveGpu(): boolean {
  if (Deno.build.os !== "linux") return true;
  const visible = (path: string, dir: boolean) => {
    try {
      if (!dir) return Deno.statSync(path) !== null;
      for (const entry of Deno.readDirSync(path)) if (entry.name.startsWith("renderD")) return true;
    } catch {
      // Missing, or hidden by Deno's permissions (NotCapable without --allow-all).
    }
    return false;
  };
  return visible("/dev/dri", true) || visible("/dev/nvidia0", false) ||
    visible("/dev/dxg", false);
}

/**
 * Describes an adapter in one line, as the engine's backend line shows it.
 *
 * @param summary From {@linkcode probeWebGpu}.
 * @returns E.g. `llvmpipe (...) [CPU adapter], binding 128 MiB, buffer 2048 MiB, wgpu vulkan`.
 * @example
 * ```ts ignore
 * const probe = await probeWebGpu();
 * if (probe.ok) console.log(describeAdapter(probe.summary));
 * ```
 */
export function describeAdapter(summary: WebGpuAdapterSummary): string {
  const kind = summary.isCpu ? " [CPU adapter]" : "";
  return `${summary.description}${kind}, vendor ${summary.vendor}, binding ${
    Math.floor(summary.maxStorageBufferBindingSize / MIB)
  } MiB, buffer ${Math.floor(summary.maxBufferSize / MIB)} MiB, wgpu ${summary.api}`;
}

/**
 * Imports tfjs-backend-webgpu, opens a device on the probed adapter with its full limits, installs
 * the guards (see the module doc) and the project's webgpu kernels, and makes `webgpu` current.
 * Idempotent: a second call only makes `webgpu` current again.
 *
 * @param probe A successful {@linkcode probeWebGpu} result.
 * @returns The adapter description (see {@linkcode describeAdapter}).
 * @throws {UserError} When the device cannot be opened or the backend does not start.
 * @example
 * ```ts ignore
 * const probe = await probeWebGpu();
 * if (probe.ok) await startWebGpu(probe);
 * ```
 */
export async function startWebGpu(probe: WebGpuProbe & { ok: true }): Promise<string> {
  if (started !== null) {
    await tf.setBackend("webgpu");
    return started;
  }
  const pkg = await import("@tensorflow/tfjs-backend-webgpu");
  // The package registered its own factory (priority 3, its own adapter); replace it with ours.
  tf.removeBackend("webgpu");
  const { adapter } = probe;
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  }).catch((e: Error) => {
    throw new UserError(
      `backend "webgpu": could not open a device on ${probe.summary.description} ` +
        `(${e.message.split("\n")[0]}); use --backend wasm`,
    );
  });
  watchDevice(device);
  // Low priority: selecting it stays the engine's decision, never tfjs' automatic default.
  tf.registerBackend("webgpu", () => {
    const backend = new pkg.WebGPUBackend(device, adapter.info);
    guardBackend(backend as unknown as GuardedBackend, probe.summary.maxStorageBufferBindingSize);
    return backend;
  }, -1);
  registerWebGpuKernels(
    pkg.webgpu_util as unknown as WebGpuUtil,
    probe.summary.maxStorageBufferBindingSize,
  );
  if (!(await tf.setBackend("webgpu"))) {
    throw new UserError(`backend "webgpu" did not start on ${probe.summary.description}`);
  }
  started = describeAdapter(probe.summary);
  return started;
}

/**
 * Throws the GPU error recorded since the backend started, if any (reads call this themselves).
 *
 * @throws {WebGpuError} When the device reported an uncaptured error or was lost.
 * @example
 * ```ts
 * import { checkWebGpuFault } from "./webgpu.ts";
 * checkWebGpuFault(); // nothing recorded: returns
 * ```
 */
export function checkWebGpuFault(): void {
  if (fault !== null) throw fault;
}

function recordFault(message: string): void {
  if (fault !== null) return;
  fault = new WebGpuError(message);
  console.error(`diffuse: ${message}`);
}

function watchDevice(device: GPUDevice): void {
  device.addEventListener("uncapturederror", (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    const kind = error.constructor?.name ?? "GPUError";
    recordFault(
      `webgpu ${kind}: ${error.message.split("\n")[0]}; results computed after it are invalid ` +
        `(lower --batch, or use --backend wasm)`,
    );
  });
  device.lost.then((info) => {
    if (info.reason === "destroyed") return;
    recordFault(`webgpu device lost (${info.reason}): ${info.message.split("\n")[0]}`);
  });
}

/** The parts of tfjs-backend-webgpu's `WebGPUBackend` the guards wrap. */
interface GuardedBackend {
  tensorMap: { get(dataId: object): { shape: number[]; dtype: string; values: unknown } };
  uploadToGPU(dataId: object): void;
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  readSync(dataId: object): tf.backend_util.BackendValues;
}

function guardBackend(backend: GuardedBackend, bindingLimit: number): void {
  const upload = backend.uploadToGPU.bind(backend);
  const read = backend.read.bind(backend);
  const readSync = backend.readSync.bind(backend);
  backend.uploadToGPU = (dataId) => {
    const { shape, dtype } = backend.tensorMap.get(dataId);
    const bytes = (dtype === "complex64" ? 8 : 4) * shape.reduce((a, b) => a * b, 1);
    if (bytes > bindingLimit) {
      throw new UserError(
        `webgpu: a ${dtype} tensor of shape [${shape}] needs ${(bytes / MIB).toFixed(0)} MiB, ` +
          `above this adapter's storage-binding limit of ${Math.floor(bindingLimit / MIB)} MiB; ` +
          `lower --batch (or the model size), or use --backend wasm`,
      );
    }
    upload(dataId);
  };
  backend.read = async (dataId) => {
    checkWebGpuFault();
    const values = await read(dataId);
    checkWebGpuFault();
    return values;
  };
  backend.readSync = (dataId) => {
    checkWebGpuFault();
    if (backend.tensorMap.get(dataId).values == null) {
      throw new Error(
        "webgpu: a synchronous read (dataSync/arraySync, or a tfjs op that reads its input " +
          "synchronously) of a tensor on the GPU; use `await t.data()`, or --backend wasm",
      );
    }
    return readSync(dataId);
  };
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
