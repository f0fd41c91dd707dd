/**
 * A dataset from a folder of PNG images of one size, gray or color, scaled to [-1, 1] as in DDPM
 * (Ho et al. 2020, section 3.3). Files are read in name order (plain code-unit comparison, so the
 * order does not depend on the locale).
 *
 * Labels: when the folder itself holds no `.png` files but its subfolders do, each subfolder is a
 * class (label = index in the sorted subfolder names, `classNames` = the names); otherwise the set
 * is unlabelled and subfolders are ignored.
 *
 * Channels: gray images become RGB by repeating the gray value when any image is color (or
 * `channels: 3` is asked for); color becomes gray by the luma `0.299 R + 0.587 G + 0.114 B` when
 * `channels: 1` is asked for; an alpha channel is dropped (decoding is `png.ts` `readPng`).
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import type { Dataset } from "./dataset.ts";
import { type DecodedImage, decodePng, pngSize } from "./png.ts";

/** Options of {@linkcode loadPngFolder}. */
export interface LoadPngFolderOptions {
  /** Channels of the result: 1 (gray) or 3 (RGB). @default 3 if any image has color, else 1 */
  channels?: 1 | 3;
  /** Read only the first `limit` files in name order. @default Infinity */
  limit?: number;
}

/**
 * Loads every `.png` file of a folder (or of its class subfolders) into one NHWC dataset.
 *
 * @param folder Path of the folder.
 * @param options Channel count and an optional file limit.
 * @returns A new {@linkcode Dataset} in [-1, 1]; the caller owns it.
 * @throws {UserError} When the folder is missing or unreadable, holds no PNG files, a file is not
 *   a readable PNG, or two files differ in size (naming both files and sizes).
 * @example Load a folder of 64x64 images
 * ```ts ignore
 * import { loadPngFolder } from "./png_folder.ts";
 * const ds = await loadPngFolder("data/faces64", { channels: 3 });
 * ```
 */
export async function loadPngFolder(
  folder: string,
  options: LoadPngFolderOptions = {},
): Promise<Dataset> {
  const { channels, limit = Infinity } = options;
  if (channels !== undefined && channels !== 1 && channels !== 3) {
    throw new RangeError(`channels must be 1 or 3, got ${channels}`);
  }
  if (!(limit >= 1)) throw new RangeError(`limit must be at least 1, got ${limit}`);
  const root = await listFolder(folder);
  let files: { path: string; label: number }[] = root.pngs.map((path) => ({ path, label: -1 }));
  let classNames: string[] | undefined;
  if (files.length === 0) {
    const classes: string[] = [];
    for (const dir of root.dirs) {
      const pngs = (await listFolder(dir)).pngs;
      if (pngs.length === 0) continue;
      for (const path of pngs) files.push({ path, label: classes.length });
      classes.push(dir.slice(dir.lastIndexOf("/") + 1));
    }
    if (classes.length > 0) classNames = classes;
  }
  if (files.length === 0) {
    throw new UserError(
      `PNG folder ${folder} holds no .png files: add images of one size (or class subfolders ` +
        `of them), or pass another folder`,
    );
  }
  files = files.slice(0, Math.floor(Math.min(limit, files.length)));

  const images: DecodedImage[] = [];
  for (const { path } of files) {
    let image: DecodedImage;
    try {
      const bytes = await Deno.readFile(path);
      // The size from the header, checked against the first image before any pixel is decoded.
      const { width: w, height: h } = pngSize(bytes, path);
      if (images.length > 0) {
        const [h0, w0] = images[0].shape;
        if (h !== h0 || w !== w0) {
          throw new UserError(
            `${path} is ${w}x${h} (width x height) but ${files[0].path} is ${w0}x${h0}: ` +
              `resize all images in ${folder} to one size`,
          );
        }
      }
      // With `channels` unset, gray files decode to 1 channel and color files to 3.
      image = decodePng(bytes, { channels, source: path });
    } catch (e) {
      if (e instanceof UserError) throw e;
      const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      const problem = why.includes(path) ? why : `${path} is not a readable PNG (${why})`;
      throw new UserError(`${problem}: re-save it as PNG or remove it from ${folder}`);
    }
    images.push(image);
  }

  const [height, width] = images[0].shape;
  const c = channels ?? (images.some((im) => im.shape[2] === 3) ? 3 : 1);
  const pixels = width * height;
  const out = new Float32Array(images.length * pixels * c);
  images.forEach((im, n) => {
    const dst = out.subarray(n * pixels * c, (n + 1) * pixels * c);
    if (im.shape[2] === c) dst.set(im.data);
    else for (let p = 0; p < dst.length; p++) dst[p] = im.data[Math.floor(p / 3)]; // gray -> RGB
  });
  const labels = classNames ? Int32Array.from(files, (f) => f.label) : undefined;
  return {
    name: `png:${folder}`,
    images: out,
    shape: [height, width, c],
    count: images.length,
    labels,
    numClasses: classNames?.length ?? 0,
    classNames,
  };
}

async function listFolder(folder: string): Promise<{ pngs: string[]; dirs: string[] }> {
  const base = folder.replace(/\/+$/, "") || "/";
  const pngs: string[] = [], dirs: string[] = [];
  try {
    for await (const entry of Deno.readDir(base)) {
      if (entry.name.startsWith(".")) continue;
      const path = `${base === "/" ? "" : base}/${entry.name}`;
      if (entry.isDirectory) dirs.push(path);
      else if (/\.png$/i.test(entry.name)) pngs.push(path);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `PNG folder ${folder} does not exist: pass the path of a folder of .png files`,
      );
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new UserError(
        `${folder} is a file, not a folder: pass the folder that holds the .png files`,
      );
    }
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new UserError(`cannot read PNG folder ${folder} (${why}): check its permissions`);
  }
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return { pngs: pngs.sort(byName), dirs: dirs.sort(byName) };
}
