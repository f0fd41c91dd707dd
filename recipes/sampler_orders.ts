/**
 * Convergence orders of the deterministic samplers on Gaussian data, where the exact
 * probability-flow ODE solution is closed-form (DESIGN.md "Checking numerics"): data
 * N(mu, diag(s^2)) with mu = (1, -2), s = (0.5, 2), the exact denoiser, 16 points from sigma = 80,
 * Karras sigmas (EDM eq. 5) with N = 8, 16, ..., 256 steps (DPM-Solver-fast: 9, 18, ..., 288
 * evaluations between sigma 80 and 0.002). Prints the max error against the exact solution and
 * the error ratio per doubling of N (about 2^order).
 *
 * ```sh
 * deno run --allow-read --allow-env --allow-ffi recipes/sampler_orders.ts
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";
import { type KSamplerName, runKSampler } from "../samplers/k_samplers.ts";

await selectBackend({ backend: "cpu", log: () => {} });
const MU = [1, -2], STD = [0.5, 2];
const denoiser = idealGaussianDenoiser({ mean: MU, std: STD });
const exact = (x0: ArrayLike<number>, s0: number, s: number) =>
  Float64Array.from(x0, (v, k) => {
    const j = k % 2, s2 = STD[j] ** 2;
    return MU[j] + (v - MU[j]) * Math.sqrt(s2 + s * s) / Math.sqrt(s2 + s0 * s0);
  });
/** The deterministic members (eta = 0 where the sampler has noise). */
const RUNS: [string, KSamplerName, Record<string, unknown>][] = [
  ["euler-ancestral eta=0", "euler-ancestral", { eta: 0 }],
  ["dpm2", "dpm2", {}],
  ["lms order 4", "lms", {}],
  ["dpmpp-2s-ancestral eta=0", "dpmpp-2s-ancestral", { eta: 0 }],
  ["dpmpp-sde eta=0", "dpmpp-sde", { eta: 0 }],
  ["dpmpp-2m", "dpmpp-2m", {}],
  ["dpmpp-2m-sde eta=0", "dpmpp-2m-sde", { eta: 0 }],
  ["dpmpp-2m-sde heun eta=0", "dpmpp-2m-sde", { eta: 0, solverType: "heun" }],
  ["dpmpp-3m-sde eta=0", "dpmpp-3m-sde", { eta: 0 }],
  ["dpm-fast", "dpm-fast", {}],
];
console.log(`${"sampler".padEnd(26)} max error at N = 8, 16, ..., 256 | ratios`);
for (const [label, name, extra] of RUNS) {
  const errs: number[] = [];
  for (const n of [8, 16, 32, 64, 128, 256]) {
    // dpm-fast spends N evaluations between sigmas[0] and the last positive sigma.
    const sigmas = karrasSigmas({ numSteps: name === "dpm-fast" ? (9 * n) / 8 : n });
    const x0 = tf.tidy(() => tf.mul(rngNoise(new Rng(1)).randn([16, 2]), sigmas[0]));
    const { x } = await runKSampler(name, denoiser, x0, { sigmas, ...extra });
    const end = name === "dpm-fast" ? sigmas[sigmas.length - 2] : 0;
    const want = exact(await x0.data(), sigmas[0], end), got = await x.data();
    errs.push(Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]))));
    tf.dispose([x, x0]);
  }
  const ratios = errs.slice(1).map((e, i) => (errs[i] / e).toFixed(2));
  console.log(
    `${label.padEnd(26)} ${errs.map((e) => e.toExponential(2)).join(" ")} | ${ratios.join(" ")}`,
  );
}
