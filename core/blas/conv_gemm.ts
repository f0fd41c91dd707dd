/**
 * 2-D convolution and its two gradients (NHWC, dilation 1, any stride and padding) as a few
 * large matrix products, so a native `sgemm` does nearly all the work.
 *
 * Not tied to a paper: the standard lowering of convolution to GEMM (Chellapilla et al. 2006,
 * "High performance convolutional neural networks for document processing"), done implicitly.
 * For stride 1 the input is zero-padded once to `[N, Hp, Wp, Ci]` with `Hp = Ho + kh - 1`,
 * `Wp = Wo + kw - 1`; viewed as one long list of pixels (rows of `Ci` floats), filter tap
 * `(i, j)` maps output pixel `q` of an `[N, Hp, Wp]` grid to input pixel `q + i Wp + j`. So each
 * tap is ONE product over all pixels of the batch, `grid += xPadded[shifted] @ W[i, j]`, with
 * no im2col copy; the grid's extra columns and rows are discarded when the result is copied out
 * (about (Hp Wp) / (Ho Wo) - 1 = 13 % waste for a 3x3 conv at 32x32). The products are done in
 * chunks of rows so the accumulated block stays in cache across the taps. The input gradient of a
 * stride-1 conv is the same computation on the padded output gradient with the filter rotated by
 * 180 degrees and transposed (a transpose flag, no copy); the filter gradient contracts the
 * shifted input with the output gradient laid out on the same grid, one product per tap.
 * Strides above 1 use one product per output row and tap, with the stride as the row pitch.
 *
 * @module
 */
import type { Sgemm } from "./openblas.ts";

/** Shapes of one convolution; `backend_util.Conv2DInfo` from tfjs satisfies it. */
export interface ConvGeometry {
  /** Batch size N. */
  batchSize: number;
  /** Input height H. */
  inHeight: number;
  /** Input width W. */
  inWidth: number;
  /** Input channels Ci. */
  inChannels: number;
  /** Output height Ho. */
  outHeight: number;
  /** Output width Wo. */
  outWidth: number;
  /** Output channels Co. */
  outChannels: number;
  /** Filter height kh. */
  filterHeight: number;
  /** Filter width kw. */
  filterWidth: number;
  /** Vertical stride. */
  strideHeight: number;
  /** Horizontal stride. */
  strideWidth: number;
  /** Zero rows above and columns left of the input. */
  padInfo: { top: number; left: number };
}

/** Arguments of {@linkcode conv2dGemm}: NHWC input, `[kh, kw, Ci, Co]` filter, NHWC output. */
export interface Conv2dGemmArgs {
  /** Shapes. */
  geometry: ConvGeometry;
  /** Input `[N, H, W, Ci]`, read only. */
  x: Float32Array;
  /** Filter `[kh, kw, Ci, Co]`, read only. */
  filter: Float32Array;
  /** Output `[N, Ho, Wo, Co]`, fully overwritten. */
  y: Float32Array;
}

/** Arguments of {@linkcode conv2dBackpropInputGemm}. */
export interface Conv2dBackpropInputGemmArgs {
  /** Shapes of the forward convolution. */
  geometry: ConvGeometry;
  /** Output gradient `[N, Ho, Wo, Co]`, read only. */
  dy: Float32Array;
  /** Filter `[kh, kw, Ci, Co]`, read only. */
  filter: Float32Array;
  /** Input gradient `[N, H, W, Ci]`, fully overwritten. */
  dx: Float32Array;
}

/** Arguments of {@linkcode conv2dBackpropFilterGemm}. */
export interface Conv2dBackpropFilterGemmArgs {
  /** Shapes of the forward convolution. */
  geometry: ConvGeometry;
  /** Input `[N, H, W, Ci]`, read only. */
  x: Float32Array;
  /** Output gradient `[N, Ho, Wo, Co]`, read only. */
  dy: Float32Array;
  /** Filter gradient `[kh, kw, Ci, Co]`, fully overwritten. */
  dw: Float32Array;
}

/** Floats of output per product (1 MiB): big enough to keep two BLAS threads busy, small enough
 * that the block accumulated over the taps stays in cache (measured: 1 << 16 to 1 << 18 best). */
const CHUNK_FLOATS = 1 << 18;

