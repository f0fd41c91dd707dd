/**
 * Seeded random numbers: one explicit generator feeds every random draw (noise, sigma,
 * augmentation, batch order), so a run is reproducible and resumable from its saved state.
 *
 * The generator is xoshiro128** (Blackman and Vigna), seeded through splitmix32; normals come
 * from the Box-Muller transform. Its whole state is four 32-bit words plus a cached normal, which
 * {@linkcode Rng.state} returns and {@linkcode Rng.fromState} restores.
 *
 * @module
 */

/** Serializable state of an {@linkcode Rng}: four uint32 words and the cached spare normal. */
export interface RngState {
  /** The four xoshiro128** state words. */
  s: [number, number, number, number];
  /** Second Box-Muller normal of the last pair, or null. */
  spare: number | null;
}

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A seeded pseudo-random generator (xoshiro128**). Mutable: each draw advances its state.
 *
 * @example Draw reproducible numbers
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = new Rng(42), b = new Rng(42);
 * console.assert(a.normal() === b.normal());
 * ```
 */
export class Rng {
  #s: Uint32Array;
  #spare: number | null = null;

  /** Seeds the generator; equal seeds give equal streams. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) {
      throw new TypeError(`Rng seed must be a finite number, got ${seed}`);
    }
    const next = splitmix32(Math.floor(seed) ^ Math.floor(seed / 2 ** 32));
    this.#s = new Uint32Array([next(), next(), next(), next()]);
  }

  /** Restores a generator from {@linkcode Rng.state}. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.#s.set(state.s);
    r.#spare = state.spare;
    return r;
  }

  /** Sets this generator's state in place (resuming a run whose generator others already hold). */
  restore(state: RngState): void {
    this.#s.set(state.s);
    this.#spare = state.spare;
  }

  /** Returns a copy of the current state, e.g. to store in a checkpoint. */
  state(): RngState {
    const [a, b, c, d] = this.#s;
    return { s: [a, b, c, d], spare: this.#spare };
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform number in [0, 1) with 32 bits of randomness. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal draw (Box-Muller). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fills `out` with standard normals and returns it. */
  fillNormal(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }

  /** Fills `out` with uniforms in [0, 1) and returns it. */
  fillUniform(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform();
    return out;
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
