/**
 * The NDM training loop (NDM paper, Algorithm 1): seeded batches; per image a step k ~ U{1..T}
 * and the loss `L_prior + T L_k` of eq. 9-10 (`ndm_loss.ts`), or with `continuous` a time
 * t ~ 1/g^2(t) and eq. 11 (`ndm_continuous.ts`, on the VP limit of the DDPM chain); both in
 * bits/dim, so the logged loss is a NELBO estimate. One gradient step on theta and phi together
 * (two networks in one parameter map, `models/ndm_model.ts`), Adam with warm-up, EMA,
 * checkpoints, Algorithm 2 sample grids, exact resume and the non-finite-loss stop: all of it the
 * shared loop of `run_loop.ts`, like `train_edm.ts` and `train_ddpm.ts`.
 *
 * `transform: "identity"` is the paper's DDPM baseline: the same objective, the same loop.
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
import { modelSpecFor } from "../models/build_network.ts";
import { ddpmDenoiser } from "../models/ddpm_param.ts";
import { initNdmParams, type NdmModelSpec, ndmNetworks } from "../models/ndm_model.ts";
import { type DdpmProcess, ddpmProcess, respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import type { LogSnrSchedule } from "../schedules/log_snr.ts";
import { vpLogSnrSchedule } from "../schedules/s2n_schedules.ts";
import { ndmSampler } from "../samplers/ndm_ancestral.ts";
import { adamStateTensors } from "./adam.ts";
import { createEma } from "./ema.ts";
import type { NdmTrainConfig } from "./ndm_config.ts";
import type { DdpmDecoder } from "./ddpm_loss.ts";
import { drawTimesteps } from "./ddpm_importance.ts";
import { ndmLoss } from "./ndm_loss.ts";
import { drawContinuousTimes, ndmContinuousTerms } from "./ndm_continuous.ts";
import { writeRunCheckpoint } from "./run_checkpoint.ts";
import { writePreview } from "./preview.ts";
import { holdUpdates, runState, runTrainingLoop, startRun } from "./run_loop.ts";
import { checkSameModel, openTrainerRun } from "./_loop_utils.ts";
import type { RunStateBase, TrainLoopOptions, TrainLoopResult } from "./train_loop_types.ts";

/** Scalar training state stored in a checkpoint beside the tensors. */
export interface NdmRunState extends RunStateBase {
  /** Format tag. */
  format: "diffuse-ndm/1";
  /** The configuration the run was started with. */
  config: NdmTrainConfig;
  /** F_phi's network (null: the identity). `model` is eps_theta's. */
  transformModel: NdmModelSpec["transform"];
}

// Fields that must match between a checkpoint and a resumed run.
const FROZEN: (keyof NdmTrainConfig)[] = [
  "data",
  "T",
  "steps",
  "schedule",
  "transform",
  "continuous",
];

/**
 * The continuous-time process whose discretization is the DDPM linear chain of T steps:
 * VP with `beta_min = 1e-4 T`, `beta_d = (0.02 - 1e-4) T` on [1/T, 1] (for T = 1000, S2N
 * Table 1's VP), so network time `T t` is the DDPM step.
 *
 * @param T Steps of the chain.
 * @returns The schedule.
 * @example
 * ```ts
 * import { ndmContinuousSchedule } from "./train_ndm.ts";
 * const vp = ndmContinuousSchedule(1000); // beta_min 0.1, beta_d 19.9
 * ```
 */
export function ndmContinuousSchedule(T: number): LogSnrSchedule {
  return vpLogSnrSchedule({ betaMin: 1e-4 * T, betaD: (0.02 - 1e-4) * T, tMin: 1 / T });
}

/**
 * The chain a run trains on: the T-step process, or its respacing to `config.steps` steps.
 *
 * @param process The T-step process.
 * @param config The run's `steps`.
 * @returns The training chain (network times stay the T-step process's).
 * @example
 * ```ts
 * import { ddpmProcess } from "../schedules/ddpm.ts";
 * import { ndmTrainingChain } from "./train_ndm.ts";
 * const chain = ndmTrainingChain(ddpmProcess(), { steps: 10 }); // chain.T = 10
 * ```
 */
export function ndmTrainingChain(process: DdpmProcess, config: { steps?: number }): DdpmProcess {
  const K = config.steps ?? process.T;
  return K === process.T
    ? process
    : respaceDdpm(process, spaceTimesteps(process.T, { numSteps: K }));
}

/**
 * Trains an NDM (or, with `transform: "identity"`, its DDPM baseline) from `config`.
 *
 * @param config The run's configuration (see `NDM_PRESETS`).
 * @param options Run directory, resume, signal, logging.
 * @returns Steps, images, last loss (NELBO estimate, bits/dim) and paths.
 * @throws {UserError} For bad data, an existing checkpoint without `resume`, a checkpoint that
 *   does not match, or a non-finite loss (the last good checkpoint is kept).
 * @example
 * ```ts ignore
 * import { NDM_PRESETS } from "./ndm_config.ts";
 * import { trainNdm } from "./train_ndm.ts";
 * await trainNdm({ ...NDM_PRESETS.toy, kimg: 1 }, { runDir: "runs/ndm-toy" });
 * ```
 */
