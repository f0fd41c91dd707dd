/**
 * Native single-precision matrix products (BLAS level 3, `cblas_sgemm`) through Deno FFI.
 *
 * Not tied to a paper: this is an engine concern (shared/bench/ENGINE-NOTES.md, "Native BLAS
 * through Deno FFI"). OpenBLAS reaches ~110 GFLOP/s per core on a 1024 product where the tfjs wasm
 * backend reaches 5-9, and it reads and writes Float32Array views of a WebAssembly.Memory in
 * place, so wasm tensors need no copies.
 *
 * The library is found by trying, in order: an explicit path, then the usual install locations
 * (Debian's alternatives link `libopenblas.so.0` and its `openblas-pthread`, `openblas-openmp`,
 * `openblas-serial` variants; Fedora, Arch), and on macOS Apple's Accelerate framework, then
 * Homebrew's OpenBLAS.
 * Loading needs `--allow-ffi`. On Linux the library is first pinned in memory (glibc `dlopen` with
 * `RTLD_NODELETE`): Deno unloads FFI libraries when the process tears down, and unloading an
 * OpenMP build of OpenBLAS while its worker threads live crashed every run at exit (measured:
 * exit code 139 with Debian's openblas-openmp after a threaded product; 0 once pinned).
 *
 * @module
 */

import { pinLibrary } from "../_pin_library.ts";
import { granted } from "../_permissions.ts";

/** Row-major layout and transpose flags of the CBLAS interface. */
const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // m
      "i32", // n
      "i32", // k
      "f32", // alpha
      "buffer", // a
      "i32", // lda
      "buffer", // b
      "i32", // ldb
      "f32", // beta
      "buffer", // c
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

/**
 * One product `C = alpha * op(A) op(B) + beta * C` in row-major storage, where `op(X)` is `X` or
 * its transpose. `op(A)` is m x k, `op(B)` is k x n, `C` is m x n. The arrays are views whose first
 * element is the matrix's first element; `lda`, `ldb`, `ldc` are their row pitches in elements.
 */
export interface GemmOp {
  /** Use the transpose of `a` (stored k x m). @default false */
  transA?: boolean;
  /** Use the transpose of `b` (stored n x k). @default false */
  transB?: boolean;
  /** Rows of `op(A)` and of `C`. */
  m: number;
  /** Columns of `op(B)` and of `C`. */
  n: number;
  /** Columns of `op(A)`, rows of `op(B)`. */
  k: number;
  /** Scale of the product. @default 1 */
  alpha?: number;
  /** Left matrix, read only. */
  a: Float32Array;
  /** Row pitch of `a` in elements (at least its stored column count). */
  lda: number;
  /** Right matrix, read only. */
  b: Float32Array;
  /** Row pitch of `b` in elements. */
  ldb: number;
  /** Scale of the old `C`; 0 ignores its contents (even NaN). @default 0 */
  beta?: number;
  /** Output, updated in place. */
  c: Float32Array;
  /** Row pitch of `c` in elements. */
  ldc: number;
}

/** Runs one {@linkcode GemmOp}; throws RangeError when a view is too short for its shape. */
export type Sgemm = (op: GemmOp) => void;

/** A loaded BLAS library. */
export interface BlasLibrary {
  /** Path or name the library was opened from. */
  path: string;
  /** Human-readable description, e.g. "OpenBLAS 0.3.21 ... Haswell". */
  description: string;
  /** Worker threads the library uses (1 when it cannot say). */
  threads: number;
  /** The checked `cblas_sgemm` binding. */
  sgemm: Sgemm;
  /** Sets the worker thread count where the library allows it (OpenBLAS); a no-op elsewhere. */
  setThreads(count: number): void;
  /** Releases this handle (a pinned library stays loaded); `sgemm` must not be called afterwards. */
  close(): void;
}

/** Options of {@linkcode loadBlas}. */
export interface LoadBlasOptions {
  /** Try only this library file instead of the usual locations. @default undefined */
  libraryPath?: string;
  /** Worker threads to ask OpenBLAS for; undefined keeps its own choice. @default undefined */
  threads?: number;
}

/** Result of {@linkcode loadBlas}: the library, or why none could be loaded. */
export type LoadBlasResult = { ok: true; blas: BlasLibrary } | { ok: false; why: string };

/**
 * The library files tried, in order, on this operating system and architecture.
 *
 * @returns Absolute paths first, then bare names left to the dynamic loader's search.
 * @example List the candidates
 * ```ts
 * import { blasCandidates } from "./openblas.ts";
 * console.log(blasCandidates().length > 0);
 * ```
 */
