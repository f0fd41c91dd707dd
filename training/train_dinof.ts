/**
 * DiNof training (shared/papers/dinof.txt, Section 3.2: "a joint training objective that merges
 * the ODE objective with the diffusion model's score matching objective (Eqs. 3 and 8)"; the
 * authors' `losses.py` `get_step_fn`) on the shared step loop (`run_loop.ts`):
 *
 * - joint (`scoreCheckpoint: null`): `loss = DSM(t ~ U(eps, T_m)) + w NLL_flow(x(T_m))` with
 *   `x(T_m) = alpha(T_m) x + sigma(T_m) n` drawn from the forward process each step, the score
 *   network and the flow in one parameter map (`score.*`, `flow.*`), one Adam with the loop's
 *   warm-up, global gradient-norm clipping (the authors' `grad_clip = 1`), one EMA;
 * - two-stage (`scoreCheckpoint` set): a frozen `train:sde` / `train:edm` checkpoint (its EMA
 *   weights) and only the flow trains, on the same x(T_m) draws: any trained score model gets a
 *   DiNof prior without retraining.
 *
 * The DSM term is the score-SDE objective of `train:sde` (`objectiveFor(process, sde)` with
 * tMax = T_m: its preconditioner, time draws, weights and loss). NLL is in nats per example
 * (normflows' `forward_kld`), and the metric lines add `dsm`, `nll`, the flow's continuous
 * bits/dim on x(T_m), `flowBitsPerDim = nll / (D ln 2)` (no dequantization: x(T_m) is not
 * discrete), and the mean gradient norm before clipping. Run directory, checkpoints, exact resume, Ctrl-C, non-finite-loss stop: the loop's.
 *
 * Reference vs paper vs this code: the reference draws the DSM time as `U(eps, T) * T_m` (so
 * [eps T_m, T_m]) and trains the flow on x at `T_m (1 - eps) + eps` with the same noise z as the
 * DSM term; the paper says t in [0, T_m) and x(T_m); this code uses t ~ U(eps, T_m), x(T_m) at T_m
 * exactly, and independent noise for the two terms. The two networks share no parameters, so with
 * Adam (invariant to a constant gradient scale per parameter) w acts only through the global
 * clipping norm; it is kept as the issue asks (default 1, the reference's fixed w = [1, 1]).
 * ActNorm layers are initialised once from the first batch of x(T_m) (Glow), before the EMA copy.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../core/rng.ts";
import { UserError } from "../core/errors.ts";
import { createProgress } from "../core/progress.ts";
import { countParams, type Params } from "../core/params.ts";
import { rngNoise } from "../core/noise.ts";
import { loadDataset } from "../data/load_dataset.ts";
import { type Batch, batches, type Dataset } from "../data/dataset.ts";
import { buildModel, type ModelSpec, modelSpecFor } from "../models/build_network.ts";
import type { Preconditioned } from "../models/precond.ts";
import {
  createDinofFlow,
  type DinofModel,
  dinofModel,
  flowLogProb,
  marginalAtTm,
} from "../models/dinof.ts";
import { scoreSdeSchedule } from "../schedules/score_sde.ts";
import { dinofSampler } from "../samplers/dinof_sampler.ts";
import { adamStateTensors } from "./adam.ts";
import { createEma } from "./ema.ts";
import { objectiveFor } from "./objective.ts";
import { loadDenoiser } from "./load_denoiser.ts";
import { dinofFlowArch, type DinofTrainConfig } from "./dinof_config.ts";
import { writeRunCheckpoint } from "./run_checkpoint.ts";
import { writePreview } from "./preview.ts";
import {
  gradientNorm,
  optimizerStep,
  type PendingUpdate,
  runState,
  runTrainingLoop,
  startRun,
} from "./run_loop.ts";
import { checkSameModel, openTrainerRun } from "./_loop_utils.ts";
import { prefixParams, unprefixParams } from "./_prefixed.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";

/** Scalar training state stored in a DiNof checkpoint beside the tensors. */
export interface DinofRunState extends RunStateBase {
  /** Format tag. */
  format: "diffuse-dinof/1";
  /** The configuration the run was started with (run-length fields may change on resume). */
  config: DinofTrainConfig;
}

// Fields that shape the learned model; the rest (length, logging, lr) may change on resume.
const FROZEN: (keyof DinofTrainConfig)[] = [
  "data",
  "process",
  "sde",
  "tm",
  "flow",
  "scoreCheckpoint",
];

