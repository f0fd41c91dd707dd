/**
 * `deno task setup:native`: builds the fused kernels of core/native/kernels.c (GroupNorm + SiLU,
 * residual sums) with the system C compiler into the per-user cache, or says why it cannot.
 * Tasks build them on first use anyway; this is for images and offline machines
 * (examples/k8s/Containerfile) that should not compile at run time. Thin: flags in,
 * `buildNativeKernels` does the work.
 *
 * @module
 */
import { UserError } from "../core/errors.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { buildNativeKernels } from "../core/native/build.ts";
import { runTask } from "./_main.ts";

const FLAGS = {
  cache: {
    type: "string",
    help:
      "cache folder (default $DIFFUSE_NATIVE_CACHE, $XDG_CACHE_HOME/diffuse or ~/.cache/diffuse)",
  },
  compiler: { type: "string", default: "cc", help: "C compiler command" },
} as const;

const HELP = {
  task: "setup:native",
  summary: "Builds the fused native kernels (core/native/kernels.c) into the cache, once.",
  examples: ["deno task setup:native", "deno task setup:native --cache /opt/diffuse-native"],
};

await runTask((args) => {
  if (wantsHelp(args)) return Promise.resolve(console.log(formatHelp(FLAGS, HELP)));
  const flags = parseFlags(args, FLAGS, { task: "setup:native" });
  const r = buildNativeKernels({ cacheDir: flags.cache, compiler: flags.compiler });
  if (!r.ok) throw new UserError(`fused kernels not built: ${r.why}`);
  console.log(`${r.built ? "built" : "already built"}: ${r.path}`);
  return Promise.resolve();
});
