/**
 * Float64 symmetric eigendecomposition and the symmetric matrix square root, for the Frechet
 * distance (Heusel et al. 2017, FID: d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}); see
 * trace_sqrt_product.ts for how its trace term uses them).
 *
 * The eigensolver is the classical two-phase method: Householder reduction to tridiagonal form
 * (the EISPACK `tred2` scheme), then the implicit QL algorithm with shifts (`tql2`); see Golub and
 * Van Loan, "Matrix Computations", sections 8.3 and 8.3.5, or Wilkinson and Reinsch (1971). It is
 * written for row-major Float64Array storage: the reduction reads and updates only the lower
 * triangle, row by row (one pass over each row gives both halves of the symmetric matrix-vector
 * product), and the QL rotations act on rows of the transposed eigenvector matrix, so every inner
 * loop is contiguous.
 *
 * Why hand-written rather than `ml-matrix`'s EigenvalueDecomposition (the same two phases on
 * arrays of arrays): the Frechet distance needs eigenvalues only, which ml-matrix cannot skip the
 * eigenvectors for. Measured at n = 2048 (CPU seconds on the 2-core development machine, other
 * jobs running): eigenvalues only 4.4 s here; with eigenvectors 19.7 s here and 15.9 s in
 * ml-matrix 6.15.1 (at n = 1024: 0.4, 1.8 and 1.7 s).
 *
 * @module
 */
import { checkSquare, gemmNT, symmetrizeFromLower } from "./_matrix64.ts";

/** Options of {@linkcode symmetricEigen}. */
export interface SymmetricEigenOptions {
  /** Also compute eigenvectors (about 4x the work of eigenvalues alone). @default true */
  vectors?: boolean;
}

/** Eigenvalues (ascending) and, when asked for, orthonormal eigenvectors of a symmetric matrix. */
export interface SymmetricEigen {
  /** Eigenvalues in ascending order, length n. */
  values: Float64Array;
  /** Row-major n x n; row i is the unit eigenvector of `values[i]`. Absent with `vectors: false`. */
  vectors?: Float64Array;
}

/** Iterations of QL allowed per eigenvalue before giving up (2-3 are typical). */
const MAX_QL_ITERATIONS = 60;

/**
 * Eigendecomposition `A = V diag(values) V^T` of a real symmetric n x n matrix, in float64.
 * Only the lower triangle of `a` is read.
 *
 * @param a Row-major n x n symmetric matrix; read, never modified.
 * @param n Its order.
 * @param options See {@linkcode SymmetricEigenOptions}.
 * @returns Fresh arrays; the caller owns them.
 * @throws {RangeError} When `a.length` is not n * n or holds a non-finite value.
 * @throws {Error} When QL does not converge (not seen in practice for finite input).
 * @example The eigenvalues of [[2, 1], [1, 2]] are 1 and 3
 * ```ts
 * import { symmetricEigen } from "./linalg.ts";
 * const { values, vectors } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2);
 * console.assert(Math.abs(values[0] - 1) < 1e-12 && Math.abs(values[1] - 3) < 1e-12);
 * console.assert(Math.abs(Math.abs(vectors![0]) - Math.SQRT1_2) < 1e-12);
 * ```
 */
export function symmetricEigen(
  a: Float64Array,
  n: number,
  options: SymmetricEigenOptions = {},
): SymmetricEigen {
  const { vectors = true } = options;
  checkSquare(a, n, "symmetricEigen");
  const work = Float64Array.from(a);
  const d = new Float64Array(n), e = new Float64Array(n);
  tridiagonalize(work, n, d, e, vectors);
  let vt: Float64Array | undefined;
  if (vectors) {
    vt = work; // now Q; QL rotates rows of Q^T
    transposeInPlace(vt, n);
  }
  tridiagonalQl(d, e, n, vt);
  return sortEigen(d, n, vt);
}

/**
 * The principal square root of a symmetric positive semidefinite matrix, `V diag(sqrt(max(l, 0)))
 * V^T`: eigenvalues below zero (rounding noise of a PSD matrix) are clamped to 0.
 *
 * @param a Row-major n x n symmetric PSD matrix; read only (lower triangle).
 * @param n Its order.
 * @returns A fresh symmetric n x n matrix X with X X = A; the caller owns it.
 * @example The square root of diag(4, 9)
 * ```ts
 * import { symmetricSqrt } from "./linalg.ts";
 * const x = symmetricSqrt(new Float64Array([4, 0, 0, 9]), 2);
 * console.assert(Math.abs(x[0] - 2) < 1e-12 && Math.abs(x[3] - 3) < 1e-12);
 * ```
 */
