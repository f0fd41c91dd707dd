/**
 * Permission queries that never prompt: what the native-kernel loaders (core/blas, core/native)
 * may use without asking, so that a task run without a permission goes on without the feature.
 *
 * @module
 */

/**
 * Whether a permission is granted, by query only (a missing permission must not prompt).
 *
 * @returns True when granted; false when denied, promptable or not queryable.
 * @example Check FFI access
 * ```ts
 * import { granted } from "./_permissions.ts";
 * const ffi = granted({ name: "ffi" });
 * ```
 */
export function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * An environment variable when env access to it is granted, else undefined.
 *
 * @example Read a switch
 * ```ts
 * import { readEnv } from "./_permissions.ts";
 * const off = readEnv("DIFFUSE_NATIVE") === "0";
 * ```
 */
export function readEnv(name: string): string | undefined {
  return granted({ name: "env", variable: name }) ? Deno.env.get(name) : undefined;
}
