import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { frechetDistance, frechetTerms } from "../eval/frechet.ts";
import { matrixSqrtResidual, symmetricEigen, symmetricSqrt } from "../eval/linalg.ts";
import { psdFactor, traceSqrtProduct } from "../eval/trace_sqrt_product.ts";
import type { FeatureStats } from "../eval/types.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** A random PSD matrix F F^T / rank with F n x rank standard normal (rank-deficient if rank < n). */
function randomPsd(n: number, rank: number, rng: Rng): Float64Array {
  const f = new Float64Array(n * rank);
  for (let i = 0; i < f.length; i++) f[i] = rng.normal();
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += f[i * rank + k] * f[j * rank + k];
      a[i * n + j] = s / rank;
    }
  }
  return a;
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < n; j++) c[i * n + j] += a[i * n + k] * b[k * n + j];
    }
  }
  return c;
}

/**
 * Reference eigenvalues and vectors by the cyclic Jacobi method (an algorithm independent of the
 * Householder + QL solver under test): rotations until the off-diagonal part vanishes.
 */
function jacobiEigen(a: Float64Array, n: number): { values: number[]; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (apq === 0) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) { // columns p, q
          const mkp = m[k * n + p], mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) { // rows p, q
          const mpk = m[p * n + k], mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Array.from({ length: n }, (_, i) => m[i * n + i]), vectors: v };
}

function stats(mu: number[] | Float64Array, sigma: Float64Array, count = 100): FeatureStats {
  return { network: "test", count, mu: Float64Array.from(mu), sigma };
}

function diagonal(values: number[]): Float64Array {
  const n = values.length, a = new Float64Array(n * n);
  values.forEach((v, i) => (a[i * n + i] = v));
  return a;
}

Deno.test("symmetricEigen() gives the closed-form spectrum 2 - 2 cos(k pi / (n + 1)) of the [-1, 2, -1] matrix", () => {
  const n = 37, a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    a[i * n + i] = 2;
    if (i > 0) a[i * n + i - 1] = a[(i - 1) * n + i] = -1;
  }
  const { values } = symmetricEigen(a, n, { vectors: false });
  for (let k = 1; k <= n; k++) {
    assert.ok(Math.abs(values[k - 1] - (2 - 2 * Math.cos(k * Math.PI / (n + 1)))) < 1e-13);
  }
});

Deno.test("symmetricEigen() returns orthonormal vectors with A v = lambda v, values ascending", () => {
  const rng = new Rng(3), n = 40;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
  }
  const { values, vectors } = symmetricEigen(a, n);
  const v = vectors!;
  for (let i = 0; i < n; i++) {
    if (i > 0) assert.ok(values[i] >= values[i - 1]);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[r * n + k] * v[i * n + k];
      assert.ok(Math.abs(s - values[i] * v[i * n + r]) < 1e-12);
    }
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += v[i * n + k] * v[j * n + k];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12);
    }
  }
  // Same spectrum as the independent Jacobi reference.
  const ref = jacobiEigen(a, n).values.sort((x, y) => x - y);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(values[i] - ref[i]) < 1e-12);
});

Deno.test("symmetricSqrt() of a PSD matrix has ||X X - A|| / ||A|| < 1e-8, full rank and rank-deficient", () => {
  const rng = new Rng(5);
  for (const [n, rank] of [[30, 60], [50, 7]]) {
    const a = randomPsd(n, rank, rng);
    const x = symmetricSqrt(a, n);
    assert.ok(matrixSqrtResidual(x, a, n) < 1e-8);
    // A wrong root (the matrix itself) is caught.
    assert.ok(matrixSqrtResidual(a, a, n) > 0.1);
  }
});

Deno.test("psdFactor() finds the numerical rank and F F^T = S, by pivoted Cholesky and by eigenvectors", () => {
  const rng = new Rng(17), n = 30;
  const s = randomPsd(n, 6, rng);
  let norm = 0;
  for (const v of s) norm = Math.max(norm, Math.abs(v));
  for (const factor of ["cholesky", "eigen"] as const) {
    const { rank, ft } = psdFactor(s, n, { factor });
    assert.equal(rank, 6);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = 0; k < rank; k++) v += ft[k * n + i] * ft[k * n + j];
        assert.ok(Math.abs(v - s[i * n + j]) < 1e-13 * norm);
      }
    }
  }
  assert.equal(psdFactor(new Float64Array(4), 2).rank, 0);
  assert.equal(traceSqrtProduct(new Float64Array(4), new Float64Array([1, 0, 0, 1]), 2), 0);
});