export function blasCandidates(): string[] {
  if (Deno.build.os === "darwin") {
    // Accelerate first: always present, and faster than OpenBLAS on Apple silicon.
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
    ];
  }
  if (Deno.build.os === "windows") return ["libopenblas.dll", "openblas.dll"];
  const multiarch = `/usr/lib/${Deno.build.arch}-linux-gnu`;
  return [
    `${multiarch}/libopenblas.so.0`,
    `${multiarch}/openblas-pthread/libopenblas.so.0`,
    `${multiarch}/openblas-openmp/libopenblas.so.0`,
    `${multiarch}/openblas-serial/libopenblas.so.0`,
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
    "/usr/local/lib/libopenblas.so.0",
    "libopenblas.so.0",
    "libopenblas.so",
  ];
}

const opened = new Map<string, BlasLibrary>();

/**
 * Opens a BLAS library that exports `cblas_sgemm`. Needs `--allow-ffi` (checked, never prompted
 * for); never throws for a missing library or permission, but says why in the result. Libraries
 * are cached per path.
 *
 * @returns The library, or `{ ok: false, why }`.
 * @throws {RangeError} When `threads` is not a positive integer.
 * @example Multiply two 2x2 matrices
 * ```ts
 * import { loadBlas } from "./openblas.ts";
 * const r = loadBlas();
 * if (r.ok) {
 *   const a = new Float32Array([1, 2, 3, 4]), c = new Float32Array(4);
 *   r.blas.sgemm({ m: 2, n: 2, k: 2, a, lda: 2, b: a, ldb: 2, c, ldc: 2 });
 *   console.log(c); // [7, 10, 15, 22]
 * }
 * ```
 */
export function loadBlas(options: LoadBlasOptions = {}): LoadBlasResult {
  const { libraryPath, threads } = options;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new RangeError(`BLAS threads must be a positive integer, got ${threads}`);
  }
  if (!granted({ name: "ffi" })) return { ok: false, why: "no --allow-ffi permission" };
  const candidates = libraryPath !== undefined ? [libraryPath] : blasCandidates();
  const failures: string[] = [];
  for (const path of candidates) {
    let blas = opened.get(path);
    if (blas === undefined) {
      try {
        blas = openLibrary(path);
      } catch (e) {
        failures.push(`${path}: ${firstLine(e)}`);
        continue;
      }
      opened.set(path, blas);
    }
    if (threads !== undefined) blas.setThreads(threads);
    return { ok: true, blas };
  }
  const why = libraryPath !== undefined
    ? `cannot open ${failures[0]}`
    : `no BLAS library found (tried ${candidates.length} locations)`;
  return { ok: false, why };
}

function openLibrary(path: string): BlasLibrary {
  const lib = Deno.dlopen(path, SYMBOLS);
  pinLibrary(path);
  const s = lib.symbols;
  let closed = false;
  const config = s.openblas_get_config?.();
  const description = config
    ? Deno.UnsafePointerView.getCString(config).trim()
    : path.includes("Accelerate")
    ? "Apple Accelerate"
    : "BLAS";
  const blas: BlasLibrary = {
    path,
    description,
    threads: s.openblas_get_num_threads?.() ?? 1,
    sgemm(op: GemmOp): void {
      const { m, n, k, a, lda, b, ldb, c, ldc } = op;
      const transA = op.transA ?? false, transB = op.transB ?? false;
      if (m <= 0 || n <= 0) return;
      checkView("a", a, transA ? k : m, transA ? m : k, lda);
      checkView("b", b, transB ? n : k, transB ? k : n, ldb);
      checkView("c", c, m, n, ldc);
      if (closed) throw new Error("BLAS library was closed; call loadBlas() again");
      s.cblas_sgemm(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        op.alpha ?? 1,
        a,
        lda,
        b,
        ldb,
        op.beta ?? 0,
        c,
        ldc,
      );
    },
    setThreads(count: number): void {
      if (!s.openblas_set_num_threads) return;
      s.openblas_set_num_threads(count);
      blas.threads = s.openblas_get_num_threads?.() ?? count;
    },
    close(): void {
      if (closed) return;
      closed = true;
      opened.delete(path);
      lib.close();
    },
  };
  return blas;
}

// A short view would let native code read or write past it: check before every call.
function checkView(name: string, v: Float32Array, rows: number, cols: number, ld: number): void {
  if (rows <= 0 || cols <= 0) return;
  if (ld < cols || (rows - 1) * ld + cols > v.length) {
    throw new RangeError(
      `sgemm: ${name} (${v.length} elements, pitch ${ld}) cannot hold ${rows}x${cols}`,
    );
  }
}

// Query, never request: a missing permission must not prompt.
function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
