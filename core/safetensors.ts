/**
 * A small reader and writer of the safetensors format (huggingface/safetensors, "Format"
 * section), so weights written here open in PyTorch tooling and the reverse:
 *
 * ```
 * [8 bytes: N, unsigned little-endian] [N bytes: JSON header, UTF-8, may end in spaces] [data]
 * header = { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
 *            "__metadata__": { "<key>": "<string>" } }
 * ```
 * Offsets count from the start of the data section; tensors are row-major little-endian and
 * together cover the data section with no gaps or overlaps.
 *
 * Writing supports F32 and I32. Reading converts float types (F64, F32, F16, BF16) to
 * Float32Array and integer types (I64, I32, I16, I8, U32, U16, U8, BOOL) to Int32Array; 64-bit
 * and U32 values outside the int32 range are an error rather than silently wrapped. FP8 types are
 * recognised but not supported. Every structural problem raises a {@linkcode SafetensorsError}
 * naming the file and the problem, and the whole layout is validated against the file's length
 * before any tensor is allocated. An optional SHA-256 of the data section (node:crypto) in the
 * metadata is written and verified on request (`digestKey`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { writeFileAtomic } from "./atomic_write.ts";

/** A tensor on the host: row-major values and their shape. */
export interface HostTensor {
  /** Values in row-major order; length is the product of `shape`. */
  data: Float32Array | Int32Array;
  /** Dimensions; `[]` is a scalar. */
  shape: number[];
}

/** A tensor read from a safetensors file, with the dtype it was stored in. */
export interface SafetensorsTensor extends HostTensor {
  /** Stored dtype, e.g. "F16"; `data` is Float32Array for float dtypes, Int32Array otherwise. */
  dtype: string;
}

/** The decoded contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name. */
  tensors: Record<string, SafetensorsTensor>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

/** Options of {@linkcode decodeSafetensors}. */
export interface DecodeSafetensorsOptions {
  /** Name of the file, used in error messages. @default "(in-memory bytes)" */
  source?: string;
  /**
   * Metadata key holding the hex SHA-256 of the data section (see
   * {@linkcode EncodeSafetensorsOptions.digestKey}); when the file has it, the data is hashed and
   * a mismatch is a {@linkcode SafetensorsError}. Files without the key are read unchecked.
   * @default undefined (no check)
   */
  digestKey?: string;
}

/** Options of {@linkcode encodeSafetensors} and {@linkcode writeSafetensors}. */
export interface EncodeSafetensorsOptions {
  /** String key/value pairs stored under `__metadata__`. @default {} */
  metadata?: Record<string, string>;
  /**
   * Also store the hex SHA-256 (node:crypto) of the data section under this metadata key, so a
   * flipped data byte is found on load. @default undefined (no checksum)
   */
  digestKey?: string;
}

/** A file that is not valid safetensors: truncated, corrupt, or in an unsupported dtype. */
export class SafetensorsError extends Error {
  /** The file (or source label) that failed. */
  readonly source: string;
  /** What is wrong with it, without the file name. */
  readonly problem: string;

  /** Builds the error; the message names `source` and `problem`. */
  constructor(source: string, problem: string) {
    super(`safetensors file ${source}: ${problem}`);
    this.name = "SafetensorsError";
    this.source = source;
    this.problem = problem;
  }
}

