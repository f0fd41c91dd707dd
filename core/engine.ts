/**
 * Backend choice (DESIGN.md "Engine"): `tensorflow` (tfjs-node-gpu, else tfjs-node) when installed
 * and loadable, else `webgpu` on a hardware GPU adapter (never automatically on a CPU-type adapter
 * such as Mesa's llvmpipe; see `webgpu.ts`), else `wasm`, else `cpu`. A `--backend` flag or the
 * `DIFFUSE_BACKEND` environment variable overrides the automatic choice. On `wasm` the project's own training kernels are
 * registered (see `wasm_kernels.ts`), so training works on every backend.
 *
 * Gradients: tfjs-core's Node bundle registers no gradient functions, and Deno cannot load its
 * ESM `register_all_gradients.js` (extensionless imports). tfjs-layers' Node bundle registers the
 * same gradient configs into tfjs-core's global registry, so this module imports it for that side
 * effect alone (the `@tensorflow/tfjs` union package, which tfjs-node-gpu uses, does the same).
 *
 * tfjs-node-gpu is never imported statically: on a machine without libtensorflow that import
 * fails. It is loaded with a dynamic import only when its package is present in `node_modules`
 * (install it with `deno task setup:gpu`). tfjs-backend-webgpu is likewise imported only when the
 * `webgpu` backend is started, after an adapter was found.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-layers";
import { UserError } from "./errors.ts";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
import { resizeNearestNeighborGradCpuConfig } from "./kernels/resize_nearest_neighbor_grad.ts";
import { registerBlasKernels } from "./blas/register.ts";

/** Names of the backends this toolkit runs on. */
export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";

/** The backends a user may ask for; `auto` picks the fastest one that loads. */
export const BACKEND_CHOICES = ["auto", "tensorflow", "webgpu", "wasm", "cpu"] as const;

/** Options of {@linkcode selectBackend}. */
export interface SelectBackendOptions {
  /** Requested backend; falls back to `DIFFUSE_BACKEND`, then `auto`. @default "auto" */
  backend?: string;
  /**
   * Native BLAS for the heavy kernels on `wasm` and `cpu` (OpenBLAS or Accelerate through Deno
   * FFI; needs `--allow-ffi`). `false` turns it off, as does `DIFFUSE_BLAS=0`. @default true
   */
  blas?: boolean;
  /** Where the one-line choice is reported; pass `() => {}` to silence. @default console.error */
  log?: (message: string) => void;
}

const TENSORFLOW_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];
let reported: string | null = null;