export async function trainNdm(
  config: NdmTrainConfig,
  options: TrainLoopOptions,
): Promise<TrainLoopResult> {
  const { runDir, progress = true } = options;
  const { ckptPath, saved, log, started } = await openTrainerRun<NdmRunState>(config, options, {
    format: "diffuse-ndm/1",
    task: "train:ndm",
    frozen: FROZEN,
  });

  const dataset = await loadDataset(config.data);
  const rng = new Rng(config.seed);
  let spec: NdmModelSpec, params: Params, process: DdpmProcess;
  try {
    process = ddpmProcess({ T: config.T, schedule: config.schedule });
    const denoiser = modelSpecFor({ ...config, classConditional: false }, dataset);
    const transform = config.transform === "learned"
      ? modelSpecFor(
        { ...config, model: config.transformModel ?? config.model, classConditional: false },
        dataset,
      )
      : null;
    spec = { denoiser, transform };
    if (saved) {
      checkSameModel(saved.state.model, spec.denoiser, ckptPath);
      if (spec.transform && saved.state.transformModel) {
        checkSameModel(saved.state.transformModel, spec.transform, ckptPath);
      }
    }
    params = initNdmParams(spec, rng);
  } catch (e) {
    if (e instanceof RangeError) throw new UserError(`train:ndm: ${e.message}`);
    throw e;
  }
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
    `NDM (F ${config.transform}): ${countParams(params).toLocaleString("en-US")} parameters; ` +
      `data ${dataset.name}: ${dataset.count} examples of shape [${dataset.shape}]; ` +
      `T=${config.T} ${config.schedule} (${config.steps ?? config.T} training steps), ${
        config.continuous ? "continuous" : "discrete"
      } objective`,
  );

  const decoder: DdpmDecoder = dataset.shape.length === 1 ? "gaussian" : "discretized";
  const { eps, transform } = ndmNetworks(spec, params);
  const emaNets = ndmNetworks(spec, ema);
  const schedule = ndmContinuousSchedule(config.T);
  const chain = ndmTrainingChain(process, config);
  const gridProcess = respaceDdpm(
    chain,
    spaceTimesteps(chain.T, { numSteps: config.gridSteps }),
  );
  const gridSampler = ndmSampler(gridProcess, emaNets.transform, { eta: config.eta });
  const emaDenoiser = ddpmDenoiser(emaNets.eps, process);
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
  const updates = holdUpdates({ adam, ema, params }, config);

  const save = async (): Promise<void> => {
    const state: NdmRunState = {
      format: "diffuse-ndm/1",
      config,
      ...runState(run, { model: spec.denoiser, rng, adam }),
      transformModel: spec.transform,
    };
    await writeRunCheckpoint(ckptPath, { params, ema, adam: adamStateTensors(adam), state });
  };
  const preview = (path: string) =>
    writePreview(emaDenoiser, {
      config: { ...config, classConditional: false },
      dataset,
      path,
      sampler: gridSampler,
    });

  return await runTrainingLoop({
    counters: run,
    totalImages,
    batches: it,
    evaluate: trainStep,
    apply: updates.apply,
    discard: updates.discard,
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

  // One Algorithm 1 loss and gradient evaluation; returns the NELBO estimate (bits/dim).
  async function trainStep(batch: Batch): Promise<number> {
    const x0 = tf.tensor(batch.images, batch.shape, "float32");
    const noise = noiseSource.randn(x0.shape);
    const uniform = (shape: number[]) =>
      tf.tensor(rng.fillUniform(new Float32Array(shape.reduce((a, b) => a * b, 1))), shape);
    const opts = { training: config.dropout > 0, uniform };
    let lossFn: () => tf.Scalar;
    let noiseRec: tf.Tensor | undefined;
    if (config.continuous) {
      const { t, weights } = drawContinuousTimes(rng, { count: batch.size, schedule });
      noiseRec = noiseSource.randn(x0.shape);
      const z = noiseRec;
      lossFn = () => {
        const p = ndmContinuousTerms(eps, transform, x0, {
          schedule,
          T: config.T,
          decoder,
          t,
          noise,
          noiseRec: z,
          opts,
        });
        const perImage = tf.add(
          tf.add(p.prior, p.reconstruction),
          tf.mul(p.diffusion, tf.tensor1d(Float32Array.from(weights))),
        );
        return tf.mean(perImage) as tf.Scalar;
      };
    } else {
      const { t } = drawTimesteps(rng, { count: batch.size, T: chain.T });
      lossFn = () =>
        ndmLoss(eps, transform, x0, {
          process: chain,
          eta: config.eta,
          decoder,
          draws: { t, noise },
          opts,
        }).loss;
    }
    const { value, grads } = tf.variableGrads(lossFn, trainable);
    tf.dispose([x0, noise, noiseRec].filter((v) => v !== undefined));
    updates.hold(grads, run.imagesSeen, batch.size);
    const loss = (await value.data())[0];
    value.dispose();
    return loss;
  }
}