/**
 * Convolution forward pass `y = conv2d(x, filter)` (cross-correlation, as in tfjs).
 *
 * @returns Nothing: writes `args.y`.
 * @example A 1x1 conv is a matrix product
 * ```ts
 * import { conv2dGemm } from "./conv_gemm.ts";
 * import { loadBlas } from "./openblas.ts";
 * const r = loadBlas();
 * if (r.ok) {
 *   const geometry = { batchSize: 1, inHeight: 1, inWidth: 2, inChannels: 1, outHeight: 1,
 *     outWidth: 2, outChannels: 1, filterHeight: 1, filterWidth: 1, strideHeight: 1,
 *     strideWidth: 1, padInfo: { top: 0, left: 0 } };
 *   const y = new Float32Array(2);
 *   conv2dGemm(r.blas.sgemm, { geometry, x: new Float32Array([1, 2]), filter: new Float32Array([3]), y });
 *   console.log(y); // [3, 6]
 * }
 * ```
 */
export function conv2dGemm(sgemm: Sgemm, args: Conv2dGemmArgs): void {
  const { geometry: g, x, filter, y } = args;
  const { batchSize: n, inChannels: ci, outChannels: co, outHeight: ho, outWidth: wo } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  if (sh === 1 && sw === 1) {
    const hp = ho + kh - 1, wp = wo + kw - 1;
    const src = padded(x, g, hp, wp, 0);
    gridConv(sgemm, { src, n, hp, wp, cin: ci, cout: co, kh, kw, filter, rotate: false, out: y });
    return;
  }
  const hp = (ho - 1) * sh + kh, wp = (wo - 1) * sw + kw;
  const src = padded(x, g, hp, wp, 0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const c = y.subarray((b * ho + oh) * wo * co);
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          sgemm({
            m: wo,
            n: co,
            k: ci,
            a: src.subarray(((b * hp + oh * sh + i) * wp + j) * ci),
            lda: sw * ci,
            b: filter.subarray((i * kw + j) * ci * co),
            ldb: co,
            beta: i + j === 0 ? 0 : 1,
            c,
            ldc: co,
          });
        }
      }
    }
  }
}

/**
 * Input gradient of {@linkcode conv2dGemm}: `dx = conv2d_transpose(dy, filter)`.
 *
 * @returns Nothing: writes `args.dx`.
 * @example Input gradient of a 1x1 conv: dx[p, :] = filter @ dy[p, :] for each pixel p
 * ```ts
 * import { conv2dBackpropInputGemm } from "./conv_gemm.ts";
 * import { loadBlas } from "./openblas.ts";
 * const r = loadBlas();
 * if (r.ok) {
 *   const geometry = { batchSize: 1, inHeight: 1, inWidth: 1, inChannels: 2, outHeight: 1,
 *     outWidth: 1, outChannels: 1, filterHeight: 1, filterWidth: 1, strideHeight: 1,
 *     strideWidth: 1, padInfo: { top: 0, left: 0 } };
 *   const dx = new Float32Array(2);
 *   const filter = new Float32Array([3, 4]), dy = new Float32Array([2]);
 *   conv2dBackpropInputGemm(r.blas.sgemm, { geometry, dy, filter, dx }); // dx = [6, 8]
 * }
 * ```
 */