export function symmetricSqrt(a: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, n);
  // X = sum_i sqrt(l_i) v_i v_i^T = W W^T, where column i of W is l_i^(1/4) v_i; W W^T is the dot
  // products of W's rows (contiguous).
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const s = Math.sqrt(Math.sqrt(Math.max(values[i], 0)));
    for (let k = 0; k < n; k++) w[k * n + i] = vectors![i * n + k] * s;
  }
  const x = gemmNT(w, w, { m: n, n, k: n, lower: true });
  symmetrizeFromLower(x, n);
  return x;
}

/**
 * Relative residual `||X X - A||_F / ||A||_F` of a claimed square root X of A (0 for A = 0 and
 * X = 0), for tests and sanity checks.
 *
 * @param x Row-major n x n candidate root.
 * @param a Row-major n x n matrix.
 * @param n The order of both.
 * @returns The relative Frobenius-norm residual.
 * @example An exact root has residual 0
 * ```ts
 * import { matrixSqrtResidual } from "./linalg.ts";
 * const r = matrixSqrtResidual(new Float64Array([2, 0, 0, 3]), new Float64Array([4, 0, 0, 9]), 2);
 * console.assert(r === 0);
 * ```
 */
export function matrixSqrtResidual(x: Float64Array, a: Float64Array, n: number): number {
  checkSquare(x, n, "matrixSqrtResidual");
  checkSquare(a, n, "matrixSqrtResidual");
  // (X X)[i][j] = X[i, :] . X^T[j, :]
  const xt = transposed(x, n);
  const xx = gemmNT(x, xt, { m: n, n, k: n });
  let num = 0, den = 0;
  for (let i = 0; i < n * n; i++) {
    num += (xx[i] - a[i]) ** 2;
    den += a[i] ** 2;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

/**
 * Householder reduction of the symmetric matrix in `a` (lower triangle) to tridiagonal T, with
 * diagonal `d` and subdiagonal `e[i] = T[i][i - 1]` (`e[0] = 0`). With `accumulate`, `a` ends
 * holding the orthogonal Q with A = Q T Q^T (row-major); otherwise `a` is left as scratch.
 */
function tridiagonalize(
  a: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
  accumulate: boolean,
): void {
  const p = new Float64Array(n), q = new Float64Array(n);
  // Rows from the last up: step i zeroes a[i][0..i-2] with the reflector P = I - u u^T / h,
  // u stored in place of row i (scaled by `scale`, to which P is invariant), h in d[i].
  for (let i = n - 1; i >= 1; i--) {
    const l = i - 1, ri = i * n;
    let h = 0;
    let scale = 0;
    if (l > 0) { for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k]); }
    if (scale === 0) {
      e[i] = a[ri + l]; // nothing to annihilate (or l = 0)
    } else {
      for (let k = 0; k <= l; k++) {
        a[ri + k] /= scale;
        h += a[ri + k] * a[ri + k];
      }
      const f = a[ri + l];
      const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
      e[i] = scale * g;
      h -= f * g; // h = |u|^2 / 2
      a[ri + l] = f - g;
      symmetricMatVec(a, n, ri, l, p); // p = A u
      let up = 0;
      for (let j = 0; j <= l; j++) {
        p[j] /= h;
        up += a[ri + j] * p[j];
      }
      const kk = up / (h + h);
      for (let j = 0; j <= l; j++) q[j] = p[j] - kk * a[ri + j];
      rank2Update(a, n, ri, l, q); // A <- P A P = A - u q^T - q u^T
    }
    d[i] = h;
  }
  e[0] = 0;
  if (!accumulate) {
    for (let i = 0; i < n; i++) d[i] = a[i * n + i];
    return;
  }
  // Q = P_{n-1} ... P_1 built up in place from the leading block: at step i the block
  // a[0..i-1][0..i-1] holds the product so far, row i still holds u.
  const g = p;
  d[0] = 0;
  for (let i = 0; i < n; i++) {
    const l = i - 1, ri = i * n;
    const h = d[i];
    if (h !== 0) applyReflector(a, n, ri, l, h, g);
    d[i] = a[ri + i];
    a[ri + i] = 1;
    for (let j = 0; j <= l; j++) {
      a[ri + j] = 0;
      a[j * n + i] = 0;
    }
  }
}

