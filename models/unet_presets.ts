/**
 * Named U-Net configurations (DDPM++ as in EDM, Karras et al. 2022, Table 7), as a typed record:
 * spread one to override a field, e.g. `{ ...UNET_PRESETS.cifar10, dropout: 0 }`.
 *
 * - `unet-bench`: exactly shared/bench/unet-bench.md (32x32x3, mc 32, mult [1, 2, 2], 2 blocks,
 *   attention at 16x16, no dropout): 1,592,643 parameters, 0.92 GFLOP per image forward. The
 *   PyTorch reference (shared/bench/torch_ref.py) builds the same network.
 * - `mnist-small`: 28x28x1 (levels 28, 14, 7), mc 16, mult [1, 2, 4], 1 block per level, attention
 *   at 7x7 only (49 positions, cheap): 581,137 parameters (581,313 class-conditional), about 235
 *   img/s at batch 128 on 2 cores with the native kernels; the default of `train:edm` (120 kimg,
 *   class-conditional, in about 9 minutes) and `train:ddpm`. In runs of about 10 minutes, more
 *   images beat a wider network at this budget: mnist-small for 145 kimg reached FD 22.7 where
 *   `mnist-medium` for 80 kimg reached 37.7 (1000 samples against mnist:train, classifier
 *   features).
 * - `mnist-medium`: the same with mc 32, mult [1, 2, 2]: 1,081,121 parameters, about half the
 *   speed; for longer runs.
 * - `cifar10`: EDM's CIFAR-10 DDPM++ (mc 128, mult [2, 2, 2], 4 blocks, attention at 16, dropout
 *   0.13, 9 augmentation labels; 56 M parameters) shrunk to mc 64, mult [1, 2, 2, 2], 2 blocks,
 *   dropout 0.1: 9,187,779 parameters, 3.6 GFLOP per image forward. It keeps the 16x16 attention
 *   and the 9-wide input of EDM's augment pipe (skipped when a batch carries no augment labels).
 *
 * @module
 */
import type { UNetConfig } from "./unet.ts";

/**
 * The named U-Net presets. Keys are the names tasks accept (`--preset mnist-small`).
 *
 * @example Build the benchmark network
 * ```ts
 * import "@tensorflow/tfjs-backend-cpu";
 * import { Rng } from "../core/rng.ts";
 * import { initUNetParams, unetNetwork } from "./unet.ts";
 * import { UNET_PRESETS } from "./unet_presets.ts";
 * const config = UNET_PRESETS["unet-bench"];
 * const net = unetNetwork(config, initUNetParams(config, new Rng(0)));
 * ```
 */
export const UNET_PRESETS = {
  "unet-bench": {
    imgResolution: 32,
    inChannels: 3,
    outChannels: 3,
    modelChannels: 32,
    channelMult: [1, 2, 2],
    numBlocks: 2,
    attnResolutions: [16],
    channelMultEmb: 4,
    dropout: 0,
    embedding: "positional",
  },
  "mnist-medium": {
    imgResolution: 28,
    inChannels: 1,
    outChannels: 1,
    modelChannels: 32,
    channelMult: [1, 2, 2],
    numBlocks: 1,
    attnResolutions: [7],
    channelMultEmb: 4,
    dropout: 0,
    embedding: "positional",
  },
  "mnist-small": {
    imgResolution: 28,
    inChannels: 1,
    outChannels: 1,
    modelChannels: 16,
    channelMult: [1, 2, 4],
    numBlocks: 1,
    attnResolutions: [7],
    channelMultEmb: 4,
    dropout: 0,
    embedding: "positional",
  },
  cifar10: {
    imgResolution: 32,
    inChannels: 3,
    outChannels: 3,
    modelChannels: 64,
    channelMult: [1, 2, 2, 2],
    numBlocks: 2,
    attnResolutions: [16],
    channelMultEmb: 4,
    dropout: 0.1,
    embedding: "positional",
    augmentDim: 9,
  },
} as const satisfies Record<string, UNetConfig>;

/** The name of a preset in {@linkcode UNET_PRESETS}. */
export type UNetPresetName = keyof typeof UNET_PRESETS;
