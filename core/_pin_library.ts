/**
 * Keeps a native library loaded until the process ends (glibc `dlopen` with `RTLD_NODELETE`).
 *
 * Not tied to a paper: engine work. Deno unloads FFI libraries when the process tears down, and
 * unloading a library whose worker threads still run (OpenBLAS's, oneDNN's OpenMP pool) crashed
 * every run at exit (measured: exit code 139 with Debian's openblas-openmp after a threaded
 * product; 0 once pinned).
 *
 * @module
 */

const RTLD_LAZY = 0x1, RTLD_NODELETE = 0x1000;

/**
 * Pins an already opened library, best effort: a no-op off Linux or without glibc.
 *
 * @param path The path the library was opened from.
 * @example Pin OpenBLAS after opening it
 * ```ts ignore
 * const lib = Deno.dlopen("libopenblas.so.0", symbols);
 * pinLibrary("libopenblas.so.0");
 * ```
 */
export function pinLibrary(path: string): void {
  if (Deno.build.os !== "linux") return;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    });
    libc.symbols.dlopen(new TextEncoder().encode(`${path}\0`), RTLD_LAZY | RTLD_NODELETE);
    libc.close();
  } catch {
    // not glibc: nothing to pin with
  }
}