/**
 * Trains a DiNof model from `config` into `options.runDir` (see the module doc).
 *
 * @param config The validated config (`validateDinofConfig`).
 * @param options The loop's options (run folder, resume, signal, log, onStep, maxSteps).
 * @returns The loop's result; the loss is DSM + w NLL per example (NLL alone in two-stage mode).
 * @throws {UserError} For bad data, an existing checkpoint without `resume`, a checkpoint or
 *   score model that does not match, or a non-finite loss (the last good checkpoint is kept).
 * @example A tiny joint run on 2-D data
 * ```ts ignore
 * import { DINOF_PRESETS } from "./dinof_config.ts";
 * await trainDinof({ ...DINOF_PRESETS.toy, kimg: 1 }, { runDir: "runs/dinof-toy" });
 * ```
 */
export async function trainDinof(
  config: DinofTrainConfig,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const { runDir, progress = true } = options;
  const { ckptPath, saved, log, started } = await openTrainerRun<DinofRunState>(config, options, {
    format: "diffuse-dinof/1",
    task: "train:dinof",
    frozen: FROZEN,
  });

  const dataset = await loadDataset(config.data);
  const rng = new Rng(config.seed);
  const schedule = scoreSdeSchedule(config.process);
  const score = await scorePart(config, dataset, rng, log);
  if (saved) checkSameModel(saved.state.model, score.spec, ckptPath);
  const flow = createDinofFlow(dinofFlowArch(config.flow), dataset.shape);
  const dims = dataset.shape.reduce((a, b) => a * b, 1);
  const params: Params = {
    ...(score.params ? prefixParams("score.", score.params) : {}),
    ...prefixParams("flow.", flow.init(rng)),
  };
  if (!saved) initializeFlow();
  const ema = createEma(params);
  const { run, adam } = await startRun({
    saved,
    params,
    ema,
    rng,
    runDir,
    checkpointPath: ckptPath,
    log,
  });
  await Deno.mkdir(runDir, { recursive: true });
  log(
    `DiNof T_m ${config.tm} on ${config.process}: score ${score.spec.name} ` +
      `(${score.params ? "joint" : `frozen, ${config.scoreCheckpoint}`}), flow ${config.flow}; ` +
      `${countParams(params).toLocaleString("en-US")} trainable-map parameters; ` +
      `data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]`,
  );

  const modelOf = (p: Params): DinofModel =>
    dinofModel({
      denoiser: score.denoiser(p),
      schedule,
      flow,
      flowParams: unprefixParams("flow.", p),
      tm: config.tm,
    });
  const model = modelOf(params);
  const emaModel = modelOf(ema);
  const noiseSource = rngNoise(rng);
  const trainable = Object.values(params).filter((v) => v.trainable);
  const it = batches(
    dataset,
    run.position ? { batchSize: config.batchSize, resume: run.position } : {
      batchSize: config.batchSize,
      rng,
    },
  );
  const totalImages = Math.round(config.kimg * 1000);
  const bar = progress ? createProgress({ total: totalImages, label: "train", unit: "img" }) : null;
  // Gradients wait here until the batch's loss is known to be finite.
  let pending: PendingUpdate | null = null;
  const window = { dsm: 0, nll: 0, gradNorm: 0, count: 0 };

  const save = async (): Promise<void> => {
    const state: DinofRunState = {
      format: "diffuse-dinof/1",
      config,
      ...runState(run, { model: score.spec, rng, adam }),
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) =>
    writePreview(emaModel.denoiser as Preconditioned, {
      config: { ...config, classConditional: false },
      dataset,
      path,
      sampler: dinofSampler(emaModel, { numScales: config.gridSteps }),
    });

  try {
    return await runTrainingLoop({
      counters: run,
      totalImages,
      batches: it,
      async evaluate(batch) {
        const { total, dsm, nll } = trainStep(batch);
        const [t, d, l] = await Promise.all([total.data(), dsm?.data(), nll.data()]);
        tf.dispose([total, dsm, nll]);
        window.dsm += d ? d[0] : 0;
        window.nll += l[0];
        window.count++;
        return t[0];
      },
      async gradNorm() {
        // Before clipping, for the divergence check and the metric lines.
        const norm = await gradientNorm(pending?.grads ?? {});
        window.gradNorm += norm;
        return norm;
      },
      apply() {
        if (!pending) return;
        optimizerStep({ adam, ema, params }, pending, config);
        pending = null;
      },
      discard() {
        if (pending) tf.dispose(Object.values(pending.grads));
        pending = null;
      },
      save,
      preview,
      cadence: config,
      schedule: config,
      metrics() {
        const c = Math.max(window.count, 1);
        const out = {
          ...(score.params ? { dsm: window.dsm / c } : {}),
          nll: window.nll / c,
          flowBitsPerDim: window.nll / c / (dims * Math.LN2),
          // Before clipping; NaN with clipping off.
          gradNorm: window.gradNorm / c,
        };
        window.dsm =
          window.nll =
          window.gradNorm =
          window.count =
            0;
        return out;
      },
      bar,
      started,
      maxMinutes: config.maxMinutes,
      checkpointPath: ckptPath,
      nonFiniteHint: `Lower --lr (now ${config.lr}), raise --lr-rampup or set --clip`,
    }, options);
  } finally {
    score.dispose();
  }

  // Glow's data-dependent ActNorm initialisation on x(T_m) of the first images, from its own
  // generator so the run's generator (and thus resume) does not depend on it.
  function initializeFlow(): void {
    const n = Math.min(config.batchSize, dataset.count);
    const xTm = tf.tidy(() => {
      const y = tf.tensor(dataset.images.subarray(0, n * dims), [n, ...dataset.shape]);
      return marginalAtTm(schedule, y, {
        tm: config.tm,
        noise: rngNoise(new Rng(config.seed + 1)).randn([n, ...dataset.shape]),
      });
    });
    const x4 = tf.reshape(xTm, [n, ...flow.shape]) as tf.Tensor4D;
    flow.initialize(unprefixParams("flow.", params), x4);
    tf.dispose([xTm, x4]);
  }

  function trainStep(batch: Batch): { total: tf.Scalar; dsm?: tf.Scalar; nll: tf.Scalar } {
    const y = tf.tensor(batch.images, batch.shape, "float32");
    const objective = score.objective;
    const sigmas = objective ? objective.drawSigmas(batch.size, rng) : null;
    const sigma = sigmas ? tf.tensor1d(sigmas) : undefined;
    const weight = sigmas && objective?.drawWeights
      ? tf.tensor1d(objective.drawWeights(sigmas))
      : undefined;
    const noise = sigmas ? noiseSource.randn(batch.shape) : undefined;
    const xTm = tf.tidy(() =>
      marginalAtTm(schedule, y, { tm: config.tm, noise: noiseSource.randn(batch.shape) })
    );
    const uniform = (shape: number[]) =>
      tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
    let dsm: tf.Scalar | undefined, nll: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      nll = tf.keep(tf.neg(tf.mean(flowLogProb(model, xTm))) as tf.Scalar);
      if (!objective) return nll;
      dsm = tf.keep(
        objective.loss(model.denoiser, y, { sigma: sigma!, noise: noise!, weight }, {}, {
          training: config.dropout > 0,
          uniform,
        }),
      );
      return tf.add(dsm, tf.mul(nll, config.nllWeight)) as tf.Scalar;
    }, trainable);
    tf.dispose([y, sigma, weight, noise, xTm]);
    const named: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    pending = { grads: named, imagesBefore: run.imagesSeen, size: batch.size };
    return { total: value, dsm, nll: nll! };
  }
}

