import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { idealPointSetDenoiser } from "../models/ideal_denoiser.ts";
import { generateSamples, SAMPLER_NAMES } from "../samplers/generate.ts";
import { karrasSigmas } from "../schedules/karras_steps.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const rng = new Rng(3);
const POINTS = Array.from(
  { length: 4 },
  () => Array.from({ length: 8 }, () => 2 * rng.uniform() - 1),
);
const SHAPE = [2, 4, 1];

Deno.test("img2img at strength 0 returns the input image exactly, for every sampler", async () => {
  const points = tf.tensor(POINTS.flat(), [4, ...SHAPE]);
  const denoiser = idealPointSetDenoiser(points);
  const image = Float32Array.from({ length: 8 }, (_, i) => i / 10 - 0.3);
  for (const sampler of SAMPLER_NAMES) {
    const out = await generateSamples(denoiser, {
      seeds: [0, 1],
      shape: SHAPE,
      sigmas: karrasSigmas({ numSteps: 6 }),
      sampler,
      init: { images: image, strength: 0 },
    });
    assert.deepEqual(Array.from(out.images), [...image, ...image], sampler);
  }
  points.dispose();
});

Deno.test("img2img at a low strength stays near the input; at strength 1 it lands on the data", async () => {
  const points = tf.tensor(POINTS.flat(), [4, ...SHAPE]);
  const denoiser = idealPointSetDenoiser(points);
  // The input is point 2 plus a small perturbation: a short run from sigma ~0.1 pulls it to point 2.
  const image = Float32Array.from(POINTS[2], (v, i) => v + (i % 2 ? 0.05 : -0.05));
  const sigmas = karrasSigmas({ numSteps: 20, sigmaMax: 80 });
  const low = await generateSamples(denoiser, {
    seeds: [0, 1, 2],
    shape: SHAPE,
    sigmas,
    sampler: "dpmpp-2m",
    init: { images: image, strength: 0.3 },
  });
  for (let n = 0; n < 3; n++) {
    const d = Math.hypot(...POINTS[2].map((v, k) => low.images[n * 8 + k] - v));
    assert.ok(d < 1e-3, `sample ${n} is ${d} from the point it started near`);
  }
  // NFE: round(0.3 * 20) = 6 steps.
  assert.equal(low.nfe, 6);
  points.dispose();
});

Deno.test("inpainting keeps the known pixels exactly and fills the rest from the data", async () => {
  const points = tf.tensor(POINTS.flat(), [4, ...SHAPE]);
  const denoiser = idealPointSetDenoiser(points);
  const known = Float32Array.from(POINTS[1]);
  const mask = Float32Array.from({ length: 8 }, (_, i) => (i < 4 ? 1 : 0));
  for (const sampler of ["heun", "euler-ancestral", "dpmpp-2m-sde", "dpm-fast"] as const) {
    const out = await generateSamples(denoiser, {
      seeds: [0, 1, 2, 3],
      shape: SHAPE,
      sigmas: karrasSigmas({ numSteps: 24 }),
      sampler,
      inpaint: { images: known, mask },
    });
    for (let n = 0; n < 4; n++) {
      const img = out.images.subarray(n * 8, n * 8 + 8);
      for (let k = 0; k < 4; k++) assert.equal(img[k], known[k], `${sampler}: known pixel kept`);
      // The only data point that agrees on the known half is point 1: the rest follows it.
      const d = Math.hypot(...POINTS[1].slice(4).map((v, k) => img[4 + k] - v));
      assert.ok(d < 0.05, `${sampler}: generated half is ${d} from point 1`);
    }
  }
  points.dispose();
});

Deno.test("generateSamples() rejects init and inpaint images of the wrong size", async () => {
  const denoiser = (x: tf.Tensor) => tf.zerosLike(x);
  const base = { seeds: [0], shape: SHAPE, sigmas: karrasSigmas({ numSteps: 3 }) };
  await assert.rejects(
    () =>
      generateSamples(denoiser, { ...base, init: { images: new Float32Array(3), strength: 1 } }),
    RangeError,
  );
  await assert.rejects(
    () =>
      generateSamples(denoiser, {
        ...base,
        inpaint: { images: new Float32Array(8), mask: new Float32Array(2) },
      }),
    RangeError,
  );
  await assert.rejects(
    () =>
      generateSamples(denoiser, { ...base, init: { images: new Float32Array(8), strength: 2 } }),
    RangeError,
  );
});
