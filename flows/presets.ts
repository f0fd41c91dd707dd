/**
 * The flow architectures by name: Glow (Kingma & Dhariwal 2018) and RealNVP (Dinh et al. 2017)
 * configurations in one typed table, and {@linkcode createFlow} to build any of them.
 *
 * - `glow-dinof`: L = 3, K = 16, hidden 256 (the DiNof prior, shared/papers/dinof.txt; 32x32
 *   data). The Glow paper's CIFAR-10 model is L = 3, K = 32, hidden 512.
 * - `glow-mnist`: a small Glow for 28x28 MNIST that trains in minutes on 2 CPU cores (L = 2: 28
 *   can be squeezed only twice); the DiNof MNIST prior and the benchmark's model.
 * - `glow-mnist-wide`: K = 8, hidden 128, the `train:glow` default: in 14 minutes on 2 cores it
 *   reaches 1.84 test bits/dim and digit-like samples, where `glow-mnist` reaches 1.92 in 13
 *   minutes with stroke fragments (measured 2026-12-06).
 * - `realnvp-mnist`: a small RealNVP for MNIST (L = 3) with the logit input.
 * - `glow-tiny`: for tests and the benchmark.
 * - `glow-points`: 8 steps without squeeze for 2-D point sets, seen as `[1, 1, 2]` images.
 *
 * @module
 */
import { createGlow, type GlowConfig } from "./glow.ts";
import { createRealNvp, type RealNvpConfig } from "./realnvp.ts";
import type { FlowModel } from "./multiscale.ts";
import type { FlowInput } from "./image_likelihood.ts";

/** A flow architecture: its kind and that kind's config. */
export type FlowArch = ({ kind: "glow" } & GlowConfig) | ({ kind: "realnvp" } & RealNvpConfig);

/** Names of {@linkcode FLOW_ARCHS}. */
export type FlowArchName =
  | "glow-dinof"
  | "glow-mnist"
  | "glow-mnist-wide"
  | "realnvp-mnist"
  | "glow-tiny"
  | "glow-points";

/** Named architectures. */
export const FLOW_ARCHS: Readonly<Record<FlowArchName, FlowArch>> = {
  "glow-dinof": { kind: "glow", levels: 3, steps: 16, hidden: 256 },
  "glow-mnist": { kind: "glow", levels: 2, steps: 4, hidden: 64 },
  "glow-mnist-wide": { kind: "glow", levels: 2, steps: 8, hidden: 128 },
  "realnvp-mnist": { kind: "realnvp", levels: 3, hidden: 32 },
  "glow-tiny": { kind: "glow", levels: 2, steps: 2, hidden: 16 },
  "glow-points": { kind: "glow", levels: 1, steps: 8, hidden: 64, squeeze: false },
};

/**
 * Builds the flow of an architecture for `[H, W, C]` data.
 *
 * @param arch The architecture (e.g. `FLOW_ARCHS["glow-mnist"]`).
 * @param shape Shape of one example.
 * @returns The model.
 * @example
 * ```ts
 * import { createFlow, FLOW_ARCHS } from "./presets.ts";
 * const glow = createFlow(FLOW_ARCHS["glow-tiny"], [8, 8, 1]);
 * ```
 */
export function createFlow(arch: FlowArch, shape: [number, number, number]): FlowModel {
  return arch.kind === "glow" ? createGlow(arch, shape) : createRealNvp(arch, shape);
}

/**
 * The image input map an architecture uses: Glow `y - 0.5`, RealNVP the logit.
 *
 * @param arch The architecture.
 * @returns `"center"` or `"logit"`.
 * @example
 * ```ts
 * import { FLOW_ARCHS, flowInputFor } from "./presets.ts";
 * const input = flowInputFor(FLOW_ARCHS["realnvp-mnist"]); // "logit"
 * ```
 */
export function flowInputFor(arch: FlowArch): FlowInput {
  return arch.kind === "glow" ? "center" : "logit";
}
