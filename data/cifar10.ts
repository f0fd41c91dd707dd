/**
 * CIFAR-10 (Krizhevsky 2009) from its binary version (`cifar-10-binary.tar.gz`): files
 * `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`, each a run of 3073-byte records of
 * one label byte (0..9) and 3072 pixel bytes: the red plane, then green, then blue, each 32x32
 * row-major. Records become NHWC images scaled linearly to [-1, 1] as in DDPM (Ho et al. 2020,
 * section 3.3), `x = byte / 127.5 - 1`.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import type { Dataset } from "./dataset.ts";

/** Bytes of one CIFAR-10 record: 1 label byte + 32 * 32 * 3 pixel bytes. */
export const CIFAR10_RECORD_BYTES = 3073;

/** The ten CIFAR-10 class names, indexed by label. */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

const SIDE = 32;
const PLANE = SIDE * SIDE;

/** Options of {@linkcode loadCifar10}. */
export interface LoadCifar10Options {
  /**
   * Which batches a directory contributes: `train` (data_batch_*.bin), `test` (test_batch.bin)
   * or `all`. Ignored when the path is a file. @default "train"
   */
  split?: "train" | "test" | "all";
  /** Keep only the first `limit` records. @default Infinity */
  limit?: number;
}

/** Options of {@linkcode decodeCifar10}. */
export interface DecodeCifar10Options {
  /** Name of the bytes' origin, used in error messages. @default "data" */
  source?: string;
  /** Decode only the first `limit` records. @default Infinity */
  limit?: number;
}

/**
 * Decodes the bytes of one CIFAR-10 binary batch into NHWC images in [-1, 1] and labels.
 *
 * @param bytes The file's contents; only read.
 * @param options Name for messages and an optional record limit.
 * @returns New arrays `images` ([N, 32, 32, 3]) and `labels` ([N]) owned by the caller.
 * @throws {UserError} When the size is not a multiple of 3073 bytes or a label exceeds 9.
 * @example Decode one all-black airplane
 * ```ts
 * import { decodeCifar10 } from "./cifar10.ts";
 * const { images, labels } = decodeCifar10(new Uint8Array(3073));
 * console.assert(labels[0] === 0 && images[0] === -1);
 * ```
 */
export function decodeCifar10(
  bytes: Uint8Array,
  options: DecodeCifar10Options = {},
): { images: Float32Array; labels: Int32Array } {
  const { source = "data", limit = Infinity } = options;
  const count = Math.min(checkedRecords(bytes.length, source), limit);
  const images = new Float32Array(count * PLANE * 3);
  const labels = new Int32Array(count);
  decodeInto(bytes, source, count, images, labels, 0);
  return { images, labels };
}

/**
 * Loads CIFAR-10 from a binary batch file or a directory of them (also one that holds the
 * extracted `cifar-10-batches-bin` folder).
 *
 * @param path A `.bin` batch file or a directory.
 * @param options Split to read from a directory, and an optional record limit.
 * @returns A new 32x32x3 {@linkcode Dataset} in [-1, 1] with labels 0..9; the caller owns it.
 * @throws {UserError} When the path is missing, holds no batches of the split, or a file is not
 *   a CIFAR-10 binary batch.
 * @example Load the training batches
 * ```ts ignore
 * import { loadCifar10 } from "./cifar10.ts";
 * const ds = await loadCifar10("data/cifar-10-batches-bin", { split: "train" });
 * ```
 */