/**
 * Chooses and initializes the tfjs backend, and reports the choice once per process.
 *
 * @returns The name of the backend in use.
 * @throws {UserError} For an unknown backend name, `tensorflow` asked for but not loadable, or
 *   `webgpu` asked for where no WebGPU adapter exists.
 * @example Pick the fastest available backend
 * ```ts
 * import { selectBackend } from "./engine.ts";
 * const name = await selectBackend({ backend: "cpu", log: () => {} });
 * ```
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendName> {
  const { log = (m: string) => console.error(m), blas = true } = options;
  const requested = options.backend ?? readEnv("DIFFUSE_BACKEND") ?? "auto";
  if (!(BACKEND_CHOICES as readonly string[]).includes(requested)) {
    throw new UserError(
      `unknown backend "${requested}"${
        options.backend === undefined ? " (from DIFFUSE_BACKEND)" : ""
      }: use one of ${BACKEND_CHOICES.join(", ")}`,
    );
  }
  let chosen: BackendName | null = null;
  let note = "";
  if (requested === "tensorflow" || requested === "auto") {
    const loaded = await loadTensorflow();
    if (loaded.ok) chosen = "tensorflow";
    else if (requested === "tensorflow") {
      throw new UserError(
        `backend "tensorflow" is not available (${loaded.why}); run \`deno task setup:gpu\` ` +
          `on a machine with libtensorflow, or use --backend wasm`,
      );
    } else note = ` (tensorflow: ${loaded.why})`;
  }
  let gpu = "";
  if (chosen === null && (requested === "webgpu" || requested === "auto")) {
    const started = await tryWebGpu(requested === "webgpu");
    if (started.ok) [chosen, gpu] = ["webgpu", ` (${started.adapter})`];
    else note += ` (webgpu: ${started.why})`;
  }
  if (chosen === null && (requested === "wasm" || requested === "auto")) {
    if (await tf.setBackend("wasm")) chosen = "wasm";
    else if (requested === "wasm") {
      throw new RangeError(`backend "wasm" failed to initialize; use --backend cpu`);
    }
  }
  if (chosen === null) {
    if (!(await tf.setBackend("cpu"))) throw new RangeError("no tfjs backend could start");
    chosen = "cpu";
  }
  if (chosen !== "tensorflow" && tf.getBackend() !== chosen) await tf.setBackend(chosen);
  await tf.ready();
  if (chosen === "wasm") registerWasmTrainingKernels();
  if (chosen === "cpu") fixCpuKernels();
  // Registered after (and on every call, on top of) the wasm kernels, which wrap what they find.
  const accel = chosen === "tensorflow" || chosen === "webgpu"
    ? null
    : registerBlasKernels({ backend: chosen, disable: !blas });
  const dnnl = (accel?.dnnl ? `, oneDNN ${accel.dnnl}` : "") +
    (accel?.native ? ", fused kernels (core/native)" : "");
  const line = `diffuse: backend ${chosen}${gpu}${note}${
    accel ? `; ${accel.message.replace(/^diffuse: /, "").replace(/\): .*$/, ")")}${dnnl}` : ""
  }`;
  if (reported !== line) {
    reported = line;
    log(line);
  }
  return chosen;
}

// webgpu: `explicit` (asked for by name) takes any adapter, a CPU one included, and turns a
// missing one into a UserError; `auto` takes only a hardware adapter.
async function tryWebGpu(
  explicit: boolean,
): Promise<{ ok: true; adapter: string } | { ok: false; why: string }> {
  const { mayHaveGpu, probeWebGpu, startWebGpu } = await import("./webgpu.ts");
  // Automatic choice on a machine without a GPU device: a CPU adapter at best, skip the probe.
  if (!explicit && !mayHaveGpu()) {
    return { ok: false, why: "no GPU device visible; --backend webgpu asks wgpu anyway" };
  }
  const probe = await probeWebGpu();
  if (!probe.ok) {
    if (!explicit) return probe;
    throw new UserError(
      `backend "webgpu": ${probe.why}; install the GPU's Vulkan driver (or mesa-vulkan-drivers ` +
        `for a software one, with DENO_WEBGPU_BACKEND=vulkan), or use --backend wasm`,
    );
  }
  if (probe.summary.isCpu && !explicit) {
    return {
      ok: false,
      why: `${probe.summary.description} is a CPU adapter, skipped; --backend webgpu uses it`,
    };
  }
  return { ok: true, adapter: await startWebGpu(probe) };
}

// tfjs-backend-cpu 4.22.0 offsets dy by the input's batch stride in ResizeNearestNeighborGrad,
// so every image after the first gets a wrong gradient; replace it with the corrected kernel.
function fixCpuKernels(): void {
  const { kernelName, backendName } = resizeNearestNeighborGradCpuConfig;
  const current = tf.getKernel(kernelName, backendName);
  if (current?.kernelFunc === resizeNearestNeighborGradCpuConfig.kernelFunc) return;
  if (current) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(resizeNearestNeighborGradCpuConfig);
}

async function loadTensorflow(): Promise<{ ok: true } | { ok: false; why: string }> {
  for (const pkg of TENSORFLOW_PACKAGES) {
    if (!packageInstalled(pkg)) continue;
    try {
      // A computed specifier keeps `deno check` from resolving a package most users lack.
      const specifier = `npm:${pkg}@4.22.0`;
      await import(specifier);
      if (await tf.setBackend("tensorflow")) return { ok: true };
      return { ok: false, why: `${pkg} loaded but its backend did not start` };
    } catch (e) {
      return { ok: false, why: `${pkg} failed to load: ${(e as Error).message.split("\n")[0]}` };
    }
  }
  return { ok: false, why: "tfjs-node-gpu / tfjs-node not installed" };
}

function packageInstalled(pkg: string): boolean {
  try {
    return Deno.statSync(`node_modules/${pkg}/package.json`).isFile;
  } catch {
    return false;
  }
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: the flag alone decides
  }
}

export { requireBackend } from "./_require_backend.ts";
