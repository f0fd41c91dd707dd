/**
 * oneDNN (Intel's Deep Neural Network Library, v2 C API) through Deno FFI: the library, its CPU
 * engine and stream, and the few calls the convolution kernels need (memory descriptors,
 * primitive descriptors, primitives, reorders, execution).
 *
 * Not tied to a paper: engine work (issue "Engine speed"; shared/bench/ENGINE-NOTES.md). oneDNN's
 * just-in-time direct convolutions on NHWC data keep the vector units busy for the 32- and
 * 64-channel 3x3 convolutions of a small U-Net, where lowering to `sgemm` (core/blas/conv_gemm.ts)
 * multiplies matrices only 32 or 64 wide.
 *
 * Only the v2 API is bound (Debian 12 ships `libdnnl2`, 2.6); a library reporting another major
 * version is not used. Structures are passed as opaque byte buffers sized from the v2 headers
 * (`dnnl_memory_desc_t` is 696 bytes, `dnnl_convolution_desc_t` 5976); larger buffers are used so
 * that a patch release adding fields cannot overrun them. Loading needs `--allow-ffi`; with env
 * access it also bounds how long OpenMP's threads spin (core/_openmp.ts) unless the user set it. Like
 * OpenBLAS, the library is pinned (glibc `RTLD_NODELETE`) so its OpenMP threads never outlive it.
 *
 * @module
 */

import { chooseOpenMpWait } from "../_openmp.ts";
import { pinLibrary } from "../_pin_library.ts";

/** Byte size reserved for one `dnnl_memory_desc_t` (696 in v2.6). */
const MD_BYTES = 1024;
/** `sizeof(dnnl_memory_desc_t)` of the v2 ABI: the stride of descriptor arrays (concat). */
const MD_STRUCT_BYTES = 696;
/** Byte size reserved for one operation descriptor (`dnnl_convolution_desc_t` is 5976 in v2.6). */
const OP_DESC_BYTES = 8192;

