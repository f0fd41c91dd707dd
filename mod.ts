/**
 * diffuse: diffusion generative models on TensorFlow.js for Deno. DDPM, EDM, the signal-to-noise
 * view, Neural Diffusion Models and DiNof as one modular toolkit; see README.md.
 *
 * Every module is also importable on its own through its subpath export (e.g.
 * `@diffuse/diffuse/samplers/heun`).
 *
 * @example Sample with Heun from an ideal denoiser
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { karrasSigmas, sampleHeun, selectBackend } from "./mod.ts";
 * await selectBackend({ backend: "cpu", log: () => {} });
 * const sigmas = karrasSigmas({ numSteps: 8 });
 * const x0 = tf.mul(tf.randomNormal([4, 2]), sigmas[0]);
 * const { x } = await sampleHeun((x) => tf.zerosLike(x), x0, { sigmas });
 * ```
 *
 * @module
 */
export * from "./core/atomic_write.ts";
export * from "./core/checkpoint.ts";
export * from "./core/engine.ts";
export * from "./core/errors.ts";
export * from "./core/flags.ts";
export * from "./core/noise.ts";
export * from "./core/params.ts";
export * from "./core/progress.ts";
export * from "./core/rng.ts";
export * from "./core/safetensors.ts";
export * from "./core/seeds.ts";
export * from "./core/types.ts";
export * from "./core/wasm_kernels.ts";
export * from "./schedules/ddpm.ts";
export * from "./schedules/edm.ts";
export * from "./schedules/equivalence.ts";
export * from "./schedules/forward_sde.ts";
export * from "./schedules/iddpm.ts";
export * from "./schedules/karras_steps.ts";
export * from "./schedules/log_snr.ts";
export * from "./schedules/noise_schedule.ts";
export * from "./schedules/s2n_grids.ts";
export * from "./schedules/s2n_schedules.ts";
export * from "./schedules/time_steps.ts";
export * from "./schedules/types.ts";
export * from "./schedules/ve.ts";
export * from "./schedules/vp.ts";
export * from "./models/build_network.ts";
export * from "./models/ddpm_param.ts";
export * from "./models/ideal_denoiser.ts";
export * from "./models/layers.ts";
export * from "./models/mlp.ts";
export * from "./models/param_specs.ts";
export * from "./models/precond.ts";
export * from "./models/precond_edm.ts";
export * from "./models/precond_iddpm.ts";
export * from "./models/precond_ve.ts";
export * from "./models/precond_vp.ts";
export * from "./models/unet.ts";
export * from "./models/unet_presets.ts";
export * from "./samplers/ddim.ts";
export * from "./samplers/ddpm_ancestral.ts";
export * from "./samplers/ddpm_generate.ts";
export * from "./samplers/edm_stochastic.ts";
export * from "./samplers/euler.ts";
export * from "./samplers/generate.ts";
export * from "./samplers/heun.ts";
export * from "./samplers/s2n_backward.ts";
export * from "./samplers/s2n_generate.ts";
export * from "./samplers/s2n_nonmarkov.ts";
export * from "./samplers/s2n_sde.ts";
export * from "./samplers/types.ts";
export * from "./training/adam.ts";
export * from "./training/augment.ts";
export * from "./training/ddpm_config.ts";
export * from "./training/ddpm_importance.ts";
export * from "./training/ddpm_loss.ts";
export * from "./training/denoising_loss.ts";
export * from "./training/edm_config.ts";
export * from "./training/ema.ts";
export * from "./training/load_ddpm.ts";
export * from "./training/load_denoiser.ts";
export * from "./training/loss_edm.ts";
export * from "./training/loss_ve.ts";
export * from "./training/loss_vp.ts";
export * from "./training/metrics_log.ts";
export * from "./training/objective.ts";
export * from "./training/preview.ts";
export * from "./training/run_checkpoint.ts";
export * from "./training/run_config.ts";
export * from "./training/run_loop.ts";
export * from "./training/train_classifier.ts";
export * from "./training/train_ddpm.ts";
export * from "./training/train_edm.ts";
export * from "./training/train_loop_types.ts";
export * from "./data/cifar10.ts";
export * from "./data/dataset.ts";
export * from "./data/load_dataset.ts";
export * from "./data/mnist.ts";
export * from "./data/png.ts";
export * from "./data/png_folder.ts";
export * from "./data/svg_plot.ts";
export * from "./data/svg_scatter.ts";
export * from "./data/toy2d.ts";
export * from "./eval/bits_per_dim.ts";
export * from "./eval/classifier_accuracy.ts";
export * from "./eval/ddpm_bound.ts";
export * from "./eval/ddpm_interpolate.ts";
export * from "./eval/ddpm_progressive.ts";
export * from "./eval/discretized_gaussian.ts";
export * from "./eval/divergence.ts";
export * from "./eval/evaluate.ts";
export * from "./eval/feature_stats.ts";
export * from "./eval/feature_stats_file.ts";
export * from "./eval/frechet.ts";
export * from "./eval/inception_params.ts";
export * from "./eval/inception_score.ts";
export * from "./eval/inception_v3.ts";
export * from "./eval/kid.ts";
export * from "./eval/likelihood.ts";
export * from "./eval/linalg.ts";
export * from "./eval/mmse.ts";
export * from "./eval/mnist_classifier.ts";
export * from "./eval/precision_recall.ts";
export * from "./eval/rate_distortion.ts";
export * from "./eval/rk45.ts";
export * from "./eval/trace_sqrt_product.ts";
export * from "./eval/types.ts";
export * from "./models/ndm_transform.ts";
export * from "./models/ndm_model.ts";
export * from "./training/ndm_loss.ts";
export * from "./training/ndm_continuous.ts";
export * from "./training/ndm_config.ts";
export * from "./training/train_ndm.ts";
export * from "./training/load_ndm.ts";
export * from "./samplers/ndm_ancestral.ts";
export * from "./eval/ndm_bound.ts";
export * from "./eval/ndm_pictures.ts";
export * from "./eval/ndm_likelihood.ts";
export * from "./samplers/ndm_ode.ts";
