/**
 * The images a feature network sees: generated samples clipped to [-1, 1] and rounded to the 256
 * levels of an 8-bit PNG, as NVlabs/edm (`fid.py` reads `generate.py`'s PNGs, written with
 * `(x * 127.5 + 128).clip(0, 255).to(uint8)`, the same levels up to ties) and pytorch-fid
 * (which reads image files) evaluate them. Raw sampler output can stray far outside [-1, 1]; scoring it unclipped gives Frechet
 * distances orders of magnitude off the ones the same images give once saved.
 *
 * The rounding is exactly `data/png.ts`'s (`Uint8ClampedArray`: clip, round half to even,
 * NaN to 0), so scoring samples in memory and scoring the PNGs they were written to give the same
 * figures. Quantizing an already-quantized image changes nothing.
 *
 * @module
 */

/**
 * Clips `images` (values in [-1, 1]) to [-1, 1] and rounds them to 8-bit levels `p / 127.5 - 1`,
 * the values a PNG round trip gives.
 *
 * @param images Pixels in [-1, 1], any layout; not modified.
 * @returns A new array of the same length.
 * @example Out-of-range and in-between values
 * ```ts
 * import { quantize8Bit } from "./quantize.ts";
 * const q = quantize8Bit(new Float32Array([-3, 0.5, 2]));
 * console.assert(q[0] === -1 && q[2] === 1);
 * console.assert(Math.abs(q[1] - (191 / 127.5 - 1)) < 1e-6);
 * ```
 */
export function quantize8Bit(images: Float32Array): Float32Array {
  const bytes = new Uint8ClampedArray(images.length);
  for (let i = 0; i < images.length; i++) bytes[i] = (images[i] + 1) * 127.5;
  const out = new Float32Array(images.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 127.5 - 1;
  return out;
}
