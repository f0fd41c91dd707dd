/**
 * DiNof (Diffusion with Normalizing flow priors, shared/papers/dinof.txt, Section 3.2 and
 * Figure 3): a score model on a linear SDE for t < T_m (eq. 7), and a normalizing flow whose
 * base N(0, I) it maps to the marginal p_{T_m} of x(T_m) (eq. 8). Sampling draws x(T_m) from the
 * flow in one pass, then runs the reverse SDE (or the probability-flow ODE) from T_m to 0.
 *
 * This module only composes the three parts ({@linkcode DinofModel}: any `Denoiser` on any
 * `LogSnrSchedule` process, any `FlowModel`, and T_m) and holds the small maps between them:
 * - the forward marginal at T_m, `x(T_m) = alpha(T_m) x + sigma(T_m) n` (the schedule's space,
 *   score_sde's `marginal_prob`), which the flow is trained on;
 * - the prior draw `x(T_m) = flow(T * n)`, where `n` has the data's shape and is cut into the
 *   flow's latents in order (`splitLatents`), so image i depends on its own noise only (one seed per image, as
 *   every sampler here), and T is the temperature;
 * - flows over `[H, W, C]`: point data `[D]` is viewed as `[1, 1, D]`.
 *
 * Besides Glow and RealNVP (`flows/presets.ts`) a DiNof flow may be `{ kind: "affine" }`: one
 * ActNorm and the learned top prior, a per-channel Gaussian. It represents the marginal at T_m of
 * Gaussian data exactly (closed-form tests) and is the prior N(0, sigma(T)^2 I) itself when set
 * by {@linkcode setAffineFlow} (the plain score-SDE sampler as a special case).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Params } from "../core/params.ts";
import type { Denoiser } from "../core/types.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { createFlow, type FlowArch } from "../flows/presets.ts";
import { type FlowModel, multiscaleFlow } from "../flows/multiscale.ts";
import { actNorm } from "../flows/actnorm.ts";
import { splitLatents } from "../flows/flow_sampler.ts";

/** The flows a DiNof model can use: a `flows/` architecture, or the per-channel affine flow. */
export type DinofFlowArch = FlowArch | { kind: "affine" };

/** The three parts of a DiNof model. */
export interface DinofModel {
  /** The score model as a denoiser in EDM's unscaled space (any preconditioned network). */
  denoiser: Denoiser;
  /** The forward process (VE, VP, sub-VP: `scoreSdeSchedule`). */
  schedule: LogSnrSchedule;
  /** The flow over x(T_m). */
  flow: FlowModel;
  /** The flow's parameters. */
  flowParams: Params;
  /** The switch time T_m in (0, T]. */
  tm: number;
}

/**
 * Checks and returns the parts of a DiNof model.
 *
 * @param parts Denoiser, schedule, flow, its parameters and T_m.
 * @returns The same parts.
 * @throws {RangeError} For T_m outside (tMin, tMax] of the schedule.
 * @example
 * ```ts ignore
 * const model = dinofModel({ denoiser, schedule: scoreSdeSchedule("vp"), flow, flowParams, tm: 0.6 });
 * ```
 */
export function dinofModel(parts: DinofModel): DinofModel {
  checkTm(parts.schedule, parts.tm);
  return parts;
}

/**
 * Throws unless `tm` lies in (tMin, tMax] of `schedule`.
 *
 * @param schedule The process.
 * @param tm The switch time.
 * @throws {RangeError} Naming the value and the range.
 * @example
 * ```ts ignore
 * checkTm(scoreSdeSchedule("vp"), 0.6);
 * ```
 */
export function checkTm(schedule: LogSnrSchedule, tm: number): void {
  if (!(tm > schedule.tMin && tm <= schedule.tMax)) {
    throw new RangeError(
      `T_m = ${tm} must lie in (${schedule.tMin}, ${schedule.tMax}] of process "${schedule.name}"`,
    );
  }
}

/**
 * The flow's example shape for data of shape `shape`: images unchanged, points `[D]` as `[1, 1, D]`.
 *
 * @param shape Shape of one example.
 * @returns `[H, W, C]`.
 * @throws {RangeError} For shapes of another rank.
 * @example
 * ```ts
 * import { flowShapeFor } from "./dinof.ts";
 * const s = flowShapeFor([2]); // [1, 1, 2]
 * ```
 */
export function flowShapeFor(shape: readonly number[]): [number, number, number] {
  if (shape.length === 1) return [1, 1, shape[0]];
  if (shape.length === 3) return [shape[0], shape[1], shape[2]];
  throw new RangeError(`DiNof flows take images [H, W, C] or points [D], got shape [${shape}]`);
}

