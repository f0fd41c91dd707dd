import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { perImageNoise, rngNoise } from "../core/noise.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import {
  createDinofFlow,
  dinofModel,
  flowLogProb,
  marginalAtTm,
  setAffineFlow,
} from "../models/dinof.ts";
import { scoreSdeSchedule, sdePriorStd } from "../schedules/score_sde.ts";
import { generateSamples } from "../samplers/generate.ts";
import { dinofSampler } from "../samplers/dinof_sampler.ts";
import { samplePc, sdePriorSample } from "../samplers/pc_sampler.ts";
import { langevinCorrector } from "../samplers/sde_correctors.ts";
import { reverseDiffusionPredictor } from "../samplers/sde_predictors.ts";
import { dinofLikelihood } from "../eval/dinof_likelihood.ts";
import { sdeLikelihood } from "../eval/sde_likelihood.ts";
import { adamStep, createAdam } from "../training/adam.ts";
import { DINOF_PRESETS, type DinofTrainConfig } from "../training/dinof_config.ts";
import { trainDinof } from "../training/train_dinof.ts";
import { loadDinof } from "../training/load_dinof.ts";
import { readMetrics } from "../training/metrics_log.ts";
import { readRunCheckpoint } from "../training/run_checkpoint.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { EDM_PRESETS } from "../training/edm_config.ts";
import { trainEdm } from "../training/train_edm.ts";

await selectBackend({ backend: "wasm", log: () => {} });

// Gaussian data N(mu, diag(s^2)) in 2-D, and its marginal at T_m on the VP SDE.
const MU = [0.5, -1], S = [0.3, 0.8];
const VP = scoreSdeSchedule("vp");
function marginal(tm: number) {
  const a = VP.alpha(tm), sg = VP.sigma(tm);
  return {
    mean: MU.map((m) => a * m),
    std: S.map((s) => Math.sqrt(a * a * s * s + sg * sg)),
  };
}

Deno.test("an affine flow fitted to x(T_m) of Gaussian data recovers its mean and variance", () => {
  const tm = 0.3, target = marginal(tm);
  const flow = createDinofFlow({ kind: "affine" }, [2]);
  const params = flow.init(new Rng(0));
  // Skip the data-dependent init: the fit alone must find the Gaussian.
  params["level0.actnorm.initialized"].assign(tf.scalar(1));
  const trainable = Object.fromEntries(Object.entries(params).filter(([, v]) => v.trainable));
  const adam = createAdam(trainable);
  const rng = new Rng(1), noise = rngNoise(rng);
  const before = tf.memory().numTensors;
  for (let step = 0; step < 400; step++) {
    const { grads, value } = tf.tidy(() => {
      const x = tf.add(tf.mul(noise.randn([256, 2]), S), MU);
      const xTm = marginalAtTm(VP, x, { tm, noise: noise.randn([256, 2]) });
      return tf.variableGrads(
        () => tf.neg(tf.mean(flowLogProb({ flow, flowParams: params }, xTm))) as tf.Scalar,
        Object.values(trainable),
      );
    });
    const named: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(trainable)) named[k] = grads[v.name];
    adamStep(adam, named, { lr: 0.03 });
    tf.dispose([value, ...Object.values(grads)]);
  }
  assert.equal(tf.memory().numTensors, before);
  // x = (eps exp(top.logs) + top.mean) exp(-an.logs) - an.bias.
  const v = (k: string) => Array.from(params[k].dataSync());
  const [b, la, mt, lt] = [
    v("level0.actnorm.bias"),
    v("level0.actnorm.logs"),
    v("top.mean"),
    v("top.logs"),
  ];
  for (let i = 0; i < 2; i++) {
    const mean = mt[i] * Math.exp(-la[i]) - b[i], std = Math.exp(lt[i] - la[i]);
    assert.ok(Math.abs(mean - target.mean[i]) < 0.03, `mean ${mean} vs ${target.mean[i]}`);
    assert.ok(Math.abs(std / target.std[i] - 1) < 0.03, `std ${std} vs ${target.std[i]}`);
  }
});

