/**
 * PNG files for samples and datasets (DESIGN.md "Checkpoints and files"), through pngjs.
 *
 * Images live in the model's data range [-1, 1] (DDPM section 3.3 scales pixels to [-1, 1]; EDM
 * follows it). A pixel byte `p` maps to `p / 127.5 - 1` and back to `round((v + 1) * 127.5)`
 * clamped to [0, 255], so a write/read round trip is exact to half a quantization step, 1/255.
 * One channel is written as a grayscale PNG, three as RGB; files are written atomically.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs-core";
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { writeFileAtomic } from "../core/atomic_write.ts";

/** Images on the host: row-major values in [-1, 1] and their shape ([N,H,W,C] or [H,W,C]). */
export interface HostImages {
  /** Pixel values, channels last. */
  data: Float32Array;
  /** [N, H, W, C] for a batch, [H, W, C] for one image; C is 1 or 3. */
  shape: number[];
}

/** A decoded PNG: values in [-1, 1], height x width x channels. */
export interface DecodedImage {
  /** Pixel values, HWC order. */
  data: Float32Array;
  /** [height, width, channels]. */
  shape: [number, number, number];
}

/** Options of {@linkcode writeImageGrid} and {@linkcode encodeImageGrid}. */
export interface ImageGridOptions {
  /** Images per row. @default Math.ceil(Math.sqrt(N)) */
  columns?: number;
  /** Pixels of padding between images and around the border. @default 2 */
  padding?: number;
  /** Value of padding pixels, in [-1, 1] (1 is white). @default 1 */
  padValue?: number;
}

/** Options of {@linkcode readPng} and {@linkcode decodePng}. */
export interface ReadPngOptions {
  /**
   * Channels to return: 1 (luma 0.299 R + 0.587 G + 0.114 B for colour files) or 3. Alpha is
   * dropped. @default 1 for a grayscale file, else 3
   */
  channels?: 1 | 3;
  /** Name of the file, used in error messages (set by readPng). @default "(in-memory bytes)" */
  source?: string;
  /**
   * Largest width x height decoded; a larger header is refused before any pixel buffer is
   * allocated. @default MAX_PNG_PIXELS
   */
  maxPixels?: number;
}

/** Default cap on a decoded PNG's pixels (4096 x 4096: 64 MiB of RGBA, 192 MiB as floats). */
export const MAX_PNG_PIXELS = 4096 * 4096;

/**
 * Width and height from a PNG's IHDR chunk, read from the first 24 bytes without decoding.
 *
 * @param bytes The file's bytes (at least the first 24).
 * @param source Name of the file, for messages.
 * @returns `{ width, height }`.
 * @throws {Error} Naming the file when the signature or the IHDR chunk is missing.
 * @example
 * ```ts
 * import { encodePng, pngSize } from "./png.ts";
 * const { width, height } = pngSize(encodePng({ data: new Float32Array(6), shape: [2, 3, 1] }));
 * console.assert(width === 3 && height === 2);
 * ```
 */
