/**
 * The shortest way to understand the toolkit: load a checkpoint written by
 * `deno task train:edm`, then run EDM's deterministic sampler (EDM Algorithm 1, Heun's 2nd order
 * method with sigma(t) = t, s(t) = 1) written out in full, and save a PNG grid.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/minimal_sampler.ts \
 *   --checkpoint runs/edm-mnist/checkpoint.safetensors --out minimal.png
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise } from "../core/noise.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { writeImageGrid } from "../data/png.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { BACKEND_FLAG, EDM_CHECKPOINT_FLAG } from "../tasks/_flags.ts";
import { runTask } from "../tasks/_main.ts";

const FLAGS = {
  checkpoint: EDM_CHECKPOINT_FLAG,
  out: { type: "string", default: "minimal.png", path: "file", help: "grid PNG" },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "recipes/minimal_sampler.ts",
  usage:
    "deno run --allow-read --allow-write --allow-env --allow-ffi recipes/minimal_sampler.ts [flags]",
  summary: "EDM's deterministic sampler (Algorithm 1) written out in full: 16 images, 18 steps.",
  examples: ["deno run -A recipes/minimal_sampler.ts --out minimal.png"],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const { checkpoint, out, backend } = parseFlags(args, FLAGS, { task: "minimal_sampler" });
  await selectBackend({ backend });
  const { denoiser: D, shape, dispose } = await loadDenoiser(checkpoint!);

  // EDM eq. 5: N noise levels from 80 down to 0.002, spaced uniformly in sigma^(1/7), then 0.
  const sigmas = karrasSigmas({ numSteps: 18, sigmaMin: 0.002, sigmaMax: 80, rho: 7 });
  const n = 16;
  const sigmaOf = (s: number) => tf.fill([n], s) as tf.Tensor1D;

  // x_0 ~ N(0, sigma_0^2 I), one seed per image.
  let x = tf.tidy(() =>
    tf.mul(perImageNoise([...Array(n).keys()]).randn([n, ...shape]), sigmas[0])
  );
  for (let i = 0; i < sigmas.length - 1; i++) {
    const [t, tNext] = [sigmas[i], sigmas[i + 1]];
    const next = tf.tidy(() => {
      const d = tf.div(tf.sub(x, D(x, sigmaOf(t))), t); // dx/dt = (x - D(x; t)) / t
      const xEuler = tf.add(x, tf.mul(d, tNext - t)); // Euler step to t_{i+1}
      if (tNext === 0) return xEuler; // last step: no 2nd order correction
      const dNext = tf.div(tf.sub(xEuler, D(xEuler, sigmaOf(tNext))), tNext);
      return tf.add(x, tf.mul(tf.add(d, dNext), 0.5 * (tNext - t))); // Heun's trapezoid rule
    });
    x.dispose();
    x = next;
  }
  await writeImageGrid(out!, x, { columns: 4 });
  console.log(
    `wrote ${out}: ${n} samples, ${2 * (sigmas.length - 1) - 1} network evaluations each`,
  );
  x.dispose();
  dispose();
});
