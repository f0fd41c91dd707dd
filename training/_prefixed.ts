/**
 * Views of a flat parameter map under name prefixes: one map holds several networks (DiNof's
 * `score.*` and `flow.*`), so one optimizer, one EMA and one checkpoint cover them all, while
 * each network's pure functions see their own names. The variables are shared, never copied.
 *
 * @module
 */
import type { Params } from "../core/params.ts";

/**
 * `params` with every name prefixed.
 *
 * @example
 * ```ts ignore
 * const all = { ...prefixParams("score.", scoreParams), ...prefixParams("flow.", flowParams) };
 * ```
 */
export function prefixParams(prefix: string, params: Params): Params {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [prefix + k, v]));
}

/**
 * The entries of `params` under `prefix`, with the prefix removed.
 *
 * @example
 * ```ts ignore
 * const flowParams = unprefixParams("flow.", all);
 * ```
 */
export function unprefixParams(prefix: string, params: Params): Params {
  return Object.fromEntries(
    Object.entries(params).filter(([k]) => k.startsWith(prefix)).map((
      [k, v],
    ) => [k.slice(prefix.length), v]),
  );
}
