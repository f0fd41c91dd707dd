/**
 * Shared input checks of the evaluation metrics that take feature sets as row-major host arrays.
 *
 * @module
 */

/**
 * Validates a row-major [N, d] feature set and returns N.
 *
 * @param features The feature values.
 * @param d Width of each row.
 * @param what Name used in error messages, e.g. "real features".
 * @returns The number of rows N.
 * @throws {RangeError} For an invalid d, a length that is not a multiple of d, or a non-finite
 *   value.
 * @example Three 2-d features
 * ```ts
 * import { checkFeatureSet } from "./_features.ts";
 * console.assert(checkFeatureSet(new Float32Array(6), 2, "features") === 3);
 * ```
 */
export function checkFeatureSet(
  features: Float32Array | Float64Array,
  d: number,
  what: string,
): number {
  if (!(features instanceof Float32Array || features instanceof Float64Array)) {
    throw new TypeError(`${what} must be a Float32Array or Float64Array`);
  }
  if (!Number.isInteger(d) || d < 1) {
    throw new RangeError(`feature dim must be a positive integer, got ${d}`);
  }
  if (features.length % d !== 0) {
    throw new RangeError(
      `${what} have ${features.length} values, not a multiple of dim ${d}; pass [N, ${d}] rows`,
    );
  }
  for (let i = 0; i < features.length; i++) {
    if (!Number.isFinite(features[i])) {
      throw new RangeError(
        `${what}: row ${Math.floor(i / d)} holds ${features[i]} at dimension ${i % d}`,
      );
    }
  }
  return features.length / d;
}
