/**
 * Turns the native BLAS kernels (`kernels.ts`) on for a backend when they can run, and off again.
 *
 * Not tied to a paper: engine work (shared/bench/ENGINE-NOTES.md). Acceleration is on by itself
 * when a BLAS library is found and the process has FFI permission (`--allow-ffi`); it is off when
 * `DIFFUSE_BLAS=0` (or `off`, `false`) or the `disable` option says so. `DIFFUSE_BLAS` may also
 * name a library file. The kernels replaced are kept, both as fallbacks for inputs the BLAS path
 * does not handle and to be restored when acceleration is turned off, so the rest of the graph
 * (and every gradient) is untouched.
 *
 * Convolutions go first to oneDNN (`core/dnnl/`, Debian's `libdnnl2`) when it is installed: its
 * direct convolutions ran the unet-bench 3x3 convolutions 3-5x faster than the `sgemm` lowering
 * (bench/unet_bench.ts). `DIFFUSE_DNNL=0` or the `dnnl: false` option keeps them on `sgemm`.
 * `DIFFUSE_NATIVE_SKIP=Add,Concat` (kernel names, comma-separated) leaves just those kernels to
 * the backend, for A/B measurements or to rule out a native kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  BLAS_KERNEL_NAMES,
  blasKernelConfigs,
  DNNL_KERNEL_NAMES,
  NATIVE_KERNEL_NAMES,
} from "./kernels.ts";
import { loadBlas } from "./openblas.ts";
import { loadDnnl } from "../dnnl/onednn.ts";
import { createDnnlConv, type DnnlConv } from "../dnnl/conv.ts";
import { createDnnlMatMul, type DnnlMatMul } from "../dnnl/matmul.ts";
import { createDnnlElementwise, type DnnlElementwise } from "../dnnl/elementwise.ts";
import { createDnnlGroupNorm, type GroupNormKernels } from "../dnnl/group_norm.ts";
import { loadNativeKernels } from "../native/kernels.ts";
import { granted, readEnv } from "../_permissions.ts";
import { createDnnlBinary, type DnnlBinary } from "../dnnl/binary.ts";
import { createDnnlConcat, type DnnlConcat } from "../dnnl/concat.ts";

const ALL_NAMES = [...BLAS_KERNEL_NAMES, ...DNNL_KERNEL_NAMES, ...NATIVE_KERNEL_NAMES];

/** Options of {@linkcode registerBlasKernels}. */
export interface RegisterBlasOptions {
  /** Backend whose kernels are replaced; it must be registered (selectBackend does it). */
  backend: "wasm" | "cpu";
  /** Turn acceleration off (restoring the backend's own kernels). @default false */
  disable?: boolean;
  /**
   * BLAS library file to open instead of the usual locations; falls back to a path given in
   * `DIFFUSE_BLAS`. @default undefined
   */
  libraryPath?: string;
  /** BLAS worker threads; undefined keeps the library's choice (OpenBLAS: all cores). @default undefined */
  threads?: number;
  /**
   * Run convolutions on oneDNN when its library is found (`DIFFUSE_DNNL=0` also turns it off).
   * @default true
   */
  dnnl?: boolean;
  /**
   * Use the fused kernels of core/native (GroupNorm + SiLU, scaled residual sums), building
   * them with the C compiler on first use when allowed (`DIFFUSE_NATIVE=0` also turns them off).
   * @default true
   */
  native?: boolean;
}

/** What {@linkcode registerBlasKernels} did. */
export interface BlasRegistration {
  /** Whether the BLAS kernels are now registered. */
  enabled: boolean;
  /** One line saying which, and why; the caller prints it once. */
  message: string;
  /** Names of the kernels now served by BLAS (empty when off). */
  kernels: string[];
  /** oneDNN's version when convolutions run on it, else undefined. */
  dnnl?: string;
  /** Path of the fused-kernel library when it is in use, else undefined. */
  native?: string;
}

const originals = new Map<string, tf.KernelConfig | undefined>();
const ours = new WeakSet<tf.KernelFunc>();

/**
 * Registers BLAS-backed MatMul and Conv2D kernels (forward and both gradients) on a backend when
 * possible, or restores the backend's own kernels when not. Safe to call again (e.g. to turn
 * acceleration off); never throws for a missing library or permission.
 *
 * @returns Whether acceleration is on, a one-line message, and the kernels replaced.
 * @throws {RangeError} For an unknown backend or invalid `threads`.
 * @example Accelerate the wasm backend
 * ```ts
 * import { selectBackend } from "../engine.ts";
 * import { registerBlasKernels } from "./register.ts";
 * await selectBackend({ backend: "wasm", log: () => {} });
 * const { message } = registerBlasKernels({ backend: "wasm" });
 * console.error(message); // "diffuse: native BLAS on for wasm (OpenBLAS ...)"
 * ```
 */
