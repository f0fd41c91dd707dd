/**
 * Float64 dense-matrix helpers for the invertible 1x1 convolutions: LU with partial pivoting,
 * log|det|, inverse and a random rotation. Row-major `Float64Array`s of `n * n` entries. Done on the
 * host in float64 because float32 inverses and determinants of a `C x C` weight drift (the Glow
 * users' "inaccurate inverse / logdet of the 1x1 conv" problem).
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";

/** A pivoted LU factorisation `A = P L U` (L unit lower, U upper), row-major. */
export interface Lu {
  /** Row permutation: row i of `P^T A` is row `perm[i]` of A. */
  perm: Int32Array;
  /** Unit-lower L (below the diagonal) and U (on and above it), packed. */
  lu: Float64Array;
  /** +1 or -1: the sign of the permutation. */
  parity: number;
}

/** Pivoted LU of the `n x n` matrix `a` (not modified). */
export function luDecompose(a: ArrayLike<number>, n: number): Lu {
  const lu = Float64Array.from(a);
  const perm = new Int32Array(n).map((_, i) => i);
  let parity = 1;
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(lu[i * n + k]) > Math.abs(lu[p * n + k])) p = i;
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        const t = lu[k * n + j];
        lu[k * n + j] = lu[p * n + j];
        lu[p * n + j] = t;
      }
      const t = perm[k];
      perm[k] = perm[p];
      perm[p] = t;
      parity = -parity;
    }
    const d = lu[k * n + k];
    if (d === 0) continue;
    for (let i = k + 1; i < n; i++) {
      const f = (lu[i * n + k] /= d);
      for (let j = k + 1; j < n; j++) lu[i * n + j] -= f * lu[k * n + j];
    }
  }
  return { perm, lu, parity };
}

/** log|det A| of the `n x n` matrix `a` (-Infinity when singular). */
export function logAbsDet(a: ArrayLike<number>, n: number): number {
  const { lu } = luDecompose(a, n);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.log(Math.abs(lu[i * n + i]));
  return s;
}

/** The inverse of the `n x n` matrix `a`; throws a RangeError when it is singular. */
export function inverse(a: ArrayLike<number>, n: number): Float64Array {
  const { perm, lu } = luDecompose(a, n);
  for (let i = 0; i < n; i++) {
    if (lu[i * n + i] === 0) {
      throw new RangeError("1x1 convolution weight is singular: re-initialise it");
    }
  }
  const out = new Float64Array(n * n);
  const col = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    // Solve A x = e_j: P L U x = e_j, so L U x = (P^T e_j).
    for (let i = 0; i < n; i++) col[i] = perm[i] === j ? 1 : 0;
    for (let i = 0; i < n; i++) {
      let s = col[i];
      for (let k = 0; k < i; k++) s -= lu[i * n + k] * col[k];
      col[i] = s;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = col[i];
      for (let k = i + 1; k < n; k++) s -= lu[i * n + k] * col[k];
      col[i] = s / lu[i * n + i];
    }
    for (let i = 0; i < n; i++) out[i * n + j] = col[i];
  }
  return out;
}

/** `a b` for `n x n` row-major matrices. */
export function matMul(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/** A random rotation (orthogonal matrix) from Gram-Schmidt on Gaussian draws, as Glow initialises W. */
export function randomOrthogonal(n: number, rng: Rng): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) q[i] = rng.normal();
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < i; k++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += q[i * n + j] * q[k * n + j];
      for (let j = 0; j < n; j++) q[i * n + j] -= dot * q[k * n + j];
    }
    let norm = 0;
    for (let j = 0; j < n; j++) norm += q[i * n + j] ** 2;
    norm = Math.sqrt(norm);
    for (let j = 0; j < n; j++) q[i * n + j] /= norm;
  }
  return q;
}
