/**
 * How the OpenMP threads of oneDNN and core/native wait between parallel regions, chosen once,
 * before the first library that loads libgomp (libgomp reads its variables when it loads).
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). libgomp's threads spin
 * for a while after each parallel region by default (300,000 iterations, `OMP_WAIT_POLICY=ACTIVE`:
 * without end). On 2 cores that starves OpenBLAS's own threads, which then run the convolutions
 * (a unet-bench sampling step took 1679 ms with ACTIVE against 1152 with PASSIVE; with oneDNN
 * off, a train step 1720 ms spinning 30,000 iterations against 1510 passive). With oneDNN on,
 * OpenBLAS is idle and every kernel but the engine's own bookkeeping runs on libgomp's threads;
 * there a short spin lets the worker catch the next kernel without a futex wake-up: a unet-bench
 * train step took 526 ms spinning 30,000 iterations against 591 ms passive (sampling 562 / 649),
 * measured in turn on a 2-core Xeon (`bench/profile_step.ts`). A value the user set for either
 * variable is kept.
 *
 * @module
 */
import { granted } from "./_permissions.ts";

/** Spin iterations of a waiting OpenMP thread when oneDNN runs the heavy kernels. */
export const OPENMP_SPIN_COUNT = 30000;

let chosen = false;
let setHere: string | undefined;

/**
 * Sets `GOMP_SPINCOUNT` (oneDNN) or `OMP_WAIT_POLICY=PASSIVE` (OpenMP kernels beside OpenBLAS's
 * threads) unless the user set one of them; only the first call, before libgomp loads, counts.
 *
 * @param withDnnl Whether oneDNN is about to load (the caller is its loader).
 * @returns A function that takes the choice back, for a library that then failed to open (so
 * that libgomp was not loaded with it).
 * @example Before opening oneDNN
 * ```ts
 * import { chooseOpenMpWait } from "./_openmp.ts";
 * const undo = chooseOpenMpWait(true);
 * undo(); // the library was not there
 * ```
 */
export function chooseOpenMpWait(withDnnl: boolean): () => void {
  if (chosen) return () => {};
  chosen = true;
  const names = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];
  const [name, value] = withDnnl
    ? ["GOMP_SPINCOUNT", String(OPENMP_SPIN_COUNT)]
    : ["OMP_WAIT_POLICY", "PASSIVE"];
  try {
    if (!names.every((variable) => granted({ name: "env", variable }))) return () => {};
    if (names.some((n) => Deno.env.get(n) !== undefined)) return () => {};
    Deno.env.set(name, value);
    setHere = name;
  } catch {
    return () => {}; // no env access: leave OpenMP's defaults
  }
  return () => {
    chosen = false;
    setHere = undefined;
    Deno.env.delete(name);
  };
}

/**
 * The OpenMP variable this process set for itself, if any: a child process that is not ours
 * (PyTorch in the benchmark) should run without it, with its own defaults.
 *
 * @example A child's environment without it
 * ```ts
 * import { openMpVariableSetHere } from "./_openmp.ts";
 * const env = Deno.env.toObject();
 * const name = openMpVariableSetHere();
 * if (name !== undefined) delete env[name];
 * ```
 */
export function openMpVariableSetHere(): string | undefined {
  return setHere;
}