export function conv2dBackpropInputGemm(sgemm: Sgemm, args: Conv2dBackpropInputGemmArgs): void {
  const { geometry: g, dy, filter, dx } = args;
  const { batchSize: n, inChannels: ci, outChannels: co, outHeight: ho, outWidth: wo } = g;
  const { inHeight: h, inWidth: w, filterHeight: kh, filterWidth: kw } = g;
  const { strideHeight: sh, strideWidth: sw, padInfo: { top, left } } = g;
  if (sh === 1 && sw === 1) {
    // A forward conv of dy, padded by (k - 1 - pad), with the rotated, transposed filter.
    const hp = h + kh - 1, wp = w + kw - 1;
    const padTop = kh - 1 - top, padLeft = kw - 1 - left;
    const direct = padTop === 0 && padLeft === 0 && hp === ho && wp === wo;
    const src = direct ? dy : placeRows(dy, [n, ho, wo, co], scratch(0, n * hp * wp * co), {
      height: hp,
      width: wp,
      top: padTop,
      left: padLeft,
    });
    gridConv(sgemm, {
      src,
      n,
      hp,
      wp,
      cin: co,
      cout: ci,
      kh,
      kw,
      filter,
      rotate: true,
      out: dx,
    });
    return;
  }
  // Scatter each output row's contribution into a padded dx, then crop the padding away.
  const hp = (ho - 1) * sh + kh, wp = (wo - 1) * sw + kw;
  const acc = scratch(0, n * hp * wp * ci).fill(0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const a = dy.subarray((b * ho + oh) * wo * co);
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          sgemm({
            transB: true,
            m: wo,
            n: ci,
            k: co,
            a,
            lda: co,
            b: filter.subarray((i * kw + j) * ci * co),
            ldb: co,
            beta: 1,
            c: acc.subarray(((b * hp + oh * sh + i) * wp + j) * ci),
            ldc: sw * ci,
          });
        }
      }
    }
  }
  placeRows(acc, [n, hp, wp, ci], dx, { height: h, width: w, top: -top, left: -left });
}

/**
 * Filter gradient of {@linkcode conv2dGemm}: `dw[i, j] = sum over pixels of x[shifted]^T dy`.
 *
 * @returns Nothing: writes `args.dw`.
 * @example Filter gradient of a 1x1 conv: dw = x^T dy over the pixels
 * ```ts
 * import { conv2dBackpropFilterGemm } from "./conv_gemm.ts";
 * import { loadBlas } from "./openblas.ts";
 * const r = loadBlas();
 * if (r.ok) {
 *   const geometry = { batchSize: 1, inHeight: 1, inWidth: 2, inChannels: 1, outHeight: 1,
 *     outWidth: 2, outChannels: 1, filterHeight: 1, filterWidth: 1, strideHeight: 1,
 *     strideWidth: 1, padInfo: { top: 0, left: 0 } };
 *   const dw = new Float32Array(1);
 *   const x = new Float32Array([1, 2]), dy = new Float32Array([3, 4]);
 *   conv2dBackpropFilterGemm(r.blas.sgemm, { geometry, x, dy, dw }); // dw = [11]
 * }
 * ```
 */
export function conv2dBackpropFilterGemm(sgemm: Sgemm, args: Conv2dBackpropFilterGemmArgs): void {
  const { geometry: g, x, dy, dw } = args;
  const { batchSize: n, inChannels: ci, outChannels: co, outHeight: ho, outWidth: wo } = g;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = g;
  if (n * ho * wo === 0) {
    dw.fill(0);
    return;
  }
  if (sh === 1 && sw === 1) {
    const hp = ho + kh - 1, wp = wo + kw - 1;
    const src = padded(x, g, hp, wp, 0);
    const dyGrid = hp === ho && wp === wo
      ? dy
      : placeRows(dy, [n, ho, wo, co], scratch(1, n * hp * wp * co), {
        height: hp,
        width: wp,
        top: 0,
        left: 0,
      });
    const rows = n * hp * wp - (kh - 1) * wp - (kw - 1);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        sgemm({
          transA: true,
          m: ci,
          n: co,
          k: rows,
          a: src.subarray((i * wp + j) * ci),
          lda: ci,
          b: dyGrid,
          ldb: co,
          c: dw.subarray((i * kw + j) * ci * co),
          ldc: co,
        });
      }
    }
    return;
  }
  const hp = (ho - 1) * sh + kh, wp = (wo - 1) * sw + kw;
  const src = padded(x, g, hp, wp, 0);
  dw.fill(0);
  for (let b = 0; b < n; b++) {
    for (let oh = 0; oh < ho; oh++) {
      const bRows = dy.subarray((b * ho + oh) * wo * co);
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          sgemm({
            transA: true,
            m: ci,
            n: co,
            k: wo,
            a: src.subarray(((b * hp + oh * sh + i) * wp + j) * ci),
            lda: sw * ci,
            b: bRows,
            ldb: co,
            beta: 1,
            c: dw.subarray((i * kw + j) * ci * co),
            ldc: co,
          });
        }
      }
    }
  }
}