Deno.test("the exact flow at T_m and the reverse SDE with the exact score reproduce the data moments", async () => {
  const tm = 0.5, exact = marginal(tm);
  const flow = createDinofFlow({ kind: "affine" }, [2]);
  const flowParams = flow.init(new Rng(0));
  setAffineFlow(flowParams, exact);
  const model = dinofModel({
    denoiser: idealGaussianDenoiser({ mean: MU, std: S }),
    schedule: VP,
    flow,
    flowParams,
    tm,
  });
  const n = 2000;
  const before = tf.memory().numTensors;
  const out = await generateSamples(model.denoiser, {
    seeds: Array.from({ length: n }, (_, i) => i),
    shape: [2],
    batchSize: n,
    sampler: dinofSampler(model, { numScales: 200, corrector: langevinCorrector({ snr: 0.16 }) }),
  });
  assert.equal(out.nfe, 2 * 100);
  assert.equal(tf.memory().numTensors, before, "no tensor left behind");
  const ode = await generateSamples(model.denoiser, {
    seeds: [0, 1, 2, 3],
    shape: [2],
    sampler: dinofSampler(model, { method: "ode" }),
  });
  assert.ok(ode.images.every(Number.isFinite) && ode.nfe > 1);
  assert.equal(tf.memory().numTensors, before, "no tensor left behind by the ODE");
  for (let d = 0; d < 2; d++) {
    let m = 0, q = 0;
    for (let i = 0; i < n; i++) m += out.images[2 * i + d] / n;
    for (let i = 0; i < n; i++) q += (out.images[2 * i + d] - m) ** 2 / (n - 1);
    assert.ok(Math.abs(m - MU[d]) < 4 * S[d] / Math.sqrt(n), `mean ${m} vs ${MU[d]}`);
    assert.ok(Math.abs(q / (S[d] * S[d]) - 1) < 0.1, `variance ${q} vs ${S[d] ** 2}`);
  }
  tf.dispose(Object.values(flowParams));
});

Deno.test("DiNof at T_m = T with the prior as its flow is the plain PC sampler, seed for seed", async () => {
  const schedule = scoreSdeSchedule("ve");
  const denoiser = idealGaussianDenoiser({ mean: 0.2, std: 0.7 });
  const flow = createDinofFlow({ kind: "affine" }, [3]);
  const flowParams = flow.init(new Rng(0));
  setAffineFlow(flowParams, { mean: 0, std: sdePriorStd(schedule) });
  const model = dinofModel({ denoiser, schedule, flow, flowParams, tm: schedule.tMax });
  const corrector = langevinCorrector({ snr: 0.16 });
  const seeds = [3, 1, 4, 1, 5, 9];
  const dinof = await generateSamples(denoiser, {
    seeds,
    shape: [3],
    sampler: dinofSampler(model, { numScales: 30, corrector }),
  });
  const noise = perImageNoise(seeds);
  const z = sdePriorSample(schedule, [seeds.length, 3], noise);
  const plain = await samplePc(denoiser, z, {
    schedule,
    noise,
    predictor: reverseDiffusionPredictor,
    corrector,
    steps: 30,
  });
  const p = plain.x.dataSync();
  assert.equal(dinof.nfe, plain.nfe);
  for (let i = 0; i < p.length; i++) {
    assert.ok(Math.abs(dinof.images[i] - p[i]) < 1e-4, `value ${i}: ${dinof.images[i]} vs ${p[i]}`);
  }
  tf.dispose([z, plain.x, ...Object.values(flowParams)]);
});

Deno.test("the DiNof likelihood of Gaussian data matches the closed form", async () => {
  const tm = 0.4, exact = marginal(tm);
  const flow = createDinofFlow({ kind: "affine" }, [2]);
  const flowParams = flow.init(new Rng(0));
  setAffineFlow(flowParams, exact);
  const denoiser = idealGaussianDenoiser({ mean: MU, std: S });
  const model = dinofModel({ denoiser, schedule: VP, flow, flowParams, tm });
  const x = tf.tensor2d([[0.4, -0.5], [1.0, -2.0], [0.1, 0.3]]);
  const opts = { rng: new Rng(0), dequantize: false, probe: "exact" as const };
  const ours = await dinofLikelihood(model, x, opts);
  const alone = await sdeLikelihood(denoiser, x, { ...opts, schedule: VP });
  // The state at eps = 1e-5 in EDM space is x + sigma_edm(eps) n: variance s^2 + sigma_edm^2.
  const s0 = VP.sigma(1e-5) / VP.alpha(1e-5);
  const rows = x.arraySync() as number[][];
  rows.forEach((row, i) => {
    let nll = 0;
    row.forEach((v, d) => {
      const varD = S[d] ** 2 + s0 ** 2;
      nll += 0.5 * Math.log(2 * Math.PI * varD) + (v - MU[d]) ** 2 / (2 * varD);
    });
    assert.ok(Math.abs(ours.nll[i] - nll) < 2e-3, `DiNof NLL ${ours.nll[i]} vs ${nll}`);
  });
  // The score model alone solves to T (its N(0, sigma(T)^2) prior ignores the data mean, off by
  // up to 0.015 nats here); the ODE to T_m is shorter.
  assert.ok(ours.nfe < alone.nfe, `nfe ${ours.nfe} vs ${alone.nfe}`);
  tf.dispose([x, ...Object.values(flowParams)]);
});

const TOY: DinofTrainConfig = {
  ...DINOF_PRESETS.toy,
  data: "toy:eight-gaussians",
  tm: 0.2,
  lr: 5e-3,
  batchSize: 128,
  kimg: 1000,
  lrRampupKimg: 0.5,
  checkpointKimg: 1000,
  sampleKimg: 1000,
  logEvery: 10,
  gridImages: 16,
  gridSteps: 4,
};
const quiet = { progress: false, log: () => {} };

