/**
 * NDM's Figure 2a in miniature (NDM paper, Section 4.2): an NDM with a learned F_phi trained on
 * the 2-D checkerboard (`toy:checkerboard`, MLPs for eps_theta and NN_phi), then F_phi(x, t)
 * applied to held-out checkerboard points at t = 0, 0.25, 0.5, 0.75, 1, one SVG scatter each, and
 * a scatter of Algorithm 2 samples over the data.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi recipes/ndm_checkerboard.ts --kimg 30
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { formatHelp, parseFlags, wantsHelp } from "../core/flags.ts";
import { Rng } from "../core/rng.ts";
import { writeFileAtomic } from "../core/atomic_write.ts";
import { makeToy } from "../data/toy2d.ts";
import { scatterSvg } from "../data/svg_scatter.ts";
import { generateSamples } from "../samplers/generate.ts";
import { ndmSampler } from "../samplers/ndm_ancestral.ts";
import { respaceDdpm, spaceTimesteps } from "../schedules/ddpm.ts";
import { transformStrip } from "../eval/ndm_pictures.ts";
import { NDM_PRESETS, type NdmTrainConfig } from "../training/ndm_config.ts";
import { trainNdm } from "../training/train_ndm.ts";
import { loadNdm } from "../training/load_ndm.ts";
import { fileExists } from "../training/_loop_utils.ts";
import { CHECKPOINT_FILE } from "../training/run_checkpoint.ts";
import { runTask } from "../tasks/_main.ts";
import { BACKEND_FLAG } from "../tasks/_flags.ts";

/** The recipe's run: the toy preset on the checkerboard (spread to override). */
export const NDM_CHECKERBOARD: NdmTrainConfig = {
  ...NDM_PRESETS.toy,
  data: "toy:checkerboard",
  kimg: 30,
};

/** The times of the figure. */
export const FIGURE_TIMES: readonly number[] = [0, 0.25, 0.5, 0.75, 1];

const FLAGS = {
  kimg: { type: "number", default: 30, gt: 0, help: "training length in kimg" },
  points: { type: "int", default: 2000, min: 10, help: "points per scatter" },
  out: { type: "string", default: "runs/ndm-checkerboard", help: "output folder" },
  backend: BACKEND_FLAG,
} as const;

const HELP = {
  task: "recipes/ndm_checkerboard.ts",
  summary: "Trains an NDM on the 2-D checkerboard and draws F_phi(x, t) at five times (SVG), as\n" +
    "NDM's Figure 2a, with a scatter of samples.",
  examples: ["deno run -A recipes/ndm_checkerboard.ts --kimg 30"],
};

await runTask(async (args) => {
  if (wantsHelp(args)) return console.log(formatHelp(FLAGS, HELP));
  const f = parseFlags(args, FLAGS, { task: "ndm_checkerboard" });
  await selectBackend({ backend: f.backend });
  const runDir = f.out!, ckpt = join(runDir, CHECKPOINT_FILE);
  await trainNdm({ ...NDM_CHECKERBOARD, kimg: f.kimg! }, {
    runDir,
    resume: await fileExists(ckpt),
    progress: false,
  });
  const model = await loadNdm(ckpt);
  try {
    const { transform, denoiser, process, shape } = model;
    // Held-out points: a fresh draw with another seed.
    const data = makeToy("checkerboard", { count: f.points!, rng: new Rng(12345) });
    const x = tf.tensor(data.images, [f.points!, ...shape]);
    const strip = transformStrip(transform, x, FIGURE_TIMES);
    const all = await strip.data() as Float32Array;
    tf.dispose([x, strip]);
    const m = FIGURE_TIMES.length;
    for (const [j, t] of FIGURE_TIMES.entries()) {
      const pts = new Float32Array(2 * f.points!);
      for (let i = 0; i < f.points!; i++) {
        pts.set(all.subarray((i * m + j) * 2, (i * m + j) * 2 + 2), 2 * i);
      }
      const path = join(runDir, `transform_t${t.toFixed(2)}.svg`);
      await writeFileAtomic(path, scatterSvg([pts], { title: `F_phi(x, ${t})` }));
      console.log(`wrote ${path}`);
    }
    const chain = respaceDdpm(process, spaceTimesteps(process.T, { numSteps: 100 }));
    const seeds = Array.from({ length: f.points! }, (_, i) => i);
    const samples = await generateSamples(denoiser, {
      seeds,
      shape,
      sampler: ndmSampler(chain, transform),
      batchSize: 1000,
    });
    const path = join(runDir, "samples.svg");
    await writeFileAtomic(
      path,
      scatterSvg([data.images, samples.images], { title: "data (blue), NDM samples (red)" }),
    );
    console.log(`wrote ${path}`);
  } finally {
    model.dispose();
  }
});