interface GridConvArgs {
  /** Padded source `[n, hp, wp, cin]`. */
  src: Float32Array;
  n: number;
  hp: number;
  wp: number;
  cin: number;
  cout: number;
  kh: number;
  kw: number;
  /** `[kh, kw, cin, cout]`, or with `rotate` `[kh, kw, cout, cin]` used rotated and transposed. */
  filter: Float32Array;
  rotate: boolean;
  /** `[n, hp - kh + 1, wp - kw + 1, cout]`. */
  out: Float32Array;
}

// Stride-1 correlation of a padded source: one product per tap and chunk of grid rows.
function gridConv(sgemm: Sgemm, args: GridConvArgs): void {
  const { src, n, hp, wp, cin, cout, kh, kw, filter, rotate, out } = args;
  const ho = hp - kh + 1, wo = wp - kw + 1;
  if (out.length === 0) return;
  const direct = kh === 1 && kw === 1; // the grid is the output itself
  const grid = direct ? out : scratch(2, n * hp * wp * cout);
  const rows = n * hp * wp - (kh - 1) * wp - (kw - 1);
  const chunk = Math.max(16, Math.floor(CHUNK_FLOATS / Math.max(cin, cout)));
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const m = Math.min(chunk, rows - r0);
    const c = grid.subarray(r0 * cout);
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const tap = rotate ? (kh - 1 - i) * kw + (kw - 1 - j) : i * kw + j;
        sgemm({
          transB: rotate,
          m,
          n: cout,
          k: cin,
          a: src.subarray((r0 + i * wp + j) * cin),
          lda: cin,
          b: filter.subarray(tap * cin * cout),
          ldb: rotate ? cin : cout,
          beta: i + j === 0 ? 0 : 1,
          c,
          ldc: cout,
        });
      }
    }
  }
  if (!direct) placeRows(grid, [n, hp, wp, cout], out, { height: ho, width: wo, top: 0, left: 0 });
}

// The forward input padded to [n, hp, wp, ci] at the conv's (top, left), or x itself if equal.
function padded(x: Float32Array, g: ConvGeometry, hp: number, wp: number, slot: number) {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, padInfo: { top, left } } = g;
  if (top === 0 && left === 0 && hp === h && wp === w) return x;
  return placeRows(x, [n, h, w, ci], scratch(slot, n * hp * wp * ci), {
    height: hp,
    width: wp,
    top,
    left,
  });
}

interface Placement {
  height: number;
  width: number;
  /** Row of the destination where the source's row 0 lands (negative crops). */
  top: number;
  /** Column of the destination where the source's column 0 lands (negative crops). */
  left: number;
}

// dst[b, y, x, :] = src[b, y - top, x - left, :], zero where the source has no pixel.
function placeRows(
  src: Float32Array,
  [n, h, w, c]: number[],
  dst: Float32Array,
  { height: hd, width: wd, top, left }: Placement,
): Float32Array {
  const y0 = Math.max(0, top), y1 = Math.min(hd, top + h);
  const x0 = Math.max(0, left), x1 = Math.min(wd, left + w);
  const covers = y0 === 0 && y1 === hd && x0 === 0 && x1 === wd;
  if (!covers) dst.fill(0);
  if (y1 <= y0 || x1 <= x0) return dst;
  const len = (x1 - x0) * c;
  const contiguous = x0 === 0 && x1 === wd && left === 0 && w === wd;
  for (let b = 0; b < n; b++) {
    if (contiguous) {
      const s = (b * h + (y0 - top)) * w * c, d = (b * hd + y0) * wd * c;
      dst.set(src.subarray(s, s + (y1 - y0) * w * c), d);
      continue;
    }
    for (let y = y0; y < y1; y++) {
      const s = ((b * h + (y - top)) * w + (x0 - left)) * c;
      dst.set(src.subarray(s, s + len), ((b * hd + y) * wd + x0) * c);
    }
  }
  return dst;
}

const pool: Float32Array[] = [];

// Reused work buffers (grown, never shrunk): kernels run one at a time on the JS thread.
function scratch(slot: number, size: number): Float32Array {
  let buf = pool[slot];
  if (buf === undefined || buf.length < size) {
    buf = new Float32Array(size);
    pool[slot] = buf;
  }
  return buf.subarray(0, size);
}