/**
 * Implicit QL with Wilkinson-style shifts on the tridiagonal (d, e) from {@linkcode tridiagonalize};
 * `d` ends holding the eigenvalues (unsorted). With `vt` (row-major Q^T), each plane rotation is
 * applied to two rows of it, so `vt` ends holding the eigenvectors as rows.
 */
function tridiagonalQl(d: Float64Array, e: Float64Array, n: number, vt?: Float64Array): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0, tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_QL_ITERATIONS) {
          throw new Error(`symmetric eigensolver: QL did not converge for eigenvalue ${l} of ${n}`);
        }
        // Shift from the leading 2 x 2 block.
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        // Chase the bulge from m up to l with plane rotations.
        p = d[m];
        let c = 1, c2 = c, c3 = c, s = 0, s2 = 0;
        const el1 = e[l + 1];
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (vt !== undefined) rotateRows(vt, i * n, n, c, s);
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] = d[l] + f;
    e[l] = 0;
  }
}

// The hot loops below are small functions of their own: V8 compiles them fully after a few
// calls, where inside one long-running loop nest they ran as on-stack-replaced code that kept
// deoptimizing (measured on the matrix products: calls 1x-4x slower at random).

/** p[0..l] = A[0..l][0..l] u with u = row `ri` of `a`, from the lower triangle: row k gives
 * p[k] += A[k][0..k] . u[0..k] and, by symmetry, p[j] += A[k][j] u[k] for j < k. */
function symmetricMatVec(a: Float64Array, n: number, ri: number, l: number, p: Float64Array): void {
  p.fill(0, 0, l + 1);
  for (let k = 0; k <= l; k++) {
    const rk = k * n, uk = a[ri + k];
    let s = 0;
    for (let j = 0; j < k; j++) {
      const akj = a[rk + j];
      s += akj * a[ri + j];
      p[j] += akj * uk;
    }
    p[k] += s + a[rk + k] * uk;
  }
}

/** A[0..l][0..l] -= u q^T + q u^T on the lower triangle, u = row `ri` of `a`. */
function rank2Update(a: Float64Array, n: number, ri: number, l: number, q: Float64Array): void {
  for (let k = 0; k <= l; k++) {
    const rk = k * n, uk = a[ri + k], qk = q[k];
    for (let j = 0; j <= k; j++) a[rk + j] -= uk * q[j] + qk * a[ri + j];
  }
}

/** Q_block <- (I - u u^T / h) Q_block on a[0..l][0..l], u = row `ri`: g = Q^T u, then
 * Q[k, :] -= (u[k] / h) g, both row-wise. */
function applyReflector(
  a: Float64Array,
  n: number,
  ri: number,
  l: number,
  h: number,
  g: Float64Array,
): void {
  g.fill(0, 0, l + 1);
  for (let k = 0; k <= l; k++) {
    const uk = a[ri + k], rk = k * n;
    for (let j = 0; j <= l; j++) g[j] += uk * a[rk + j];
  }
  for (let k = 0; k <= l; k++) {
    const w = a[ri + k] / h, rk = k * n;
    for (let j = 0; j <= l; j++) a[rk + j] -= w * g[j];
  }
}

/** Plane rotation of rows r0 and r0 + n (length n) of `vt`. */
function rotateRows(vt: Float64Array, r0: number, n: number, c: number, s: number): void {
  const r1 = r0 + n;
  for (let k = 0; k < n; k++) {
    const x0 = vt[r0 + k], x1 = vt[r1 + k];
    vt[r1 + k] = s * x0 + c * x1;
    vt[r0 + k] = c * x0 - s * x1;
  }
}

function sortEigen(d: Float64Array, n: number, vt?: Float64Array): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[i] - d[j]);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = d[order[i]];
  if (vt === undefined) return { values };
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) vectors.set(vt.subarray(order[i] * n, order[i] * n + n), i * n);
  return { values, vectors };
}

function transposeInPlace(a: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const t = a[i * n + j];
      a[i * n + j] = a[j * n + i];
      a[j * n + i] = t;
    }
  }
}

function transposed(a: Float64Array, n: number): Float64Array {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
  return t;
}
