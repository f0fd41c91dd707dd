import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise, rngNoise } from "../core/noise.ts";
import { Rng } from "../core/rng.ts";
import { ddpmDenoiser, type EpsPredictor } from "../models/ddpm_param.ts";
import { identityTransform, learnedTransform, type NdmTransform } from "../models/ndm_transform.ts";
import { ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { sampleDdim } from "../samplers/ddim.ts";
import { sampleDdpmAncestral } from "../samplers/ddpm_ancestral.ts";
import { ndmPosterior, sampleNdm } from "../samplers/ndm_ancestral.ts";
import { ndmTime } from "../training/ndm_loss.ts";

await selectBackend({ backend: "wasm", log: () => {} });

const FULL = ddpmProcess();
const CHAIN = respaceDdpm(FULL, spaceTimesteps(1000, { numSteps: 10 }));
const EPS: EpsPredictor = (xt, t) =>
  tf.tidy(() => tf.sub(tf.mul(xt, 0.5), tf.reshape(tf.div(t, 4000), [-1, 1])));
const DENOISER = ddpmDenoiser(EPS, FULL);
const UNMARKED_IDENTITY: NdmTransform = { kind: "learned", apply: (x) => tf.clone(x) };
const SINE: NdmTransform = learnedTransform((x, c) =>
  tf.tidy(() => tf.mul(tf.sin(tf.mul(x, 2)), tf.reshape(tf.div(c, 1000), [-1, 1])))
);
const SEEDS = [3, 4, 5, 6];

async function run(
  sampler: (noise: ReturnType<typeof perImageNoise>, xT: tf.Tensor) => Promise<{ x: tf.Tensor }>,
): Promise<Float32Array> {
  const noise = perImageNoise(SEEDS);
  const xT = noise.randn([4, 3]);
  const { x } = await sampler(noise, xT);
  const out = x.dataSync() as Float32Array;
  tf.dispose([x, xT]);
  return out;
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]) / (1 + Math.abs(b[i]))), 0);
}

Deno.test("identity F: Algorithm 2 is DDIM exactly, on a 1000 -> 10 chain, for eta 0 and 1", async () => {
  for (const eta of [0, 1]) {
    const ndm = await run((noise, xT) =>
      sampleNdm(DENOISER, xT, { process: CHAIN, transform: identityTransform(), eta, noise })
    );
    const ddim = await run((noise, xT) => sampleDdim(DENOISER, xT, { process: CHAIN, eta, noise }));
    assert.deepEqual(ndm, ddim);
  }
});

Deno.test("identity F, general update: DDIM (eta 0) and DDPM ancestral with betaTilde (eta 1)", async () => {
  const general = (eta: number) =>
    run((noise, xT) =>
      sampleNdm(DENOISER, xT, { process: CHAIN, transform: UNMARKED_IDENTITY, eta, noise })
    );
  const ddim = await run((noise, xT) => sampleDdim(DENOISER, xT, { process: CHAIN, noise }));
  assert.ok(maxRelDiff(await general(0), ddim) < 1e-4);
  const ancestral = await run((noise, xT) =>
    sampleDdpmAncestral(DENOISER, xT, { process: CHAIN, variance: "betaTilde", noise })
  );
  assert.ok(maxRelDiff(await general(1), ancestral) < 1e-4);
});

Deno.test("the posterior of eq. 8 keeps the marginal of eq. 7 for a non-linear F (by sampling)", () => {
  const process = ddpmProcess({ T: 20 }), k = 9, n = 40000, eta = 0.5;
  const rng = new Rng(8), noise = rngNoise(rng);
  const x = tf.fill([n, 1], 0.8);
  const ab = process.alphaBar;
  const F = (v: number, u: number) => v + u * u * Math.sin(2 * v);
  const zt = tf.tidy(() =>
    tf.add(
      tf.mul(noise.randn([n, 1]), Math.sqrt(1 - ab[k])),
      Math.sqrt(ab[k]) * F(0.8, ndmTime(process, k)),
    )
  );
  const { mean, std } = ndmPosterior(x, zt, { process, transform: SINE, k, eta });
  const zs = tf.tidy(() => tf.add(mean, tf.mul(noise.randn([n, 1]), std)));
  const { mean: m, variance: v } = tf.moments(zs);
  const wantMean = Math.sqrt(ab[k - 1]) * F(0.8, ndmTime(process, k - 1)), wantVar = 1 - ab[k - 1];
  // Standard errors: sqrt(var / n) ~ 0.004 for the mean, var sqrt(2 / n) for the variance.
  assert.ok(Math.abs(m.dataSync()[0] - wantMean) < 0.015, `mean ${m.dataSync()[0]} vs ${wantMean}`);
  assert.ok(
    Math.abs(v.dataSync()[0] - wantVar) < 0.03 * wantVar,
    `var ${v.dataSync()[0]} vs ${wantVar}`,
  );
  tf.dispose([x, zt, mean, zs, m, v]);
});

Deno.test("sampleNdm() frees its intermediate tensors and refuses eta > 0 without noise", async () => {
  const before = tf.memory().numTensors;
  const noise = perImageNoise(SEEDS);
  const xT = noise.randn([4, 3]);
  const { x, nfe } = await sampleNdm(DENOISER, xT, { process: CHAIN, transform: SINE, noise });
  assert.equal(nfe, 10);
  tf.dispose([x, xT]);
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(
    () => sampleNdm(DENOISER, tf.zeros([1, 3]), { process: CHAIN, transform: SINE }),
    /needs a noise source/,
  );
});