async function run(config: DinofTrainConfig, runDir: string, maxSteps: number, resume = false) {
  const losses: number[] = [];
  const result = await trainDinof(config, {
    ...quiet,
    runDir,
    resume,
    maxSteps,
    onStep: (r) => losses.push(r.loss),
  });
  return { result, losses };
}

Deno.test("joint DiNof training on 2-D data lowers both the DSM and the flow NLL", async () => {
  const dir = await Deno.makeTempDir();
  await run(TOY, dir, 120);
  const lines = await readMetrics(join(dir, "metrics.jsonl"));
  assert.equal(lines.length, 13, "a line at step 1, then every 10 steps");
  // After the first line (lazily created optimizer state), the tensor count stays flat.
  assert.equal(new Set(lines.slice(1).map((l) => l.numTensors)).size, 1, "tensor count flat");
  // Means of the first and of the last two metric lines (10 steps each).
  const mean = (rs: typeof lines, k: string) => (rs[0][k] + rs[1][k]) / 2;
  const [dsm0, dsm1] = [mean(lines, "dsm"), mean(lines.slice(-2), "dsm")];
  const [nll0, nll1] = [mean(lines, "nll"), mean(lines.slice(-2), "nll")];
  assert.ok(dsm1 < 0.9 * dsm0, `DSM fell from ${dsm0} to only ${dsm1}`);
  assert.ok(nll1 < nll0 - 0.05, `NLL fell from ${nll0} to only ${nll1}`);
  const last = lines.at(-1)!;
  assert.ok(
    Math.abs(last.flowBitsPerDim - last.nll / (2 * Math.LN2)) < 1e-9,
    "flowBitsPerDim is the NLL in bits per dimension",
  );
  const loaded = await loadDinof(join(dir, "checkpoint.safetensors"));
  assert.equal(loaded.model.tm, 0.2);
  assert.deepEqual(loaded.shape, [2]);
  loaded.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a resumed joint DiNof run continues with exactly the same losses", async () => {
  const straight = await Deno.makeTempDir(), split = await Deno.makeTempDir();
  const a = await run(TOY, straight, 10);
  const b1 = await run(TOY, split, 6);
  const b2 = await run(TOY, split, 4, true);
  assert.deepEqual(b1.losses, a.losses.slice(0, 6));
  assert.deepEqual(b2.losses, a.losses.slice(6));
  assert.equal(b2.result.step, 10);
  await Deno.remove(straight, { recursive: true });
  await Deno.remove(split, { recursive: true });
});

Deno.test("two-stage DiNof trains only the flow, for a frozen train:sde checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const scoreDir = join(dir, "score"), flowDir = join(dir, "flow");
  await trainEdm({
    ...EDM_PRESETS.toy,
    data: "toy:eight-gaussians",
    precond: "vp",
    sde: {},
    checkpointKimg: 1000,
    sampleKimg: 1000,
    gridImages: 16,
    gridSteps: 4,
  }, { ...quiet, runDir: scoreDir, maxSteps: 3 });
  const scorePath = join(scoreDir, "checkpoint.safetensors");
  await run({ ...TOY, scoreCheckpoint: scorePath }, flowDir, 100);
  const lines = await readMetrics(join(flowDir, "metrics.jsonl"));
  assert.ok(lines.every((l) => l.dsm === undefined), "no DSM term in two-stage mode");
  // Means of the first and of the last two metric lines (the first is step 1 alone).
  const nll0 = (lines[0].nll + lines[1].nll) / 2,
    nll1 = (lines.at(-1)!.nll + lines.at(-2)!.nll) / 2;
  assert.ok(nll1 < nll0 - 0.05, `NLL ${nll0} -> ${nll1}`);
  const ckpt = await readRunCheckpoint<{ format: string }>(join(flowDir, "checkpoint.safetensors"));
  const names = Object.keys(ckpt.tensorsWithPrefix("net."));
  assert.ok(names.length > 0 && names.every((k) => k.startsWith("net.flow.")), names.join());
  ckpt.dispose();
  // The loaded model samples with the frozen score model's own denoiser.
  const loaded = await loadDinof(join(flowDir, "checkpoint.safetensors"));
  const score = await loadDenoiser(scorePath);
  const probe = () => tf.tidy(() => tf.ones([2, 2]));
  const [a, b] = [probe(), probe()];
  const sigma = tf.tensor1d([0.5, 2]);
  const da = loaded.model.denoiser(a, sigma).dataSync(), db = score.denoiser(b, sigma).dataSync();
  assert.deepEqual(Array.from(da), Array.from(db));
  tf.dispose([a, b, sigma]);
  loaded.dispose();
  score.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("joint DiNof training stops on a non-finite loss and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const config = { ...TOY, lr: 1e30, lrRampupKimg: 0, checkpointKimg: TOY.batchSize / 1000 };
  await assert.rejects(
    () => run(config, dir, 50),
    (e) =>
      e instanceof UserError && /loss became \S+ at step \d+/.test(e.message) &&
      /healthy/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});