export function pngSize(
  bytes: Uint8Array,
  source = "(in-memory bytes)",
): { width: number; height: number } {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new Error(`PNG file ${source} is not a PNG (its first bytes are not the PNG signature)`);
  }
  const ihdr = bytes.length >= 24 &&
    String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) === "IHDR";
  if (!ihdr) throw new Error(`PNG file ${source} is corrupt (no IHDR chunk after the signature)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

// pngjs ships no types; this is the slice of its sync API used here.
interface PngMeta {
  width: number;
  height: number;
  data: Uint8Array;
  colorType: number;
}
interface PngSync {
  read(buffer: Buffer, options?: Record<string, unknown>): PngMeta;
  write(png: { width: number; height: number; data: Buffer }, options: object): Buffer;
}
const pngSync = (PNG as unknown as { sync: PngSync }).sync;
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IEND = [0x49, 0x45, 0x4e, 0x44]; // the type of a PNG's final chunk

/**
 * Writes a batch of images as one PNG grid, atomically.
 *
 * @param path Target `.png` file; its folder must exist.
 * @param images [N, H, W, C] in [-1, 1], C = 1 or 3: a tf tensor (read, not disposed) or host data.
 * @param options See {@linkcode ImageGridOptions}.
 * @example Save a 2x2 grid
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { writeImageGrid } from "./png.ts";
 * import { selectBackend } from "../core/engine.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const dir = await Deno.makeTempDir();
 * const x = tf.zeros([4, 8, 8, 1]);
 * await writeImageGrid(`${dir}/samples.png`, x, { columns: 2 });
 * x.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeImageGrid(
  path: string,
  images: tf.Tensor | HostImages,
  options: ImageGridOptions = {},
): Promise<void> {
  const bytes = encodeImageGrid(await toHost(images), options);
  await writeFileAtomic(path, bytes);
}

/**
 * Writes one image [H, W, C] (or [1, H, W, C]) in [-1, 1] as a PNG, atomically.
 *
 * @param path Target `.png` file; its folder must exist.
 * @param image A tf tensor (read, not disposed) or host data.
 * @example Save one image
 * ```ts
 * import { writePng } from "./png.ts";
 * const dir = await Deno.makeTempDir();
 * await writePng(`${dir}/one.png`, { data: new Float32Array(4 * 4 * 3), shape: [4, 4, 3] });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writePng(path: string, image: tf.Tensor | HostImages): Promise<void> {
  const host = await toHost(image);
  const shape = host.shape.length === 4 && host.shape[0] === 1 ? host.shape.slice(1) : host.shape;
  if (shape.length !== 3) {
    throw new RangeError(
      `writePng needs one image [H, W, C], got shape [${host.shape}]; use writeImageGrid for a batch`,
    );
  }
  await writeFileAtomic(path, encodePng({ data: host.data, shape }));
}

/**
 * Lays out a batch [N, H, W, C] as a grid and encodes it as PNG bytes.
 *
 * @param images Host images in [-1, 1], C = 1 or 3.
 * @param options See {@linkcode ImageGridOptions}.
 * @returns The PNG file contents; image `i` sits at row `floor(i / columns)`, column `i % columns`.
 * @throws {RangeError} For a shape that is not [N, H, W, 1|3] or invalid options.
 * @example Encode a grid in memory
 * ```ts
 * import { encodeImageGrid } from "./png.ts";
 * const png = encodeImageGrid({ data: new Float32Array(2 * 4 * 4), shape: [2, 4, 4, 1] });
 * ```
 */
export function encodeImageGrid(images: HostImages, options: ImageGridOptions = {}): Uint8Array {
  const { data, shape } = images;
  if (shape.length !== 4 || shape[0] < 1 || !(shape[3] === 1 || shape[3] === 3)) {
    throw new RangeError(
      `image grid needs shape [N, H, W, C] with N >= 1 and C = 1 or 3, got [${shape}]`,
    );
  }
  const [n, h, w, c] = shape;
  checkLength(data, shape);
  const { columns = Math.ceil(Math.sqrt(n)), padding = 2, padValue = 1 } = options;
  if (!Number.isInteger(columns) || columns < 1) {
    throw new RangeError(`columns must be a positive integer, got ${columns}`);
  }
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`padding must be a non-negative integer, got ${padding}`);
  }
  if (!(padValue >= -1 && padValue <= 1)) {
    throw new RangeError(`padValue must lie in [-1, 1], got ${padValue}`);
  }
  const cols = Math.min(columns, n);
  const rows = Math.ceil(n / cols);
  const gw = cols * (w + padding) + padding;
  const gh = rows * (h + padding) + padding;
  const grid = new Float32Array(gh * gw * c).fill(padValue);
  for (let i = 0; i < n; i++) {
    const top = padding + Math.floor(i / cols) * (h + padding);
    const left = padding + (i % cols) * (w + padding);
    for (let y = 0; y < h; y++) {
      const src = ((i * h + y) * w) * c;
      grid.set(data.subarray(src, src + w * c), ((top + y) * gw + left) * c);
    }
  }
  return encodePng({ data: grid, shape: [gh, gw, c] });
}

/**
 * Encodes one image [H, W, C] in [-1, 1] (C = 1 grayscale, C = 3 RGB) as PNG bytes.
 *
 * @param image Host image; values outside [-1, 1] are clipped, NaN becomes black.
 * @returns The PNG file contents.
 * @throws {RangeError} For a shape that is not [H, W, 1|3].
 * @example Encode a black pixel
 * ```ts
 * import { encodePng } from "./png.ts";
 * const png = encodePng({ data: new Float32Array([-1]), shape: [1, 1, 1] });
 * ```
 */
