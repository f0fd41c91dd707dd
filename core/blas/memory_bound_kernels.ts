/**
 * Memory-bound tfjs kernels on oneDNN's threads: Add, Sub and Multiply on its binary primitive
 * (`core/dnnl/binary.ts`) and Concat on its concat primitive (`core/dnnl/concat.ts`), for
 * float32 tensors of at least {@linkcode MIN_NATIVE_ELEMENTS} outputs. Everything else (int32,
 * small tensors, both operands of a binary op broadcast, `b - a` with `a` broadcast) returns
 * `null`, and the caller runs the backend's own kernel.
 *
 * Nearest-neighbour resizing stays off oneDNN: 2.6.3's `jit:avx512_core_bf16` resampling
 * crashes (SIGSEGV) on a [32, 8, 8, 64] NHWC 2x upsampling, reproduced from C.
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"): on tfjs-backend-wasm
 * these kernels ran on one thread while the second core idled (bench/profile_step.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { BinaryOp, DnnlBinary } from "../dnnl/binary.ts";
import type { DnnlConcat } from "../dnnl/concat.ts";
import type { TensorViews } from "./tensor_views.ts";

/**
 * Below this many output elements the backend's single-threaded kernel wins: waking oneDNN's
 * second thread and the FFI call cost more than the work they would share.
 */
export const MIN_NATIVE_ELEMENTS = 16384;

/** The tfjs kernel names served, and their operations. */
export const BINARY_KERNELS: Readonly<Record<string, BinaryOp>> = {
  Add: "add",
  Sub: "sub",
  Multiply: "mul",
};

type Args = Parameters<tf.KernelFunc>[0];

/**
 * One of {@linkcode BINARY_KERNELS} on oneDNN, or `null` for the fallback.
 *
 * @param binary oneDNN's binary operations.
 * @param op The operation of the kernel being run.
 * @param args The kernel's arguments (inputs `a`, `b`).
 * @param views Tensor views of the kernel's backend.
 * @returns The output, or `null` when these inputs go to the backend's own kernel.
 * @example
 * ```ts ignore
 * const out = binaryKernel(binary, "add", args, tensorViews(args.backend, "wasm"));
 * ```
 */
export function binaryKernel(
  binary: DnnlBinary,
  op: BinaryOp,
  args: Args,
  views: TensorViews,
): tf.TensorInfo | null {
  const { a, b } = args.inputs as Record<"a" | "b", tf.TensorInfo>;
  if (a.dtype !== "float32" || b.dtype !== "float32") return null;
  const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const n = shape.reduce((p, d) => p * d, 1);
  if (n < MIN_NATIVE_ELEMENTS) return null;
  const pad = (s: number[]) => [...new Array(shape.length - s.length).fill(1), ...s];
  const [pa, pb] = [pad(a.shape), pad(b.shape)];
  const full = (s: number[]) => s.every((d, i) => d === shape[i]);
  // oneDNN 2.6 broadcasts only its second source; addition and multiplication commute.
  const swap = !full(pa) && op !== "sub";
  if (!full(swap ? pb : pa)) return null;
  const out = views.alloc(shape);
  const [first, second] = swap ? [b, a] : [a, b];
  const ok = binary.run(
    op,
    shape,
    swap ? pa : pb,
    views.view(first),
    views.view(second),
    views.view(out),
  );
  if (ok) return out;
  views.free(out);
  return null;
}

/**
 * Concat of float32 tensors on oneDNN, or `null` for the fallback.
 *
 * @param concat oneDNN's concatenation.
 * @param args The kernel's arguments (a list of inputs, attribute `axis`).
 * @param views Tensor views of the kernel's backend.
 * @returns The output, or `null` when these inputs go to the backend's own kernel.
 * @example
 * ```ts ignore
 * const out = concatKernel(concat, args, tensorViews(args.backend, "wasm"));
 * ```
 */
export function concatKernel(
  concat: DnnlConcat,
  args: Args,
  views: TensorViews,
): tf.TensorInfo | null {
  const all = args.inputs as unknown as tf.TensorInfo[];
  const inputs = all.filter((t) => t.shape.reduce((p, d) => p * d, 1) > 0);
  if (inputs.length < 2 || inputs.some((t) => t.dtype !== "float32")) return null;
  const rank = inputs[0].shape.length;
  const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, inputs[0].shape)[0];
  const shape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
  const n = shape.reduce((p, d) => p * d, 1);
  if (n < MIN_NATIVE_ELEMENTS || inputs.some((t) => t.shape.length !== rank)) return null;
  const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const inners = inputs.map((t) => t.shape.slice(axis).reduce((p, d) => p * d, 1));
  const out = views.alloc(shape);
  if (concat.run(outer, inners, inputs.map((t) => views.view(t)), views.view(out))) return out;
  views.free(out);
  return null;
}
