import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise } from "../core/noise.ts";
import { readPng } from "../data/png.ts";
import { ddpmDenoiser, type EpsPredictor } from "../models/ddpm_param.ts";
import { idealGaussianDenoiser, idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import {
  ddpmProcess,
  ddpmSigmas,
  respaceDdpm,
  sigmaOfStep,
  spaceTimesteps,
} from "../schedules/ddpm.ts";
import { ddimEncode, sampleDdim } from "../samplers/ddim.ts";
import { sampleDdpmAncestral } from "../samplers/ddpm_ancestral.ts";
import { sampleHeun } from "../samplers/heun.ts";
import type { StepRecord } from "../samplers/types.ts";
import { ddpmInterpolate } from "../eval/ddpm_interpolate.ts";
import { progressiveGeneration, writeProgressiveStrip } from "../eval/ddpm_progressive.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const FULL = ddpmProcess();
const respaced = (K: number) => respaceDdpm(FULL, spaceTimesteps(FULL.T, { numSteps: K }));

/** Three 8-pixel points in [-1, 1]. */
const POINTS = tf.keep(tf.tensor2d([
  [-0.8, 0.4, 0.1, 0.9, -0.3, 0.6, -1, 0.2],
  [0.5, -0.5, 0.7, -0.9, 0.8, -0.1, 0.3, 1],
  [0.0, 0.9, -0.6, 0.2, -0.7, -0.8, 0.5, -0.4],
]));

/** Distance from each sample to its nearest point. */
function nearestDistances(x: tf.Tensor, points: tf.Tensor): number[] {
  return tf.tidy(() => {
    const d = tf.sum(tf.square(tf.sub(tf.expandDims(x, 1), tf.expandDims(points, 0))), 2);
    return Array.from(tf.sqrt(tf.min(d, 1)).dataSync());
  });
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("sampleDdpmAncestral() with the ideal denoiser of a point set lands on the points", async () => {
  const denoiser = idealPointSetDenoiser(POINTS);
  for (const [process, variance] of [[FULL, "beta"], [respaced(100), "betaTilde"]] as const) {
    const noise = perImageNoise([1, 2, 3, 4, 5, 6]);
    const xT = noise.randn([6, 8]);
    const { x, nfe } = await sampleDdpmAncestral(denoiser, xT, { process, noise, variance });
    assert.equal(nfe, process.T);
    const d = nearestDistances(x, POINTS);
    assert.ok(d.every((v) => v < 1e-4), `${variance}, T=${process.T}: distances ${d}`);
    tf.dispose([x, xT]);
  }
});

Deno.test("one ancestral step is Algorithm 2, line 4, with either variance", async () => {
  // A known eps network: eps(x_t, t) = 0.5 x_t - t / 1000.
  const eps: EpsPredictor = (xt, t) =>
    tf.tidy(() => tf.sub(tf.mul(xt, 0.5), tf.reshape(tf.div(t, 1000), [-1, 1])));
  const denoiser = ddpmDenoiser(eps, FULL);
  const t = 400, beta = FULL.betas[t], alpha = FULL.alphas[t], ab = FULL.alphaBar[t];
  for (const variance of ["beta", "betaTilde"] as const) {
    const sigma2 = variance === "beta" ? beta : FULL.posteriorVariance[t];
    const xt = tf.tensor2d([[0.3, -1.2, 2]]);
    let first: Float32Array | undefined;
    const { x } = await sampleDdpmAncestral(denoiser, xt, {
      process: FULL,
      variance,
      noise: perImageNoise([9]),
      startStep: t,
      onStep: (r) => {
        if (r.i === 0) first = r.x.dataSync() as Float32Array;
      },
    });
    const z = perImageNoise([9]).randn([1, 3]).dataSync();
    [0.3, -1.2, 2].forEach((v, j) => {
      const e = 0.5 * v - t / 1000;
      const expected = (v - (beta / Math.sqrt(1 - ab)) * e) / Math.sqrt(alpha) +
        Math.sqrt(sigma2) * z[j];
      assert.ok(Math.abs((first as Float32Array)[j] - expected) < 1e-5, `${variance} [${j}]`);
    });
    tf.dispose([x, xt]);
  }
});

// Gaussian data N(MU, S^2): the probability-flow ODE is solved exactly by
// x(sigma) = MU + (x(sigma_T) - MU) sqrt(S^2 + sigma^2) / sqrt(S^2 + sigma_T^2), x = x_t / sqrt(alphaBar).
const MU = 0.3, S = 0.5;
const GAUSS = idealGaussianDenoiser({ mean: MU, std: S });

function exactOdeToData(xT: tf.Tensor): tf.Tensor {
  const sigmaT = sigmaOfStep(FULL, FULL.T), abT = FULL.alphaBar[FULL.T];
  return tf.tidy(() =>
    tf.add(tf.mul(tf.sub(tf.div(xT, Math.sqrt(abT)), MU), S / Math.sqrt(S * S + sigmaT ** 2)), MU)
  );
}

Deno.test("sampleDdim() at eta = 0 is deterministic and converges to the exact ODE map as steps grow", async () => {
  const xT = perImageNoise([1, 2, 3, 4]).randn([4, 3]);
  const exact = exactOdeToData(xT);
  const errors: number[] = [];
  for (const K of [10, 100]) {
    const process = respaced(K);
    const a = await sampleDdim(GAUSS, xT, { process });
    const b = await sampleDdim(GAUSS, xT, { process });
    assert.equal(a.nfe, K);
    assert.equal(maxAbsDiff(a.x, b.x), 0, "two runs agree bit for bit");
    errors.push(maxAbsDiff(a.x, exact));
    tf.dispose([a.x, b.x]);
  }
  // First order: ten times the steps, about a tenth of the error (0.27 -> 0.027 here).
  assert.ok(errors[1] < 0.05 && errors[0] / errors[1] > 5, `errors ${errors}`);
  tf.dispose([xT, exact]);
});

Deno.test("ddimEncode() inverts sampleDdim() at eta = 0 up to discretization error", async () => {
  const x0 = tf.tensor2d([[0.1, 0.5, -0.2], [0.9, -0.7, 0.3]]);
  const xT = perImageNoise([5, 6]).randn([2, 3]);
  const errors: number[] = [];
  for (const K of [10, 100]) {
    const process = respaced(K);
    const latent = await ddimEncode(GAUSS, x0, { process });
    assert.equal(latent.nfe, K);
    const back = await sampleDdim(GAUSS, latent.x, { process });
    const sample = await sampleDdim(GAUSS, xT, { process });
    const reencoded = await ddimEncode(GAUSS, sample.x, { process });
    errors.push(maxAbsDiff(back.x, x0));
    if (K === 100) {
      assert.ok(
        maxAbsDiff(back.x, x0) < 0.08,
        `decode(encode(x0)) = x0: ${maxAbsDiff(back.x, x0)}`,
      );
      assert.ok(
        maxAbsDiff(reencoded.x, xT) < 0.2,
        `encode(decode(xT)) = xT: ${maxAbsDiff(reencoded.x, xT)}`,
      );
    }
    tf.dispose([latent.x, back.x, sample.x, reencoded.x]);
  }
  assert.ok(errors[0] / errors[1] > 5, `round-trip errors ${errors}`);
  tf.dispose([x0, xT]);
});

Deno.test("ddimEncode()'s first step is x_1 = sqrt(alphaBar_1) x_0 + sqrt(1 - alphaBar_1) eps(x_0, t_1)", async () => {
  const process = respaced(10);
  const x0 = tf.tensor2d([[0.1, 0.9, -0.7]]);
  const { x } = await ddimEncode(GAUSS, x0, { process, endStep: 1 });
  const ab = process.alphaBar[1], got = x.dataSync();
  [0.1, 0.9, -0.7].forEach((v, j) => {
    // E[eps | x_t = v] at step 1 for N(MU, S^2) data.
    const eps = (Math.sqrt(1 - ab) * (v - Math.sqrt(ab) * MU)) / (ab * S * S + 1 - ab);
    const expected = Math.sqrt(ab) * v + Math.sqrt(1 - ab) * eps;
    assert.ok(Math.abs(got[j] - expected) < 1e-6, `[${j}]: ${got[j]} vs ${expected}`);
  });
  tf.dispose([x0, x]);
});

Deno.test("sampleDdim() at eta = 1 is the ancestral sampler with sigma_t^2 = betaTilde_t", async () => {
  const process = respaced(20);
  const xT = perImageNoise([7, 8]).randn([2, 3]);
  const ddim = await sampleDdim(GAUSS, xT, { process, eta: 1, noise: perImageNoise([1, 2]) });
  const ancestral = await sampleDdpmAncestral(GAUSS, xT, {
    process,
    variance: "betaTilde",
    noise: perImageNoise([1, 2]),
  });
  // Same z at every step; the two update formulas agree (DDIM eq. 16 with sigma = betaTilde).
  assert.ok(maxAbsDiff(ddim.x, ancestral.x) < 1e-4, `${maxAbsDiff(ddim.x, ancestral.x)}`);
  tf.dispose([xT, ddim.x, ancestral.x]);
});

Deno.test("EDM's Heun sampler runs on a DDPM model through ddpmDenoiser()", async () => {
  // The exact eps of Gaussian data as a DDPM eps network, wrapped as an EDM denoiser.
  const eps: EpsPredictor = (xt, t) =>
    tf.tidy(() => {
      const ab = tf.reshape(
        tf.gather(tf.tensor1d(Float32Array.from(FULL.alphaBar)), tf.cast(t, "int32")),
        [-1, 1],
      );
      return tf.div(
        tf.mul(tf.sub(xt, tf.mul(tf.sqrt(ab), MU)), tf.sqrt(tf.sub(1, ab))),
        tf.add(tf.mul(ab, S * S), tf.sub(1, ab)),
      );
    });
  const denoiser = ddpmDenoiser(eps, FULL);
  const sigmas = ddpmSigmas(respaced(50));
  const xT = perImageNoise([1, 2, 3]).randn([3, 2]); // x_T ~ N(0, I) in DDPM space
  const exact = exactOdeToData(xT);
  const start = tf.mul(xT, Math.sqrt(1 + sigmas[0] ** 2)); // x_T / sqrt(alphaBar_T): EDM space
  const heun = await sampleHeun(denoiser, start, { sigmas });
  const ddim = await sampleDdim(denoiser, xT, { process: respaced(50) });
  const heunError = maxAbsDiff(heun.x, exact), ddimError = maxAbsDiff(ddim.x, exact);
  assert.ok(heunError < 0.02, `Heun error ${heunError}`);
  assert.ok(heunError < ddimError, `second order beats DDIM: ${heunError} vs ${ddimError}`);
  tf.dispose([xT, exact, start, heun.x, ddim.x]);
});

Deno.test("the DDPM samplers keep the sampler contract: records, seeds, abort, errors, no leaks", async () => {
  const process = respaced(10);
  const denoiser = idealPointSetDenoiser(POINTS);
  const before = tf.memory().numTensors;
  const records: Omit<StepRecord, "x" | "denoised">[] = [];
  const noise = perImageNoise([3, 4]);
  const xT = noise.randn([2, 8]);
  const { x } = await sampleDdpmAncestral(denoiser, xT, {
    process,
    noise,
    onStep: ({ x: _x, denoised, ...rest }) => {
      assert.deepEqual(denoised.shape, [2, 8]);
      records.push(rest);
    },
  });
  assert.deepEqual(records.map((r) => r.t), Array.from(process.timesteps).slice(1).reverse());
  assert.deepEqual(records.map((r) => r.nfe), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(records[9].tNext, 0);
  assert.equal(records[9].sigmaNext, 0);
  // Per-image seeds: image 1 alone gives the same sample as in the batch.
  const single = perImageNoise([4]);
  const xT1 = single.randn([1, 8]);
  const alone = await sampleDdpmAncestral(denoiser, xT1, { process, noise: single });
  assert.ok(tf.tidy(() => maxAbsDiff(alone.x, tf.slice(x, 1, 1))) < 1e-6);
  tf.dispose([x, alone.x, xT1]);
  const controller = new AbortController();
  controller.abort(new Error("stop"));
  await assert.rejects(
    sampleDdim(denoiser, xT, { process, signal: controller.signal }),
    /stop/,
  );
  await assert.rejects(sampleDdpmAncestral(denoiser, xT, { process }), TypeError);
  await assert.rejects(sampleDdim(denoiser, xT, { process, eta: 0.5 }), TypeError);
  await assert.rejects(sampleDdim(denoiser, xT, { process, eta: -1 }), RangeError);
  await assert.rejects(sampleDdim(denoiser, xT, { process, startStep: 11 }), RangeError);
  xT.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("progressiveGeneration() keeps x0-hat along Algorithm 2 and writes a strip", async () => {
  const process = ddpmProcess({ T: 50 });
  const points = tf.tensor4d(POINTS.dataSync(), [3, 2, 4, 1]);
  const noise = perImageNoise([1, 2]);
  const xT = noise.randn([2, 2, 4, 1]);
  const result = await progressiveGeneration(idealPointSetDenoiser(points), xT, {
    process,
    noise,
    frameSteps: [1, 25, 50, 10],
  });
  assert.deepEqual(result.steps, [50, 25, 10, 1]);
  assert.deepEqual(result.frames.shape, [8, 2, 4, 1]);
  // x0-hat at step 1 is the final sample (mu_theta(x_1, 1), Section 3.3).
  const lastFrames = tf.gather(result.frames, [3, 7]);
  assert.ok(maxAbsDiff(lastFrames, result.x) < 1e-6);
  const dir = await Deno.makeTempDir();
  await writeProgressiveStrip(`${dir}/strip.png`, result);
  const png = await readPng(`${dir}/strip.png`);
  // 2 rows of 2-pixel-high images and 4 columns of 4-pixel-wide ones, 2 pixels of padding.
  assert.deepEqual(png.shape, [2 * 2 + 3 * 2, 4 * 4 + 5 * 2, 1]);
  await Deno.remove(dir, { recursive: true });
  tf.dispose([points, xT, result.x, result.frames, lastFrames]);
});

Deno.test("ddpmInterpolate() decodes mixtures of x_t and x'_t into a grid over steps and lambdas", async () => {
  const process = ddpmProcess({ T: 100 });
  const pair = tf.slice(POINTS, 0, 2);
  const [a, b] = tf.split(pair, 2);
  const before = tf.memory().numTensors;
  const result = await ddpmInterpolate(idealPointSetDenoiser(pair), a, {
    process,
    other: b,
    seed: 3,
    lambdas: [0, 0.5, 1],
    steps: [20, 100],
  });
  assert.equal(result.columns, 5);
  assert.deepEqual(result.grid.shape, [10, 8]);
  assert.equal(result.nfe, 20 + 100); // each row decodes its 3 mixtures as one batch
  const rows = tf.split(result.grid, 2);
  // Row t = 20: sources at the ends; lambda = 0 and 1 reconstruct them; all land on a point.
  const cells = tf.split(rows[0], 5);
  assert.ok(maxAbsDiff(cells[0], a) === 0 && maxAbsDiff(cells[4], b) === 0);
  assert.ok(maxAbsDiff(cells[1], a) < 1e-3, "lambda = 0 reconstructs x_0");
  assert.ok(maxAbsDiff(cells[3], b) < 1e-3, "lambda = 1 reconstructs x'_0");
  assert.ok(nearestDistances(rows[1], pair).every((d) => d < 1e-3));
  tf.dispose([result.grid, ...rows, ...cells]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([a, b, pair]);
});

Deno.test("ddpmSampler() passes clipX0 to DDIM as well as to the ancestral sampler", async () => {
  const { ddpmSampler } = await import("../samplers/ddpm_generate.ts");
  const { generateSamples } = await import("../samplers/generate.ts");
  const { ddpmProcess: makeProcess } = await import("../schedules/ddpm.ts");
  const process = makeProcess({ T: 20 });
  // A denoiser that always predicts the clean image 5: far outside the data range [-1, 1].
  const far = (x: tf.Tensor) => tf.fill(x.shape, 5);
  for (const sampler of ["ddim", "ancestral"] as const) {
    const run = (clipX0: boolean) =>
      generateSamples(far, {
        seeds: [0, 1],
        shape: [3],
        sampler: ddpmSampler(process, { sampler, clipX0 }),
      });
    const clipped = await run(true), free = await run(false);
    assert.ok(Math.max(...clipped.images) <= 1 + 1e-5, `${sampler} clipped: ${clipped.images}`);
    assert.ok(Math.max(...free.images) > 4, `${sampler} unclipped: ${free.images}`);
  }
});