/** The score side of a run: a network to train (joint) or a frozen checkpoint (two-stage). */
interface ScorePart {
  /** The score network's description (stored as the checkpoint's `model`). */
  spec: ModelSpec;
  /** Its trainable parameters (joint), or null (frozen). */
  params: Params | null;
  /** The DSM objective (joint), or null. */
  objective: ReturnType<typeof objectiveFor> | null;
  /** The denoiser over a full parameter map (the frozen one ignores it). */
  denoiser(all: Params): Preconditioned;
  /** Frees the frozen weights. */
  dispose(): void;
}

async function scorePart(
  config: DinofTrainConfig,
  dataset: Dataset,
  rng: Rng,
  log: (message: string) => void,
): Promise<ScorePart> {
  if (config.scoreCheckpoint === null) {
    let spec: ModelSpec, objective;
    try {
      spec = modelSpecFor(config, dataset);
      objective = objectiveFor(config.process, { ...config.sde, tMax: config.tm });
    } catch (e) {
      if (e instanceof RangeError) throw new UserError(`train:dinof: ${e.message}`);
      throw e;
    }
    const net = buildModel(spec);
    return {
      spec,
      params: net.init(rng),
      objective,
      denoiser: (all) => objective.precond(net.network(unprefixParams("score.", all))),
      dispose: () => {},
    };
  }
  const loaded = await loadDenoiser(config.scoreCheckpoint, { weights: "ema" });
  if (JSON.stringify(loaded.shape) !== JSON.stringify(dataset.shape)) {
    loaded.dispose();
    throw new UserError(
      `train:dinof: the score checkpoint ${config.scoreCheckpoint} models shape ` +
        `[${loaded.shape}], the data ${dataset.name} has [${dataset.shape}]; use the same --data`,
    );
  }
  const trainedOn = (loaded.state.config as { precond?: string }).precond ?? "ddpm";
  if (trainedOn !== "edm" && trainedOn !== config.process) {
    log(
      `warning: ${config.scoreCheckpoint} was trained on the ${trainedOn} process; DiNof runs ` +
        `${config.process} with it (its denoiser works for any process in its sigma range)`,
    );
  }
  return {
    spec: loaded.state.model,
    params: null,
    objective: null,
    denoiser: () => loaded.denoiser,
    dispose: () => loaded.dispose(),
  };
}