type Kind = "float" | "int";
interface DtypeInfo {
  bytes: number;
  kind: Kind | null; // null: known to the format, unsupported here
  get?: (view: DataView, at: number) => number;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const DTYPES: Record<string, DtypeInfo> = {
  F64: { bytes: 8, kind: "float", get: (v, a) => v.getFloat64(a, true) },
  F32: { bytes: 4, kind: "float", get: (v, a) => v.getFloat32(a, true) },
  F16: { bytes: 2, kind: "float", get: (v, a) => halfToFloat(v.getUint16(a, true)) },
  BF16: { bytes: 2, kind: "float", get: (v, a) => bfloat16ToFloat(v.getUint16(a, true)) },
  I64: { bytes: 8, kind: "int", get: (v, a) => Number(v.getBigInt64(a, true)) },
  U64: { bytes: 8, kind: "int", get: (v, a) => Number(v.getBigUint64(a, true)) },
  I32: { bytes: 4, kind: "int", get: (v, a) => v.getInt32(a, true) },
  U32: { bytes: 4, kind: "int", get: (v, a) => v.getUint32(a, true) },
  I16: { bytes: 2, kind: "int", get: (v, a) => v.getInt16(a, true) },
  U16: { bytes: 2, kind: "int", get: (v, a) => v.getUint16(a, true) },
  I8: { bytes: 1, kind: "int", get: (v, a) => v.getInt8(a) },
  U8: { bytes: 1, kind: "int", get: (v, a) => v.getUint8(a) },
  BOOL: { bytes: 1, kind: "int", get: (v, a) => (v.getUint8(a) === 0 ? 0 : 1) },
  F8_E4M3: { bytes: 1, kind: null },
  F8_E5M2: { bytes: 1, kind: null },
};

const SUPPORTED = Object.keys(DTYPES).filter((k) => DTYPES[k].kind !== null).join(", ");
// The reference implementation refuses headers above 100 MB; so do we, before allocating.
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Parses safetensors bytes into tensors and metadata, validating the whole layout first.
 *
 * @param bytes The complete file contents.
 * @param options See {@linkcode DecodeSafetensorsOptions}.
 * @returns Fresh arrays (never views of `bytes`); the caller owns them.
 * @throws {SafetensorsError} For a truncated file, a bad header length, invalid header JSON,
 *   unknown or unsupported dtypes, shape/byte-size mismatches, offsets out of range, overlapping,
 *   or leaving gaps, and integers that do not fit int32.
 * @example Decode what encodeSafetensors wrote
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { data: new Float32Array([1, 2]), shape: [2] } });
 * const { tensors } = decodeSafetensors(bytes);
 * console.assert(tensors.w.data[1] === 2);
 * ```
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeSafetensorsOptions = {},
): SafetensorsContents {
  const { source = "(in-memory bytes)" } = options;
  const fail = (problem: string): never => {
    throw new SafetensorsError(source, problem);
  };
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`decodeSafetensors needs a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
    fail(`header length ${headerLength} is implausible (expected 2..${MAX_HEADER_BYTES} bytes)`);
  }
  if (8 + headerLength > bytes.length) {
    fail(
      `header length says ${headerLength} bytes but only ${bytes.length - 8} follow ` +
        `(truncated, or not a safetensors file)`,
    );
  }
  const header = parseHeader(bytes.subarray(8, 8 + headerLength), fail);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail(`"__metadata__" must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`metadata "${k}" is ${typeof v}, must be a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    entries.push({ name, ...parseEntry(name, raw, fail) });
  }

  for (const e of entries) {
    const info = DTYPES[e.dtype];
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (e.end - e.begin !== count * info.bytes) {
      fail(
        `tensor "${e.name}" has shape [${e.shape}] and dtype ${e.dtype} (${count * info.bytes} ` +
          `bytes) but data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin} bytes`,
      );
    }
    if (e.end > dataLength) {
      fail(
        `tensor "${e.name}" ends at data byte ${e.end} but the data section has only ` +
          `${dataLength} bytes (truncated?)`,
      );
    }
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous = "";
  for (const e of sorted) {
    if (e.begin < covered) {
      fail(`tensors "${previous}" and "${e.name}" overlap (data byte ${e.begin})`);
    }
    if (e.begin > covered) fail(`data bytes ${covered}..${e.begin} belong to no tensor`);
    covered = e.end;
    previous = e.name;
  }
  if (covered !== dataLength) {
    fail(`data bytes ${covered}..${dataLength} after the last tensor belong to no tensor`);
  }

  if (options.digestKey !== undefined && metadata[options.digestKey] !== undefined) {
    const want = metadata[options.digestKey];
    const got = sha256Hex([bytes.subarray(dataStart)]);
    if (got !== want) {
      fail(
        `data checksum mismatch (SHA-256 ${got.slice(0, 12)}..., header says ` +
          `${want.slice(0, 12)}...): the file was damaged after it was written`,
      );
    }
  }

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const data = readValues(bytes, dataStart + e.begin, e, fail);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

/**
 * Serializes host tensors (F32 from Float32Array, I32 from Int32Array) and string metadata.
 * Tensors are laid out in name order; the header is padded with spaces to an 8-byte boundary,
 * as the Python library does, so the data section is aligned.
 *
 * @param tensors Tensors by name; the arrays are read, not kept.
 * @param options See {@linkcode EncodeSafetensorsOptions}.
 * @returns The complete file contents.
 * @throws {TypeError} For a non-typed-array tensor, a reserved or empty name, or non-string metadata.
 * @throws {RangeError} When a tensor's data length does not match its shape.
 * @example Two tensors and a note
 * ```ts
 * import { encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors(
 *   { "net.w": { data: new Float32Array(6), shape: [2, 3] } },
 *   { metadata: { note: "hello" } },
 * );
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, HostTensor>,
  options: EncodeSafetensorsOptions = {},
): Uint8Array {
  const chunks = safetensorsChunks(tensors, options);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes tensors and metadata to `path` as safetensors, atomically (temp file, fsync, rename).
 *
 * @param path Target file; its folder must exist.
 * @param tensors Tensors by name (F32 or I32), see {@linkcode encodeSafetensors}.
 * @param options See {@linkcode EncodeSafetensorsOptions}.
 * @example Save one tensor
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/w.safetensors`, { w: { data: new Float32Array(4), shape: [4] } });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, HostTensor>,
  options: EncodeSafetensorsOptions = {},
): Promise<void> {
  // Chunks are views of the caller's arrays: no full-file copy in memory.
  await writeFileAtomic(path, safetensorsChunks(tensors, options));
}

/**
 * Reads and validates a safetensors file.
 *
 * @param path The file to read.
 * @param options `digestKey`: verify the data checksum stored under this metadata key.
 * @returns Tensors (Float32Array or Int32Array) and metadata; the caller owns them.
 * @throws {Deno.errors.NotFound} When there is no file at `path`.
 * @throws {SafetensorsError} When the file is truncated or corrupt (the message names it).
 * @example Read a file back
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/w.safetensors`, { w: { data: new Float32Array(2), shape: [2] } });
 * const { tensors } = await readSafetensors(`${dir}/w.safetensors`);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSafetensors(
  path: string,
  options: Pick<DecodeSafetensorsOptions, "digestKey"> = {},
): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`no safetensors file at ${path}`);
    }
    throw e;
  }
  return decodeSafetensors(bytes, { ...options, source: path });
}

function safetensorsChunks(
  tensors: Record<string, HostTensor>,
  options: EncodeSafetensorsOptions,
): Uint8Array[] {
  const { metadata: given = {}, digestKey } = options;
  const metadata = { ...given };
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(`metadata "${k}" must be a string, got ${typeof v}; JSON.stringify it`);
    }
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const names = Object.keys(tensors).sort();
  const bodies: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === "" || name === "__metadata__") {
      throw new TypeError(`tensor name ${JSON.stringify(name)} is reserved; rename the tensor`);
    }
    const { data, shape } = tensors[name];
    const dtype = data instanceof Float32Array ? "F32" : data instanceof Int32Array ? "I32" : null;
    if (dtype === null) {
      throw new TypeError(`tensor "${name}" must hold a Float32Array or Int32Array`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new RangeError(
        `tensor "${name}" has ${data.length} values but shape [${shape}] needs ${count}`,
      );
    }
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
    bodies.push(littleEndianBytes(data));
  }
  if (digestKey !== undefined) {
    metadata[digestKey] = sha256Hex(bodies);
    header.__metadata__ = metadata;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...bodies];
}

function littleEndianBytes(data: Float32Array | Int32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const v = new DataView(out.buffer);
  data.forEach((x, i) =>
    data instanceof Float32Array ? v.setFloat32(4 * i, x, true) : v.setInt32(4 * i, x, true)
  );
  return out;
}

function parseHeader(raw: Uint8Array, fail: (p: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return fail("header is not valid UTF-8 (corrupt, or not a safetensors file)");
  }
  if (!text.startsWith("{")) fail(`header must be a JSON object starting with "{"`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    fail("header must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function parseEntry(
  name: string,
  raw: unknown,
  fail: (p: string) => never,
): { dtype: string; shape: number[]; begin: number; end: number } {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    fail(`entry "${name}" must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in DTYPES)) {
    fail(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)} (supported: ${SUPPORTED})`);
  }
  if (DTYPES[dtype as string].kind === null) {
    fail(`tensor "${name}" has dtype ${dtype}, which this reader does not support (${SUPPORTED})`);
  }
  const isDim = (d: unknown): boolean => Number.isSafeInteger(d) && (d as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isDim)) {
    fail(`tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isDim) ||
    offsets[0] > offsets[1]
  ) {
    fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as number[];
  return { dtype: dtype as string, shape: shape as number[], begin, end };
}

function readValues(
  bytes: Uint8Array,
  start: number,
  e: { name: string; dtype: string; end: number; begin: number },
  fail: (p: string) => never,
): Float32Array | Int32Array {
  const info = DTYPES[e.dtype];
  const length = e.end - e.begin;
  const count = length / info.bytes;
  // Fast path: slice() copies into a fresh, aligned buffer that a typed array can view directly.
  if (LITTLE_ENDIAN_HOST && (e.dtype === "F32" || e.dtype === "I32")) {
    const copy = bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + start + length);
    return e.dtype === "F32" ? new Float32Array(copy) : new Int32Array(copy);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, length);
  const get = info.get!;
  if (info.kind === "float") {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = get(view, i * info.bytes);
    return out;
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = get(view, i * info.bytes);
    if (v < INT32_MIN || v > INT32_MAX) {
      fail(`tensor "${e.name}" (${e.dtype}) holds ${v} at index ${i}, outside the int32 range`);
    }
    out[i] = v;
  }
  return out;
}

/** IEEE 754 binary16 bits to a number (handles subnormals, infinities and NaN). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
/** bfloat16 is the top half of a float32. */
function bfloat16ToFloat(b: number): number {
  bf16Scratch.setUint32(0, b << 16);
  return bf16Scratch.getFloat32(0);
}

/** Hex SHA-256 of the concatenated chunks (node:crypto). */
function sha256Hex(chunks: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const c of chunks) hash.update(c);
  return hash.digest("hex");
}
