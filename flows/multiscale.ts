/**
 * The multiscale architecture shared by Glow and RealNVP (RealNVP, Dinh et al. 2017, Section 3.6
 * eq. 13-14; Glow, Kingma & Dhariwal 2018, Figure 2): L levels, each a bijector at its
 * resolution; after every level but the last, half of the channels are factored out through a
 * {@linkcode splitPrior}; the top latent goes through a learned {@linkcode topPrior}. The latents
 * (the whitened factored-out halves and the whitened top) are N(0, I) under the model, so
 *
 *   log p(x) = sum_latents log N(eps; 0, I) + sum_layers log|det J|
 *
 * computed per example in float32. Sampling at temperature T draws every latent from N(0, T^2 I)
 * (Glow's "temperature": the std of every latent multiplied by T) and runs the inverse.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Rng } from "../core/rng.ts";
import type { Bijector, FlowContext } from "./bijector.ts";
import { splitPrior } from "./split_prior.ts";
import { topPrior } from "./top_prior.ts";

/** What {@linkcode FlowModel.encode} returns. */
export interface FlowEncoding {
  /** The latents, each `[N, h, w, c]`: the factored-out halves level by level, then the top. */
  latents: tf.Tensor4D[];
  /** `log|det dz/dx|` per example `[N]`. */
  logdet: tf.Tensor1D;
}

/** Options of {@linkcode FlowModel.sample}. */
export interface FlowSampleOptions {
  /** Source of the latent draws. */
  rng: Rng;
  /** Temperature T >= 0: latents are drawn from N(0, T^2). @default 1 */
  temperature?: number;
}

/** A multiscale normalizing flow over `[H, W, C]` tensors, its parameters passed explicitly. */
export interface FlowModel {
  /** Shape `[H, W, C]` of one example. */
  readonly shape: [number, number, number];
  /** Shapes of the latents, in {@linkcode FlowEncoding.latents} order. */
  readonly latentShapes: [number, number, number][];
  /** Fresh parameters (ActNorm layers still to initialise: see `initialize`). */
  init(rng: Rng): Params;
  /** Data-dependent initialisation of every ActNorm whose flag is 0, from the batch `x`. */
  initialize(params: Params, x: tf.Tensor4D): void;
  /** Data to latents with the log-determinant; differentiable in `params`. */
  encode(params: Params, x: tf.Tensor4D, context?: FlowContext): FlowEncoding;
  /** Latents to data (the inverse of `encode`). */
  decode(params: Params, latents: tf.Tensor4D[]): tf.Tensor4D;
  /** log p(x) per example `[N]` in nats (a density on R^(HWC)); differentiable in `params`. */
  logProb(params: Params, x: tf.Tensor4D): tf.Tensor1D;
  /** `n` samples `[n, H, W, C]` at a temperature. */
  sample(params: Params, n: number, options: FlowSampleOptions): tf.Tensor4D;
}

/** Options of {@linkcode multiscaleFlow}. */
export interface MultiscaleOptions {
  /** Shape `[H, W, C]` of one example. */
  shape: [number, number, number];
  /** Number of levels L >= 1. */
  levels: number;
  /** Builds level i's bijector for its input shape; parameter names should start `level<i>.`. */
  level: (i: number, shape: [number, number, number]) => Bijector;
}

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * Standard-normal log-density summed per example.
 *
 * @param eps `[N, ...]`.
 * @returns `[N]`.
 * @example
 * ```ts ignore
 * const lp = standardNormalLogProb(tf.zeros([2, 3, 3, 1])); // -9 * 0.919 each
 * ```
 */
export function standardNormalLogProb(eps: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const rows = tf.reshape(eps, [eps.shape[0], -1]);
    return tf.sub(
      tf.mul(tf.sum(tf.square(rows), 1), -0.5),
      rows.shape[1]! * HALF_LOG_2PI,
    ) as tf.Tensor1D;
  });
}