export function encodePng(image: HostImages): Uint8Array {
  const { data, shape } = image;
  if (shape.length !== 3 || shape[0] < 1 || shape[1] < 1 || !(shape[2] === 1 || shape[2] === 3)) {
    throw new RangeError(`a PNG image needs shape [H, W, C] with C = 1 or 3, got [${shape}]`);
  }
  checkLength(data, shape);
  const [height, width, c] = shape;
  const bytes = Buffer.alloc(data.length);
  // Uint8ClampedArray rounds and clips for us (NaN -> 0).
  const clamped = new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < data.length; i++) clamped[i] = (data[i] + 1) * 127.5;
  const colorType = c === 1 ? 0 : 2; // PNG colour types: 0 grayscale, 2 RGB
  const out = pngSync.write({ width, height, data: bytes }, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: false,
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decodes PNG bytes to HWC values in [-1, 1].
 *
 * @param bytes The PNG file contents.
 * @param options See {@linkcode ReadPngOptions}.
 * @returns A fresh array owned by the caller.
 * @throws {Error} "PNG file X is not a PNG", "... is corrupt" or "... is truncated" for bad bytes.
 * @example Round trip in memory
 * ```ts
 * import { decodePng, encodePng } from "./png.ts";
 * const img = decodePng(encodePng({ data: new Float32Array([1]), shape: [1, 1, 1] }));
 * console.assert(img.data[0] === 1);
 * ```
 */
export function decodePng(bytes: Uint8Array, options: ReadPngOptions = {}): DecodedImage {
  const { source = "(in-memory bytes)" } = options;
  if (options.channels !== undefined && options.channels !== 1 && options.channels !== 3) {
    throw new RangeError(`channels must be 1 or 3, got ${options.channels}`);
  }
  const { width: w, height: h } = pngSize(bytes, source);
  const { maxPixels = MAX_PNG_PIXELS } = options;
  if (w * h > maxPixels || w === 0 || h === 0) {
    throw new Error(
      `PNG file ${source} declares ${w}x${h} pixels, ` +
        (w * h > maxPixels ? `above the limit of ${maxPixels} pixels` : "an empty image"),
    );
  }
  let png: PngMeta;
  try {
    png = pngSync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    // pngjs's messages are terse; a missing IEND chunk at the end is the usual sign of a cut file.
    const n = bytes.length;
    const endsWithIend = n >= 12 && IEND.every((b, i) => bytes[n - 8 + i] === b);
    const what = endsWithIend ? "is corrupt" : "is truncated or corrupt (it does not end in IEND)";
    throw new Error(`PNG file ${source} ${what}; pngjs: ${(e as Error).message}`, { cause: e });
  }
  const { width, height, data: rgba } = png;
  const gray = png.colorType === 0 || png.colorType === 4;
  const channels = options.channels ?? (gray ? 1 : 3);
  const out = new Float32Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    const r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2];
    if (channels === 3) {
      out[3 * p] = r / 127.5 - 1;
      out[3 * p + 1] = g / 127.5 - 1;
      out[3 * p + 2] = b / 127.5 - 1;
    } else {
      // A gray file decodes to r = g = b; keep its byte exact rather than re-weighting.
      const y = gray ? r : 0.299 * r + 0.587 * g + 0.114 * b;
      out[p] = y / 127.5 - 1;
    }
  }
  return { data: out, shape: [height, width, channels] };
}

/**
 * Reads a PNG file to HWC values in [-1, 1].
 *
 * @param path The file to read.
 * @param options See {@linkcode ReadPngOptions} (`source` is set to `path`).
 * @returns A fresh array owned by the caller.
 * @throws {Deno.errors.NotFound} When there is no file at `path`.
 * @throws {Error} Naming the file when it is not a PNG or is corrupt.
 * @example Read an image back
 * ```ts
 * import { readPng, writePng } from "./png.ts";
 * const dir = await Deno.makeTempDir();
 * await writePng(`${dir}/a.png`, { data: new Float32Array(12), shape: [2, 2, 3] });
 * const { shape } = await readPng(`${dir}/a.png`); // [2, 2, 3]
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readPng(path: string, options: ReadPngOptions = {}): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Deno.errors.NotFound(`no PNG file at ${path}`);
    throw e;
  }
  return decodePng(bytes, { ...options, source: path });
}

async function toHost(images: tf.Tensor | HostImages): Promise<HostImages> {
  if (images instanceof Float32Array) {
    throw new TypeError("pass images as a tf.Tensor or { data, shape }, not a bare Float32Array");
  }
  if ("data" in images && images.data instanceof Float32Array) return images as HostImages;
  const t = images as tf.Tensor;
  if (t.isDisposed) throw new TypeError("the image tensor was disposed before it could be written");
  return { data: Float32Array.from(await t.data()), shape: [...t.shape] };
}

function checkLength(data: Float32Array, shape: number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (data.length !== n) {
    throw new RangeError(`image data has ${data.length} values but shape [${shape}] needs ${n}`);
  }
}
