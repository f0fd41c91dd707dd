/**
 * A Neural Diffusion Model as two networks in one parameter map (NDM paper, Section 4.1: the
 * same architecture for the generative process and for F_phi, separate weights): the noise
 * predictor eps_theta under `denoiser.` and, for a learned transformation, NN_phi of
 * `F_phi(x, t) = x + t NN_phi(x, t)` under `transform.` (`models/ndm_transform.ts`). One map keeps
 * the shared training loop (Adam, EMA, checkpoints) unchanged.
 *
 * @module
 */
import type { Rng } from "../core/rng.ts";
import type { Params } from "../core/params.ts";
import { buildModel, type ModelSpec } from "./build_network.ts";
import { ddpmEpsNetwork, type EpsPredictor } from "./ddpm_param.ts";
import { identityTransform, learnedTransform, type NdmTransform } from "./ndm_transform.ts";

/** The two networks of an NDM; `transform: null` is the identity F (DDPM). */
export interface NdmModelSpec {
  /** eps_theta's network. */
  denoiser: ModelSpec;
  /** NN_phi's network, or null for the identity transformation. */
  transform: ModelSpec | null;
}

/** Prefixes of the two networks' parameters in the shared map. */
export const NDM_PREFIXES = { denoiser: "denoiser.", transform: "transform." } as const;

/**
 * The parameters under `prefix`, with the prefix removed (the same variables, not copies).
 *
 * @param params The shared map.
 * @param prefix E.g. `"transform."`.
 * @returns A view of that network's parameters.
 * @example
 * ```ts ignore
 * const phi = subParams(params, NDM_PREFIXES.transform);
 * ```
 */
export function subParams(params: Params, prefix: string): Params {
  const out: Params = {};
  for (const [name, v] of Object.entries(params)) {
    if (name.startsWith(prefix)) out[name.slice(prefix.length)] = v;
  }
  return out;
}

/**
 * Fresh parameters of both networks, drawn from `rng` (the denoiser first).
 *
 * @param spec The two networks.
 * @param rng The generator.
 * @returns One map with `denoiser.` and `transform.` names.
 * @example
 * ```ts ignore
 * const params = initNdmParams(spec, new Rng(0));
 * ```
 */
export function initNdmParams(spec: NdmModelSpec, rng: Rng): Params {
  const out: Params = {};
  const add = (prefix: string, p: Params) => {
    for (const [name, v] of Object.entries(p)) out[prefix + name] = v;
  };
  add(NDM_PREFIXES.denoiser, buildModel(spec.denoiser).init(rng));
  if (spec.transform) add(NDM_PREFIXES.transform, buildModel(spec.transform).init(rng));
  return out;
}

/**
 * eps_theta and F for a parameter map (the raw weights or the EMA ones).
 *
 * @param spec The two networks.
 * @param params The shared map.
 * @returns The noise predictor (DDPM's `c_noise = t - 1` convention) and the transformation.
 * @example
 * ```ts ignore
 * const { eps, transform } = ndmNetworks(spec, ema);
 * ```
 */
export function ndmNetworks(
  spec: NdmModelSpec,
  params: Params,
): { eps: EpsPredictor; transform: NdmTransform } {
  const eps = ddpmEpsNetwork(
    buildModel(spec.denoiser).network(subParams(params, NDM_PREFIXES.denoiser)),
  );
  const transform = spec.transform
    ? learnedTransform(
      buildModel(spec.transform).network(subParams(params, NDM_PREFIXES.transform)),
    )
    : identityTransform();
  return { eps, transform };
}
