/**
 * Builds core/native/kernels.c with the system C compiler into a per-user cache, once per source,
 * flags and CPU, the way PyTorch's `cpp_extension` builds its extensions on first use.
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). The library is found or
 * built in this order: `DIFFUSE_NATIVE=/path/lib.so` (a prebuilt file), else
 * `$DIFFUSE_NATIVE_CACHE`, `$XDG_CACHE_HOME/diffuse` or `~/.cache/diffuse` holding
 * `libdiffuse_kernels-<key>.so`, where the key hashes the C source, the compiler flags and the
 * CPU's feature flags (`-march=native` code must not meet another CPU through a shared home).
 * Building needs `--allow-run=cc` (with read and write access to the cache); without it, or
 * without a compiler (Debian: `apt-get install gcc`), the fused kernels are off and the oneDNN
 * ones serve. A build writes a temporary file and renames it, so concurrent processes never load
 * half a library.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { granted, readEnv } from "../_permissions.ts";

/**
 * Compiler flags. The four math flags (reassociation, reciprocals, no signed zeros, no traps; NaN
 * and infinity kept, unlike `-ffast-math`) let the SiLU loops vectorize fully: 2.6 -> 1.4 ms on
 * one core for 2M elements. They are spelled out instead of `-funsafe-math-optimizations`
 * because that flag makes GCC 12 link `crtfastmath.o` even into a shared library, whose
 * constructor turns on flush-to-zero and denormals-are-zero for the whole process when the
 * library loads: JavaScript's `Math.fround(1e-40)` became 0, and tfjs-wasm's ClipByValue, which
 * reads int32 tensors as float32 bits, zeroed every small integer. `-mprefer-vector-width=512`
 * lets GCC use whole AVX-512 registers where the CPU has them (GCC's default for these CPUs is
 * 256 bits): the GroupNorm gradient took 38 instead of 48 ms per unet-bench train step on a
 * 2-core Xeon; on x86 CPUs without AVX-512 it changes nothing.
 */
export const NATIVE_FLAGS = [
  "-O3",
  "-march=native",
  // An x86 option: other compilers' targets would reject it.
  ...(Deno.build.arch === "x86_64" ? ["-mprefer-vector-width=512"] : []),
  "-fno-signed-zeros",
  "-fno-trapping-math",
  "-fassociative-math",
  "-freciprocal-math",
  "-fopenmp",
  "-fPIC",
  "-shared",
] as const;

/** Where the library is, or why there is none. */
export type NativeBuildResult =
  | { ok: true; path: string; built: boolean }
  | { ok: false; why: string };

/** Options of {@linkcode buildNativeKernels}. */
export interface NativeBuildOptions {
  /** Cache folder. @default $DIFFUSE_NATIVE_CACHE, $XDG_CACHE_HOME/diffuse or ~/.cache/diffuse */
  cacheDir?: string;
  /** Compiler command. @default "cc" */
  compiler?: string;
}

/**
 * Returns the path of the fused-kernel library, building it first when the cache lacks it.
 * Never throws: a missing permission, compiler or source is a reason in the result.
 *
 * @returns The library path (and whether this call built it) or why there is none.
 * @example Find or build the library
 * ```ts
 * import { buildNativeKernels } from "./build.ts";
 * const r = buildNativeKernels();
 * console.log(r.ok ? r.path : r.why);
 * ```
 */
export function buildNativeKernels(options: NativeBuildOptions = {}): NativeBuildResult {
  const compiler = options.compiler ?? "cc";
  const source = new URL("./kernels.c", import.meta.url);
  if (source.protocol !== "file:") {
    return { ok: false, why: "the C source is not a local file (build from a checkout)" };
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  if (cacheDir === undefined) {
    return { ok: false, why: "no cache folder (set DIFFUSE_NATIVE_CACHE)" };
  }
  const sourcePath = fileURLToPath(source);
  let text: string;
  try {
    text = Deno.readTextFileSync(sourcePath);
  } catch (e) {
    return { ok: false, why: `cannot read ${sourcePath}: ${firstLine(e)}` };
  }
  const key = createHash("sha256").update(text).update(NATIVE_FLAGS.join(" "))
    .update(cpuFlags()).digest("hex").slice(0, 16);
  const path = join(cacheDir, `libdiffuse_kernels-${key}.so`);
  if (exists(path)) return { ok: true, path, built: false };
  if (!granted({ name: "run", command: compiler })) {
    return { ok: false, why: `run with --allow-run=${compiler} to build them` };
  }
  try {
    Deno.mkdirSync(cacheDir, { recursive: true });
  } catch (e) {
    return { ok: false, why: `cannot create the cache folder ${cacheDir}: ${firstLine(e)}` };
  }
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    const out = new Deno.Command(compiler, {
      args: [...NATIVE_FLAGS, "-o", tmp, sourcePath, "-lm"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!out.success) {
      removeQuietly(tmp);
      const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "";
      return { ok: false, why: `${compiler} failed: ${err}` };
    }
    Deno.renameSync(tmp, path);
    return { ok: true, path, built: true };
  } catch (e) {
    removeQuietly(tmp);
    const why = e instanceof Deno.errors.NotFound
      ? `no C compiler "${compiler}" (Debian: apt-get install gcc)`
      : firstLine(e);
    return { ok: false, why };
  }
}

function defaultCacheDir(): string | undefined {
  const own = readEnv("DIFFUSE_NATIVE_CACHE");
  if (own) return own;
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "diffuse");
  const home = readEnv("HOME");
  return home ? join(home, ".cache", "diffuse") : undefined;
}

// The CPU's feature flags, as -march=native sees them (Linux; elsewhere the key omits them).
function cpuFlags(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return info.split("\n").find((l) => l.startsWith("flags")) ?? "";
  } catch {
    return "";
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* nothing written */ }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