Deno.test("frechetDistance() of a set with itself is 0 (within 1e-6 of the traces)", () => {
  const rng = new Rng(7), n = 48;
  const sigma = randomPsd(n, 20, rng);
  const mu = Array.from({ length: n }, () => rng.normal());
  let trace = 0;
  for (let i = 0; i < n; i++) trace += sigma[i * n + i];
  const { covarianceTerm, meanTerm } = frechetTerms(stats(mu, sigma), stats(mu, sigma));
  assert.equal(meanTerm, 0);
  assert.ok(Math.abs(covarianceTerm) < 1e-6 * 2 * trace);
  assert.ok(frechetDistance(stats(mu, sigma), stats(mu, sigma)) < 1e-6 * 2 * trace);
});

Deno.test("frechetDistance() of diagonal covariances is sum (sqrt(a) - sqrt(b))^2 + |mu1 - mu2|^2", () => {
  const a = [4, 1, 0, 2.5, 9, 0.01], b = [1, 1, 3, 0, 16, 1e-4];
  const mu1 = [0, 1, 2, 3, 4, 5], mu2 = [1, 1, -2, 3, 4.5, 5];
  let expected = 0;
  for (let i = 0; i < a.length; i++) {
    expected += (Math.sqrt(a[i]) - Math.sqrt(b[i])) ** 2 + (mu1[i] - mu2[i]) ** 2;
  }
  const fd = frechetDistance(stats(mu1, diagonal(a)), stats(mu2, diagonal(b)));
  assert.ok(Math.abs(fd - expected) < 1e-12 * expected, `${fd} vs ${expected}`);
});

Deno.test("frechetDistance() with equal covariances is exactly the squared mean shift", () => {
  const rng = new Rng(11), n = 32;
  const sigma = randomPsd(n, 40, rng);
  const mu1 = Array.from({ length: n }, () => rng.normal());
  const mu2 = mu1.map((x, i) => x + (i % 3) - 1);
  const shift = mu1.reduce((s, x, i) => s + (x - mu2[i]) ** 2, 0);
  const fd = frechetDistance(stats(mu1, sigma), stats(mu2, sigma));
  assert.ok(Math.abs(fd - shift) < 1e-9 * shift, `${fd} vs ${shift}`);
});

Deno.test("frechetDistance() of rank-deficient covariances (D = 64, rank 10) matches a Jacobi reference in the other ordering", () => {
  const rng = new Rng(13), n = 64;
  const s1 = randomPsd(n, 10, rng), s2 = randomPsd(n, 10, rng);
  const mu1 = Array.from({ length: n }, () => rng.normal());
  const mu2 = Array.from({ length: n }, () => rng.normal());
  // Reference: tr((S1 S2)^{1/2}) = sum sqrt eig(S2^{1/2} S1 S2^{1/2}), S2^{1/2} from Jacobi;
  // eigenvalues that rounding cannot tell from 0 are set to 0.
  const e2 = jacobiEigen(s2, n);
  const max2 = Math.max(...e2.values);
  const root = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) {
        const l = e2.values[k] > 1e-12 * max2 ? Math.sqrt(e2.values[k]) : 0;
        s += e2.vectors[i * n + k] * l * e2.vectors[j * n + k];
      }
      root[i * n + j] = s;
    }
  }
  const m = matmul(matmul(root, s1, n), root, n);
  const mValues = jacobiEigen(m, n).values;
  const maxM = Math.max(...mValues);
  const crossRef = mValues.reduce((s, l) => s + (l > 1e-12 * maxM ? Math.sqrt(l) : 0), 0);
  for (const factor of ["cholesky", "eigen"] as const) {
    const cross = traceSqrtProduct(s1, s2, n, { factor });
    assert.ok(Math.abs(cross - crossRef) < 1e-9 * crossRef, `${factor}: ${cross} vs ${crossRef}`);
  }
  let expected = -2 * crossRef;
  for (let i = 0; i < n; i++) expected += (mu1[i] - mu2[i]) ** 2 + s1[i * n + i] + s2[i * n + i];
  // Counts differ so that each order of decomposition is used once.
  const a = stats(mu1, s1, 11), b = stats(mu2, s2, 500);
  const fds = [
    frechetDistance(a, b),
    frechetDistance(b, a),
    frechetDistance(a, b, { factor: "eigen" }),
  ];
  for (const fd of fds) {
    assert.ok(Math.abs(fd - expected) < 1e-9 * expected, `${fd} vs ${expected}`);
  }
});

Deno.test("frechetDistance() refuses statistics of different networks or widths", () => {
  const a = stats([0], new Float64Array([1]));
  assert.throws(() => frechetDistance(a, { ...a, network: "other" }), UserError);
  assert.throws(
    () => frechetDistance(a, stats([0, 0], new Float64Array(4))),
    (e: Error) => e instanceof UserError && /widths/.test(e.message),
  );
  assert.throws(() => frechetDistance(a, stats([0], new Float64Array([NaN]))), RangeError);
});
