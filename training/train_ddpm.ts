/**
 * The DDPM training loop (Ho et al. 2020, Algorithm 1; improved DDPM's importance-sampled
 * L_vlb, Nichol and Dhariwal 2021, Section 3.3): seeded batches, t drawn uniformly (or by
 * importance for the bound), `L_simple` (eq. 14) or the bound (eq. 5) on an eps-predicting
 * network (the raw network gets `c_noise = t - 1`), Adam with learning-rate warm-up, EMA,
 * JSON-lines metrics, periodic atomic checkpoints and ancestral sample grids (Algorithm 2),
 * exact resume, clean stop on abort, and a hard stop on a non-finite loss that keeps the last
 * good checkpoint. The shape follows `train_edm.ts`; the shared bookkeeping is `_loop_utils.ts`.
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
import { type Batch, batches } from "../data/dataset.ts";
import { buildModel, type ModelSpec, modelSpecFor } from "../models/build_network.ts";
import { ddpmDenoiser, ddpmEpsNetwork } from "../models/ddpm_param.ts";
import { ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { ddpmSampler } from "../samplers/ddpm_generate.ts";
import { adamStateTensors } from "./adam.ts";
import { createEma } from "./ema.ts";
import type { DdpmTrainConfig } from "./ddpm_config.ts";
import { type DdpmDecoder, ddpmSimpleLoss, ddpmVlbTerms } from "./ddpm_loss.ts";
import {
  createTimestepHistory,
  drawTimesteps,
  recordTimestepLosses,
  type TimestepHistory,
  timestepProbabilities,
} from "./ddpm_importance.ts";
import { writeRunCheckpoint } from "./run_checkpoint.ts";
import { writePreview } from "./preview.ts";
import { gradientNorm, optimizerStep, runState, runTrainingLoop, startRun } from "./run_loop.ts";
import { checkSameModel, openTrainerRun } from "./_loop_utils.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";
import { requireBackend } from "../core/_require_backend.ts";

/** Options of {@linkcode trainDdpm}. */
export type TrainDdpmOptions = TrainLoopOptions;

/** What {@linkcode trainDdpm} returns. */
export type TrainDdpmResult = TrainLoopResult;

/** Scalar training state stored in a checkpoint beside the tensors. */
export interface DdpmRunState extends RunStateBase {
  /** Format tag. */
  format: "diffuse-ddpm/1";
  /** The configuration the run was started with (run-length fields may change on resume). */
  config: DdpmTrainConfig;
  /** Loss history of the importance sampler of t (loss "vlb"); null for L_simple. */
  importance: TimestepHistory | null;
}

// Fields that must match between a checkpoint and a resumed run; the rest (length, logging) may change.
const FROZEN: (keyof DdpmTrainConfig)[] = ["data", "T", "schedule", "loss", "variance"];

/**
 * Trains a DDPM eps predictor from `config`, writing into `options.runDir`.
 *
 * @param config The run's configuration (see `DDPM_PRESETS`).
 * @param options Run directory, resume, signal, logging.
 * @returns Steps, images, last loss and paths.
 * @throws {UserError} For bad data, a run directory that already holds a checkpoint (without
 *   `resume`), a checkpoint that does not match, or a non-finite loss (the last good checkpoint
 *   is kept and named in the message).
 * @example A tiny toy run
 * ```ts ignore
 * import { DDPM_PRESETS } from "./ddpm_config.ts";
 * import { trainDdpm } from "./train_ddpm.ts";
 * await trainDdpm({ ...DDPM_PRESETS.toy, kimg: 1 }, { runDir: "runs/ddpm-toy" });
 * ```
 */