export async function loadCifar10(
  path: string,
  options: LoadCifar10Options = {},
): Promise<Dataset> {
  const { split = "train", limit = Infinity } = options;
  if (!["train", "test", "all"].includes(split)) {
    throw new RangeError(`unknown CIFAR-10 split "${split}": use train, test or all`);
  }
  if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  const files = await batchFiles(path, split);
  const sizes = await Promise.all(files.map(async (f) => checkedRecords((await stat(f)).size, f)));
  const total = Math.min(sizes.reduce((a, b) => a + b, 0), Math.floor(limit));
  // One allocation for all files: the full training set is 614 MB as float32.
  const images = new Float32Array(total * PLANE * 3);
  const labels = new Int32Array(total);
  let done = 0;
  for (let i = 0; i < files.length && done < total; i++) {
    const bytes = await readBytes(files[i]);
    const take = Math.min(checkedRecords(bytes.length, files[i]), total - done);
    decodeInto(bytes, files[i], take, images, labels, done);
    done += take;
  }
  return {
    name: "cifar10",
    images,
    shape: [SIDE, SIDE, 3],
    count: total,
    labels,
    numClasses: 10,
    classNames: [...CIFAR10_CLASSES],
  };
}

function checkedRecords(size: number, source: string): number {
  if (size % CIFAR10_RECORD_BYTES !== 0) {
    throw new UserError(
      `${source} is not a CIFAR-10 binary batch: its size ${size} is not a multiple of ` +
        `${CIFAR10_RECORD_BYTES} bytes; use the files of cifar-10-binary.tar.gz ` +
        `(data_batch_*.bin, test_batch.bin)`,
    );
  }
  if (size === 0) {
    throw new UserError(`${source} is empty: replace it with an intact CIFAR-10 binary batch`);
  }
  return size / CIFAR10_RECORD_BYTES;
}

function decodeInto(
  bytes: Uint8Array,
  source: string,
  count: number,
  images: Float32Array,
  labels: Int32Array,
  offset: number,
): void {
  for (let r = 0; r < count; r++) {
    const rec = r * CIFAR10_RECORD_BYTES;
    const label = bytes[rec];
    if (label > 9) {
      throw new UserError(
        `${source} is not a CIFAR-10 binary batch: record ${r} has label ${label}, not 0..9; ` +
          `use the files of cifar-10-binary.tar.gz`,
      );
    }
    labels[offset + r] = label;
    const out = (offset + r) * PLANE * 3;
    // Planar RGB -> interleaved HWC: pixel p of plane c lands at out + 3p + c.
    for (let c = 0; c < 3; c++) {
      const plane = rec + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) images[out + 3 * p + c] = bytes[plane + p] / 127.5 - 1;
    }
  }
}

async function batchFiles(path: string, split: string): Promise<string[]> {
  const info = await stat(path);
  if (info.isFile) return [path];
  let dir = path.replace(/\/+$/, "");
  const nested = `${dir}/cifar-10-batches-bin`;
  if ((await stat(nested).catch(() => null))?.isDirectory) dir = nested;
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) if (entry.isFile) names.push(entry.name);
  } catch (e) {
    throw new UserError(
      `cannot list CIFAR-10 folder ${dir} (${errorText(e)}): check its permissions`,
    );
  }
  const train = names.filter((n) => /^data_batch_\d+\.bin$/.test(n))
    .sort((a, b) => parseInt(a.slice(11)) - parseInt(b.slice(11)));
  const test = names.filter((n) => n === "test_batch.bin");
  const chosen = split === "train" ? train : split === "test" ? test : [...train, ...test];
  if (chosen.length === 0) {
    const expected = split === "train"
      ? "data_batch_1.bin .. data_batch_5.bin"
      : split === "test"
      ? "test_batch.bin"
      : "data_batch_*.bin or test_batch.bin";
    throw new UserError(
      `${dir} holds no CIFAR-10 ${split} batches (${expected}): extract cifar-10-binary.tar.gz ` +
        `there or pass the path of a .bin file`,
    );
  }
  return chosen.map((n) => `${dir}/${n}`);
}

async function stat(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `CIFAR-10 path ${path} does not exist: pass a data_batch_*.bin file or the folder of ` +
          `cifar-10-binary.tar.gz`,
      );
    }
    throw new UserError(`cannot read ${path} (${errorText(e)}): check its permissions`);
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new UserError(`cannot read ${path} (${errorText(e)}): check its permissions`);
  }
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