/** Constants of the v2 C API (dnnl_types.h). */
export const DNNL = {
  f32: 3,
  tagAny: 1,
  tagA: 2,
  tagAb: 3,
  tagNhwc: 20,
  tagHwio: 30,
  forwardTraining: 64,
  forwardInference: 96,
  backwardData: 160,
  backwardWeights: 192,
  convolutionDirect: 1,
  eltwiseLogistic: 175,
  eltwiseSwish: 223,
  eltwiseSquare: 79,
  binaryAdd: 131056,
  binaryMul: 131057,
  binarySub: 131061,
  reductionSum: 196596,
  querySrcMd: 129,
  queryDiffSrcMd: 130,
  queryWeightsMd: 131,
  queryDiffWeightsMd: 132,
  argSrc: 1,
  argSrc1: 2,
  argMultipleSrc: 1024,
  argDst: 17,
  argWeights: 33,
  argBias: 41,
  argDiffSrc: 129,
  argDiffDst: 145,
  argDiffWeights: 161,
} as const;

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_matmul_desc_init: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_eltwise_forward_desc_init: {
    parameters: ["buffer", "i32", "i32", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_eltwise_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_softmax_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "i32"],
    result: "i32",
  },
  dnnl_binary_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_concat_primitive_desc_create: {
    parameters: ["buffer", "buffer", "i32", "i32", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_convolution_forward_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // weights_desc
      "buffer", // bias_desc (or null)
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
} as const;

/** The bound C functions of oneDNN, for descriptor initializers. */
export type DnnlSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A memory descriptor: an opaque `dnnl_memory_desc_t` in a byte buffer we own. */
export type MemoryDesc = Uint8Array<ArrayBuffer>;

/** One oneDNN primitive ready to run: the primitive and its descriptor. */
export interface Primitive {
  /** The `dnnl_primitive_t`. */
  readonly handle: Deno.PointerValue;
  /** The `dnnl_primitive_desc_t` it was made from (kept for queries). */
  readonly desc: Deno.PointerValue;
}

/** An opened oneDNN library with a CPU engine and an in-order stream. */
export interface Dnnl {
  /** Library file opened. */
  readonly path: string;
  /** Version, e.g. `2.6.3`. */
  readonly version: string;
  /** Builds a memory descriptor of float32 data with logical `dims` laid out by `tag`. */
  memoryDesc(dims: readonly number[], tag: number): MemoryDesc;
  /** Builds a memory descriptor of float32 data with logical `dims` and element `strides`. */
  stridedDesc(dims: readonly number[], strides: readonly number[]): MemoryDesc;
  /**
   * Builds a primitive from an operation descriptor filled by `init` (one of the `*_desc_init`
   * calls, given the buffer to fill), with an optional forward primitive as hint; `null` when
   * oneDNN has no implementation for it.
   */
  primitive(
    init: (symbols: DnnlSymbols, opDesc: Uint8Array<ArrayBuffer>) => number,
    hint?: Primitive,
  ): Primitive | null;
  /**
   * A concatenation of `srcs` along dimension `axis` into `dst` (the concat primitive, whose
   * descriptor is made without an operation descriptor); `null` when unsupported.
   */
  concat(dst: MemoryDesc, srcs: readonly MemoryDesc[], axis: number): Primitive | null;
  /** A reorder from one layout to another; `null` when unsupported. */
  reorder(from: Deno.PointerValue, to: Deno.PointerValue): Primitive | null;
  /** The memory descriptor a primitive chose for one of its arguments (`DNNL.query*Md`). */
  queryMd(p: Primitive, what: number): Deno.PointerValue;
  /** Whether two memory descriptors describe the same layout. */
  sameMd(a: Deno.PointerValue, b: Deno.PointerValue): boolean;
  /** Bytes a memory descriptor spans. */
  mdSize(md: Deno.PointerValue): number;
  /** A memory object over `md`, its data set per call with {@linkcode Dnnl.execute}. */
  memory(md: Deno.PointerValue | MemoryDesc): Deno.PointerValue;
  /** Runs a primitive on (argument id, memory, data) triples and waits for it. */
  execute(
    p: Primitive,
    args: readonly (readonly [number, Deno.PointerValue, ArrayBufferView | Deno.PointerValue])[],
  ): void;
}

/** Result of {@linkcode loadDnnl}: the library, or why it could not be used. */
export type LoadDnnlResult = { ok: true; dnnl: Dnnl } | { ok: false; why: string };

/** Options of {@linkcode loadDnnl}. */
export interface LoadDnnlOptions {
  /** Try only this library file. @default undefined (the usual locations) */
  libraryPath?: string;
}

/**
 * The oneDNN library files tried, in order.
 *
 * @returns Paths and bare names for the dynamic loader.
 * @example
 * ```ts
 * import { dnnlCandidates } from "./onednn.ts";
 * console.log(dnnlCandidates()[0]);
 * ```
 */
export function dnnlCandidates(): string[] {
  if (Deno.build.os === "darwin") return ["libdnnl.2.dylib", "/opt/homebrew/lib/libdnnl.2.dylib"];
  if (Deno.build.os === "windows") return ["dnnl.dll"];
  return [`/usr/lib/${Deno.build.arch}-linux-gnu/libdnnl.so.2`, "libdnnl.so.2"];
}

let cached: Map<string, LoadDnnlResult> | undefined;

/**
 * Opens oneDNN v2 and creates its CPU engine and stream. Never throws for a missing library or
 * permission; says why in the result. Cached per path.
 *
 * @returns The library, or `{ ok: false, why }`.
 * @example Open it when present
 * ```ts
 * import { loadDnnl } from "./onednn.ts";
 * const r = loadDnnl();
 * console.log(r.ok ? `oneDNN ${r.dnnl.version}` : r.why);
 * ```
 */
export function loadDnnl(options: LoadDnnlOptions = {}): LoadDnnlResult {
  const candidates = options.libraryPath !== undefined ? [options.libraryPath] : dnnlCandidates();
  cached ??= new Map();
  const key = candidates.join("|");
  const hit = cached.get(key);
  if (hit) return hit;
  let result: LoadDnnlResult = { ok: false, why: "no oneDNN library found" };
  for (const path of candidates) {
    try {
      result = openDnnl(path);
    } catch (e) {
      result = { ok: false, why: `cannot open ${path}: ${String(e).split("\n")[0]}` };
      continue;
    }
    if (result.ok) break;
  }
  cached.set(key, result);
  return result;
}

function openDnnl(path: string): LoadDnnlResult {
  const undo = chooseOpenMpWait(true);
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    undo(); // not loaded, nor libgomp with it
    throw e;
  }
  pinLibrary(path);
  const s = lib.symbols;
  const v = new Deno.UnsafePointerView(s.dnnl_version()!);
  const [major, minor, patch] = [v.getInt32(0), v.getInt32(4), v.getInt32(8)];
  if (major !== 2) {
    return { ok: false, why: `${path} is oneDNN ${major}.${minor}; only the v2 API is bound` };
  }
  const out = new BigUint64Array(1);
  check(s.dnnl_engine_create(out, 1, /* cpu */ 0n), "engine_create");
  const engine = Deno.UnsafePointer.create(out[0]);
  check(s.dnnl_stream_create(out, engine, 1 /* in order */), "stream_create");
  const stream = Deno.UnsafePointer.create(out[0]);
  const ptrOut = () => Deno.UnsafePointer.create(out[0]);

  const build = (pd: Deno.PointerValue): Primitive | null => {
    if (check(s.dnnl_primitive_create(out, pd), "primitive_create", true) !== 0) return null;
    const handle = ptrOut();
    return { handle, desc: pd };
  };

  const dnnl: Dnnl = {
    path,
    version: `${major}.${minor}.${patch}`,
    memoryDesc(dims, tag) {
      const md = new Uint8Array(MD_BYTES);
      const d = new BigInt64Array(12);
      dims.forEach((x, i) => d[i] = BigInt(x));
      check(s.dnnl_memory_desc_init_by_tag(md, dims.length, d, DNNL.f32, tag), "memory_desc");
      return md;
    },
    stridedDesc(dims, strides) {
      const md = new Uint8Array(MD_BYTES);
      const d = new BigInt64Array(12), st = new BigInt64Array(12);
      dims.forEach((x, i) => d[i] = BigInt(x));
      strides.forEach((x, i) => st[i] = BigInt(x));
      check(s.dnnl_memory_desc_init_by_strides(md, dims.length, d, DNNL.f32, st), "memory_desc");
      return md;
    },
    primitive(init, hint) {
      const op = new Uint8Array(OP_DESC_BYTES);
      if (init(s, op) !== 0) return null;
      if (s.dnnl_primitive_desc_create(out, op, null, engine, hint?.desc ?? null) !== 0) {
        return null;
      }
      return build(ptrOut());
    },
    concat(dst, srcs, axis) {
      const array = new Uint8Array(srcs.length * MD_STRUCT_BYTES);
      srcs.forEach((md, i) => array.set(md.subarray(0, MD_STRUCT_BYTES), i * MD_STRUCT_BYTES));
      const status = s.dnnl_concat_primitive_desc_create(
        out,
        dst,
        srcs.length,
        axis,
        array,
        null,
        engine,
      );
      return status === 0 ? build(ptrOut()) : null;
    },
    reorder(from, to) {
      if (s.dnnl_reorder_primitive_desc_create(out, from, engine, to, engine, null) !== 0) {
        return null;
      }
      return build(ptrOut());
    },
    queryMd: (p, what) => s.dnnl_primitive_desc_query_md(p.desc, what, 0),
    sameMd: (a, b) => s.dnnl_memory_desc_equal(a, b) === 1,
    mdSize: (md) => Number(s.dnnl_memory_desc_get_size(md)),
    memory(md) {
      const ptr = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
      check(s.dnnl_memory_create(out, ptr, engine, null), "memory_create");
      return ptrOut();
    },
    execute(p, args) {
      const buf = new BigUint64Array(args.length * 2);
      const ints = new Int32Array(buf.buffer);
      args.forEach(([id, mem, data], i) => {
        const ptr = data === null || !ArrayBuffer.isView(data)
          ? data as Deno.PointerValue
          : Deno.UnsafePointer.of(data as Uint8Array<ArrayBuffer>);
        check(s.dnnl_memory_set_data_handle(mem, ptr), "set_data_handle");
        ints[i * 4] = id;
        buf[i * 2 + 1] = BigInt(Deno.UnsafePointer.value(mem));
      });
      check(s.dnnl_primitive_execute(p.handle, stream, args.length, buf), "execute");
      check(s.dnnl_stream_wait(stream), "stream_wait");
    },
  };
  return { ok: true, dnnl };
}

function check(status: number, what: string, soft = false): number {
  if (status !== 0 && !soft) throw new Error(`oneDNN ${what} failed with status ${status}`);
  return status;
}