export async function trainDdpm(
  config: DdpmTrainConfig,
  options: TrainDdpmOptions,
): Promise<TrainDdpmResult> {
  requireBackend("trainDdpm");
  const { runDir, progress = true } = options;
  const { ckptPath, saved, log, started } = await openTrainerRun<DdpmRunState>(config, options, {
    format: "diffuse-ddpm/1",
    task: "train:ddpm",
    frozen: FROZEN,
  });

  const dataset = await loadDataset(config.data);
  const rng = new Rng(config.seed);
  let spec: ModelSpec, params: Params;
  const process = (() => {
    try {
      return ddpmProcess({ T: config.T, schedule: config.schedule });
    } catch (e) {
      throw new UserError(`train:ddpm: ${(e as Error).message}`);
    }
  })();
  try {
    spec = modelSpecFor({ ...config, classConditional: false }, dataset);
    if (saved) checkSameModel(saved.state.model, spec, ckptPath);
    params = buildModel(spec).init(rng);
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`train:ddpm: ${e.message}`);
    throw e;
  }
  const model = buildModel(spec);
  const ema = createEma(params);
  let history = saved?.state.importance ??
    (config.loss === "vlb" ? createTimestepHistory(config.T) : null);
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
    `model ${spec.name}: ${countParams(params).toLocaleString("en-US")} parameters; ` +
      `data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]; ` +
      `DDPM T=${config.T} ${config.schedule}, loss ${config.loss}`,
  );

  // 8-bit images get the discretized decoder of eq. 13; 2-D points a Gaussian density.
  const decoder: DdpmDecoder = dataset.shape.length === 1 ? "gaussian" : "discretized";
  const simpleLoss = ddpmSimpleLoss({ process });
  const eps = ddpmEpsNetwork(model.network(params));
  const emaDenoiser = ddpmDenoiser(ddpmEpsNetwork(model.network(ema)), process);
  const gridProcess = respaceDdpm(
    process,
    spaceTimesteps(config.T, { numSteps: config.gridSteps }),
  );
  const gridSampler = ddpmSampler(gridProcess, { variance: config.variance });
  const previewConfig = { ...config, classConditional: false };
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
  const bar = progress
    ? createProgress({ total: totalImages, label: "train", unit: "img", initial: run.imagesSeen })
    : null;
  // Gradients (and the bound's terms) wait here until the loss is known to be finite.
  let pending: {
    grads: Record<string, tf.Tensor>;
    imagesBefore: number;
    size: number;
    t: Int32Array;
    terms?: Float32Array;
  } | null = null;

  const save = async (): Promise<void> => {
    const state: DdpmRunState = {
      format: "diffuse-ddpm/1",
      config,
      ...runState(run, { model: spec, rng, adam }),
      importance: history,
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) =>
    writePreview(emaDenoiser, { config: previewConfig, dataset, path, sampler: gridSampler });

  return await runTrainingLoop({
    counters: run,
    totalImages,
    batches: it,
    evaluate: trainStep,
    gradNorm: () => gradientNorm(pending?.grads ?? {}),
    apply: applyUpdate,
    discard: discardPending,
    save,
    preview,
    cadence: config,
    schedule: config,
    bar,
    started,
    maxMinutes: config.maxMinutes,
    checkpointPath: ckptPath,
    nonFiniteHint: `Lower --lr (now ${config.lr})`,
  }, options);

  // One loss and gradient evaluation (Algorithm 1, lines 2-5); returns the loss value.
  async function trainStep(batch: Batch): Promise<number> {
    const { t, weights } = drawTimesteps(
      rng,
      history
        ? { count: batch.size, probabilities: timestepProbabilities(history) }
        : { count: batch.size, T: config.T },
    );
    const x0 = tf.tensor(batch.images, batch.shape, "float32");
    const noise = noiseSource.randn(x0.shape);
    const uniform = (shape: number[]) =>
      tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
    const opts = { training: config.dropout > 0, uniform };
    let terms: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(() => {
      if (!history) return simpleLoss(eps, x0, { t, noise }, undefined, opts);
      const out = ddpmVlbTerms(eps, x0, {
        process,
        variance: config.variance,
        decoder,
        t,
        noise,
        opts,
      });
      terms = tf.keep(out.terms);
      return tf.mean(tf.mul(out.terms, tf.tensor1d(weights))) as tf.Scalar;
    }, trainable);
    tf.dispose([x0, noise]);
    const named: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(params)) if (grads[v.name]) named[name] = grads[v.name];
    const termValues = terms ? await terms.data() as Float32Array : undefined;
    terms?.dispose();
    pending = {
      grads: named,
      imagesBefore: run.imagesSeen,
      size: batch.size,
      t,
      terms: termValues,
    };
    const loss = (await value.data())[0];
    value.dispose();
    // A finite mean can hide a non-finite term only through a zero weight; check the terms too.
    return termValues && !termValues.every(Number.isFinite) ? NaN : loss;
  }

  function discardPending(): void {
    if (pending) tf.dispose(Object.values(pending.grads));
    pending = null;
  }

  function applyUpdate(): void {
    if (!pending) return;
    optimizerStep({ adam, ema, params }, pending, config);
    if (history && pending.terms) {
      history = recordTimestepLosses(history, { t: pending.t, losses: pending.terms });
    }
    pending = null;
  }
}