export function registerBlasKernels(options: RegisterBlasOptions): BlasRegistration {
  const { backend, disable = false, threads } = options;
  if (backend !== "wasm" && backend !== "cpu") {
    throw new RangeError(`registerBlasKernels: unknown backend "${backend}"; use "wasm" or "cpu"`);
  }
  const env = readEnv("DIFFUSE_BLAS")?.trim();
  const envOff = env !== undefined && ["0", "off", "false", "no"].includes(env.toLowerCase());
  const envPath = env !== undefined && !envOff && !["1", "on", "true", "yes", ""].includes(env)
    ? env
    : undefined;
  const off = (why: string): BlasRegistration => {
    restore(backend);
    return {
      enabled: false,
      message: `diffuse: native BLAS off for ${backend} (${why})`,
      kernels: [],
    };
  };
  if (disable) return off("disabled by option");
  if (envOff) return off(`DIFFUSE_BLAS=${env}`);
  if (!granted({ name: "ffi" })) return off("run with --allow-ffi to use OpenBLAS");
  const loaded = loadBlas({ libraryPath: options.libraryPath ?? envPath, threads });
  if (!loaded.ok) {
    return off(`${loaded.why}; on Debian/Ubuntu: apt-get install libopenblas0-pthread`);
  }
  const { blas } = loaded;
  for (const name of ALL_NAMES) {
    const key = `${backend}/${name}`;
    const current = findKernel(name, backend);
    // Keep the first original found: a later wrapper (e.g. wasm_kernels.ts registering again
    // after us) may wrap our own kernel, and restoring it would leave BLAS on.
    if (originals.get(key) !== undefined) continue;
    if (current === undefined || !ours.has(current.kernelFunc)) originals.set(key, current);
  }
  const fallbacks = new Map(ALL_NAMES.map((n) => [n, originals.get(`${backend}/${n}`)]));
  const dnnl = options.dnnl === false ? undefined : openDnnl();
  if (dnnl === undefined) restore(backend, DNNL_KERNEL_NAMES);
  const nativeLoad = options.native === false ? undefined : loadNativeKernels();
  const native = nativeLoad?.ok ? nativeLoad.kernels : undefined;
  if (native === undefined) restore(backend, NATIVE_KERNEL_NAMES);
  // Kernels named in DIFFUSE_NATIVE_SKIP stay the backend's own (A/B measurements, a suspected bug).
  const skipped = new Set(
    (readEnv("DIFFUSE_NATIVE_SKIP") ?? "").split(",").map((s) => s.trim()).filter((s) => s),
  );
  restore(backend, [...skipped]);
  const configs = blasKernelConfigs(blas, {
    backend,
    fallbacks,
    conv: dnnl?.conv,
    dnnlMatMul: dnnl?.matMul,
    elementwise: dnnl?.elementwise,
    groupNorm: native?.groupNorm ?? dnnl?.groupNorm,
    native,
    binary: dnnl?.binary,
    concat: dnnl?.concat,
  }).filter((c) => !skipped.has(c.kernelName));
  for (const config of configs) {
    if (findKernel(config.kernelName, backend) !== undefined) {
      tf.unregisterKernel(config.kernelName, backend);
    }
    ours.add(config.kernelFunc);
    tf.registerKernel(config);
  }
  // The names served are those registered: blasKernelConfigs decides which, once.
  const kernels = configs.map((c) => c.kernelName);
  const threadText = `${blas.threads} thread${blas.threads === 1 ? "" : "s"}`;
  const dnnlText = dnnl
    ? `; convolutions, matrix products, sigmoid, softmax, GroupNorm and large add, sub, ` +
      `multiply and concat on oneDNN ` +
      `${dnnl.version} ` +
      `(DIFFUSE_DNNL=0: off)`
    : "";
  const nativeText = native
    ? `; GroupNorm + SiLU and residual sums fused in ${native.path}` +
      `${native.built ? " (just built)" : ""} (DIFFUSE_NATIVE=0: off)`
    : nativeLoad && !nativeLoad.ok
    ? `; fused kernels off: ${nativeLoad.why}`
    : "";
  return {
    enabled: true,
    message: `diffuse: native BLAS on for ${backend} (${blas.description}, ${threadText}, ` +
      `${blas.path}): ${kernels.join(", ")}${dnnlText}${nativeText}`,
    kernels,
    dnnl: dnnl?.version,
    native: native?.path,
  };
}

// oneDNN's kernels, one instance per process; undefined when off or not installed.
type DnnlKernels = {
  version: string;
  conv: DnnlConv;
  matMul: DnnlMatMul;
  elementwise: DnnlElementwise;
  groupNorm: GroupNormKernels;
  binary: DnnlBinary;
  concat: DnnlConcat;
};
let dnnlKernels: DnnlKernels | null | undefined;
function openDnnl(): DnnlKernels | undefined {
  const env = readEnv("DIFFUSE_DNNL")?.trim().toLowerCase();
  if (env !== undefined && ["0", "off", "false", "no"].includes(env)) return undefined;
  if (dnnlKernels === undefined) {
    const r = loadDnnl();
    dnnlKernels = r.ok
      ? {
        version: r.dnnl.version,
        conv: createDnnlConv(r.dnnl),
        matMul: createDnnlMatMul(r.dnnl),
        elementwise: createDnnlElementwise(r.dnnl),
        groupNorm: createDnnlGroupNorm(r.dnnl),
        binary: createDnnlBinary(r.dnnl),
        concat: createDnnlConcat(r.dnnl),
      }
      : null;
  }
  return dnnlKernels ?? undefined;
}

// Puts back the kernels replaced on this backend. A kernel registered over ours since then may
// wrap ours, so it is replaced by the original too.
function restore(backend: string, names: readonly string[] = ALL_NAMES): void {
  for (const name of names) {
    const key = `${backend}/${name}`;
    if (!originals.has(key)) continue; // never replaced
    const original = originals.get(key);
    const current = findKernel(name, backend);
    if (original === undefined) {
      if (current !== undefined && ours.has(current.kernelFunc)) tf.unregisterKernel(name, backend);
      continue;
    }
    if (current?.kernelFunc === original.kernelFunc) continue;
    if (current !== undefined) tf.unregisterKernel(name, backend);
    tf.registerKernel(original);
  }
}

function findKernel(name: string, backend: string): tf.KernelConfig | undefined {
  return tf.getKernel(name, backend) ?? undefined;
}