/**
 * Builds a DiNof flow for data of shape `shape`.
 *
 * @param arch A `flows/` architecture or `{ kind: "affine" }`.
 * @param shape Shape of one example (images or points).
 * @returns The flow over {@linkcode flowShapeFor}`(shape)`.
 * @example
 * ```ts
 * import { createDinofFlow } from "./dinof.ts";
 * const flow = createDinofFlow({ kind: "affine" }, [2]);
 * ```
 */
export function createDinofFlow(arch: DinofFlowArch, shape: readonly number[]): FlowModel {
  const s = flowShapeFor(shape);
  if (arch.kind === "affine") {
    return multiscaleFlow({
      shape: s,
      levels: 1,
      level: (_i, ls) => actNorm({ name: "level0.actnorm", shape: ls }),
    });
  }
  return createFlow(arch, s);
}

/**
 * Sets an affine flow ({@linkcode createDinofFlow} `{ kind: "affine" }`) to the per-channel
 * Gaussian N(mean, std^2): ActNorm marked initialised with identity values, and the top prior's
 * mean and log-scale.
 *
 * @param params The affine flow's parameters; assigned in place.
 * @param gaussian Per-channel (or one shared) mean and standard deviation.
 * @throws {RangeError} For a non-positive std.
 * @example The plain score-SDE prior N(0, sigma(T)^2 I)
 * ```ts ignore
 * setAffineFlow(params, { mean: 0, std: sdePriorStd(schedule) });
 * ```
 */
export function setAffineFlow(
  params: Params,
  gaussian: { mean: number | ArrayLike<number>; std: number | ArrayLike<number> },
): void {
  const c = params["top.mean"].shape[0];
  const expand = (v: number | ArrayLike<number>) =>
    Float32Array.from({ length: c }, (_, i) => typeof v === "number" ? v : v[i]);
  const mean = expand(gaussian.mean), std = expand(gaussian.std);
  std.forEach((s) => {
    if (!(s > 0)) throw new RangeError(`setAffineFlow: std must be > 0, got ${s}`);
  });
  tf.tidy(() => {
    params["level0.actnorm.bias"].assign(tf.zeros([c]));
    params["level0.actnorm.logs"].assign(tf.zeros([c]));
    params["level0.actnorm.initialized"].assign(tf.scalar(1));
    params["top.mean"].assign(tf.tensor1d(mean));
    params["top.logs"].assign(tf.tensor1d(std.map(Math.log)));
  });
}

/**
 * The forward marginal draw `x(T_m) = alpha(T_m) x + sigma(T_m) n` (score_sde `marginal_prob`).
 *
 * @param schedule The process.
 * @param x Clean data [N, ...]; not disposed.
 * @param options T_m and the standard normal noise shaped like x (not disposed).
 * @returns x(T_m), owned by the caller.
 * @example
 * ```ts ignore
 * const xTm = marginalAtTm(schedule, x, { tm: 0.6, noise: rngNoise(rng).randn(x.shape) });
 * ```
 */
export function marginalAtTm(
  schedule: LogSnrSchedule,
  x: tf.Tensor,
  options: { tm: number; noise: tf.Tensor },
): tf.Tensor {
  const { tm, noise } = options;
  return tf.tidy(() => tf.add(tf.mul(x, schedule.alpha(tm)), tf.mul(noise, schedule.sigma(tm))));
}

/**
 * The DiNof prior draw: x(T_m) = flow(n) with the latents cut from `n` (scale `n` by the
 * temperature first), reshaped to the data's shape.
 *
 * @param model The flow and its parameters.
 * @param n Latent draws shaped like the data [N, ...shape]; not disposed.
 * @returns x(T_m) [N, ...shape] in the schedule's space, owned by the caller.
 * @example
 * ```ts ignore
 * const zTm = dinofPrior(model, tf.mul(perImageNoise(seeds).randn([4, 2]), 0.8));
 * ```
 */
export function dinofPrior(
  model: Pick<DinofModel, "flow" | "flowParams">,
  n: tf.Tensor,
): tf.Tensor {
  const latents = splitLatents(model.flow, n);
  try {
    return tf.tidy(() => tf.reshape(model.flow.decode(model.flowParams, latents), n.shape));
  } finally {
    tf.dispose(latents);
  }
}

/**
 * log p_flow(x(T_m)) per example in nats, for data of any DiNof shape.
 *
 * @param model The flow and its parameters.
 * @param xTm Points at T_m [N, ...shape]; not disposed.
 * @returns [N], owned by the caller; differentiable in the flow's parameters.
 * @example
 * ```ts ignore
 * const nll = tf.neg(tf.mean(flowLogProb(model, xTm)));
 * ```
 */
export function flowLogProb(
  model: Pick<DinofModel, "flow" | "flowParams">,
  xTm: tf.Tensor,
): tf.Tensor1D {
  return tf.tidy(() =>
    model.flow.logProb(
      model.flowParams,
      tf.reshape(xTm, [xTm.shape[0], ...model.flow.shape]) as tf.Tensor4D,
    )
  );
}
