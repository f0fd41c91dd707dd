/**
 * The description of a flow a checkpoint stores, enough to rebuild the model for sampling and
 * evaluation: the architecture, the data shape, how data enter the flow and the quantisation.
 *
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { createFlow, type FlowArch, flowInputFor } from "../flows/presets.ts";
import type { FlowInput } from "../flows/image_likelihood.ts";
import type { FlowModel } from "../flows/multiscale.ts";

/** A flow's full description. */
export interface FlowModelSpec {
  /** The architecture. */
  arch: FlowArch;
  /** Flow tensor shape `[H, W, C]` (2-D points `[D]` are `[1, 1, D]`). */
  shape: [number, number, number];
  /** How data enter the flow: the image maps, or `"none"` for continuous point sets. */
  input: FlowInput | "none";
  /** Quantisation levels (images). */
  nBins: number;
}

/**
 * The spec of `arch` for a dataset: images use the architecture's input map and dequantization,
 * point sets are modelled as they are.
 *
 * @param arch The architecture.
 * @param dataset The data (only its shape is read).
 * @param nBins Quantisation levels.
 * @returns The spec.
 * @example
 * ```ts ignore
 * const spec = flowSpecFor(FLOW_ARCHS["glow-mnist"], dataset, 256);
 * ```
 */
export function flowSpecFor(
  arch: FlowArch,
  dataset: Pick<Dataset, "shape">,
  nBins: number,
): FlowModelSpec {
  const s = dataset.shape;
  return s.length === 1
    ? { arch, shape: [1, 1, s[0]], input: "none", nBins }
    : { arch, shape: [s[0], s[1], s[2]], input: flowInputFor(arch), nBins };
}

/**
 * Builds the model of a spec.
 *
 * @param spec The spec.
 * @returns The flow.
 * @throws {RangeError} When the shape does not fit the architecture.
 * @example
 * ```ts ignore
 * const model = buildFlow(state.model);
 * ```
 */
export function buildFlow(spec: FlowModelSpec): FlowModel {
  return createFlow(spec.arch, spec.shape);
}
