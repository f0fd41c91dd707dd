/**
 * safetensors with float64 tensors kept exact. The project's writer (core/safetensors.ts) writes
 * F32 and I32, and its reader turns F64 into float32; sums for merged statistics need float64.
 * This lays out the header itself and, after `decodeSafetensors` has validated the layout,
 * reads F64 values straight from their bytes.
 *
 * @module
 */
import { decodeSafetensors } from "../core/safetensors.ts";

/** A host tensor of any dtype this module writes. */
export interface ExactTensor {
  /** Row-major values: F64, F32 or I32. */
  data: Float64Array | Float32Array | Int32Array;
  /** Dimensions. */
  shape: number[];
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The chunks of a safetensors file holding `tensors` and `metadata` (header padded to 8 bytes).
 *
 * @param tensors Tensors by name.
 * @param metadata String metadata.
 * @returns Byte chunks to write in order.
 * @example
 * ```ts
 * import { exactSafetensorsChunks } from "./_exact_safetensors.ts";
 * const chunks = exactSafetensorsChunks({ x: { data: new Float64Array([1]), shape: [1] } }, {});
 * ```
 */
export function exactSafetensorsChunks(
  tensors: Record<string, ExactTensor>,
  metadata: Record<string, string>,
): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const bodies: Uint8Array[] = [];
  let offset = 0;
  for (const [name, { data, shape }] of Object.entries(tensors)) {
    const dtype = data instanceof Float64Array
      ? "F64"
      : data instanceof Float32Array
      ? "F32"
      : "I32";
    if (shape.reduce((a, b) => a * b, 1) !== data.length) {
      throw new RangeError(
        `tensor "${name}": shape [${shape}] does not hold ${data.length} values`,
      );
    }
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
    bodies.push(littleEndian(data));
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return [head, ...bodies];
}

/**
 * Decodes a safetensors file, F64 tensors as exact Float64Arrays.
 *
 * @param bytes The file.
 * @param source Name for messages.
 * @returns Tensors (with their dtypes) and metadata.
 * @throws {SafetensorsError} For a corrupt file (from `decodeSafetensors`).
 * @example
 * ```ts
 * import { decodeExactSafetensors, exactSafetensorsChunks } from "./_exact_safetensors.ts";
 * const [head, body] = exactSafetensorsChunks({ x: { data: new Float64Array([0.1]), shape: [1] } }, {});
 * const bytes = new Uint8Array([...head, ...body]);
 * console.assert(decodeExactSafetensors(bytes, "x").tensors.x.data[0] === 0.1);
 * ```
 */
export function decodeExactSafetensors(
  bytes: Uint8Array,
  source: string,
): { tensors: Record<string, ExactTensor & { dtype: string }>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(bytes, { source });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const out: Record<string, ExactTensor & { dtype: string }> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== "F64") {
      out[name] = t;
      continue;
    }
    const [begin, end] = header[name].data_offsets as [number, number];
    const data = new Float64Array((end - begin) / 8);
    const at = 8 + headerLength + begin;
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat64(at + 8 * i, true);
    out[name] = { dtype: "F64", shape: t.shape, data };
  }
  return { tensors: out, metadata };
}

function littleEndian(a: Float64Array | Float32Array | Int32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength), v = new DataView(out.buffer);
  const size = a.BYTES_PER_ELEMENT;
  for (let i = 0; i < a.length; i++) {
    if (a instanceof Float64Array) v.setFloat64(8 * i, a[i], true);
    else if (a instanceof Float32Array) v.setFloat32(4 * i, a[i], true);
    else v.setInt32(size * i, a[i], true);
  }
  return out;
}