/**
 * A multiscale flow from its levels.
 *
 * @param options The data shape, the number of levels and the level builder.
 * @returns The model.
 * @throws {RangeError} For fewer than 1 level or a level whose channels cannot be halved.
 * @example
 * ```ts ignore
 * const model = multiscaleFlow({ shape: [8, 8, 1], levels: 2, level: (i, s) => squeeze({ name: `level${i}.sq`, shape: s }) });
 * ```
 */
export function multiscaleFlow(options: MultiscaleOptions): FlowModel {
  const { shape, levels } = options;
  if (!Number.isInteger(levels) || levels < 1) {
    throw new RangeError(`multiscale flow: levels must be an integer >= 1, got ${levels}`);
  }
  const stages: Bijector[] = [];
  const splits: Bijector[] = [];
  const latentShapes: [number, number, number][] = [];
  let s = shape;
  for (let i = 0; i < levels; i++) {
    const stage = options.level(i, s);
    stages.push(stage);
    s = stage.outShape;
    if (i < levels - 1) {
      const split = splitPrior({ name: `level${i}.split`, shape: s });
      splits.push(split);
      s = [s[0], s[1], s[2] / 2];
      latentShapes.push(s);
    }
  }
  const top = topPrior({ name: "top", shape: s });
  latentShapes.push(s);

  const encode = (params: Params, x: tf.Tensor4D, context?: FlowContext): FlowEncoding =>
    tf.tidy(() => {
      const latents: tf.Tensor4D[] = [];
      let h = x;
      let logdet = tf.zeros([x.shape[0]]) as tf.Tensor1D;
      const add = (r: { y: tf.Tensor4D; logdet: tf.Tensor1D }) => {
        logdet = tf.add(logdet, r.logdet);
        return r.y;
      };
      for (let i = 0; i < levels; i++) {
        h = add(stages[i].forward(params, h, context));
        if (i < levels - 1) {
          const [kept, eps] = tf.split(add(splits[i].forward(params, h)), 2, 3) as tf.Tensor4D[];
          latents.push(eps);
          h = kept;
        }
      }
      latents.push(add(top.forward(params, h)));
      return { latents, logdet };
    });

  const decode = (params: Params, latents: tf.Tensor4D[]): tf.Tensor4D =>
    tf.tidy(() => {
      if (latents.length !== levels) {
        throw new RangeError(`decode: expected ${levels} latents, got ${latents.length}`);
      }
      let h = top.inverse(params, latents[levels - 1]).y;
      for (let i = levels - 1; i >= 0; i--) {
        if (i < levels - 1) {
          h = splits[i].inverse(params, tf.concat([h, latents[i]], 3) as tf.Tensor4D).y;
        }
        h = stages[i].inverse(params, h).y;
      }
      return h;
    });

  return {
    shape,
    latentShapes,
    init(rng: Rng): Params {
      return Object.assign(
        {},
        ...stages.map((b) => b.init(rng)),
        ...splits.map((b) => b.init(rng)),
        top.init(rng),
      );
    },
    initialize(params: Params, x: tf.Tensor4D): void {
      const r = encode(params, x, { init: true });
      tf.dispose([...r.latents, r.logdet]);
    },
    encode,
    decode,
    logProb: (params: Params, x: tf.Tensor4D): tf.Tensor1D =>
      tf.tidy(() => {
        const { latents, logdet } = encode(params, x);
        return latents.reduce((acc, eps) => tf.add(acc, standardNormalLogProb(eps)), logdet);
      }),
    sample(params: Params, n: number, options: FlowSampleOptions): tf.Tensor4D {
      const { rng, temperature = 1 } = options;
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`sample: n must be an integer >= 1, got ${n}`);
      }
      if (!(temperature >= 0)) {
        throw new RangeError(`sample: temperature must be >= 0, got ${temperature}`);
      }
      return tf.tidy(() => {
        const latents = latentShapes.map((ls) => {
          const data = rng.fillNormal(new Float32Array(n * ls[0] * ls[1] * ls[2]));
          for (let i = 0; i < data.length; i++) data[i] *= temperature;
          return tf.tensor4d(data, [n, ...ls]);
        });
        return decode(params, latents);
      });
    },
  };
}
