/**
 * Reliability (issue 15): damaged and hostile files give one clear UserError with bounded memory,
 * a kill -9 during a checkpoint write leaves a resumable run, one writer per run directory, and a
 * poisoned update right before a checkpoint still ends in a run that resumes and trains on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { loadCheckpoint, saveCheckpoint } from "../core/checkpoint.ts";
import { parseFlags } from "../core/flags.ts";
import { checkOutputPath } from "../core/path_checks.ts";
import { decodePng, encodePng } from "../data/png.ts";
import { loadPngFolder } from "../data/png_folder.ts";
import { modelParamShapes } from "../models/build_network.ts";
import { loadDenoiser } from "../training/load_denoiser.ts";
import { loadDdpm } from "../training/load_ddpm.ts";
import { loadFlow } from "../training/load_flow.ts";
import { loadNdm } from "../training/load_ndm.ts";
import { runTrainingLoop } from "../training/run_loop.ts";
import { acquireRunLock } from "../training/run_lock.ts";
import { readSafetensors, writeSafetensors } from "../core/safetensors.ts";
import { trainEdm } from "../training/train_edm.ts";
import { EDM_PRESETS } from "../training/edm_config.ts";
import type { Batch } from "../data/dataset.ts";
import { sampleHeun } from "../samplers/heun.ts";
import { damagedCheckpoints } from "./_damaged_checkpoints.ts";
import { assertUserError, ROOT, runTaskFile } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const MLP = { kind: "mlp", name: "mlp", config: { dim: 2, hidden: 8, layers: 1, labelDim: 0 } };
const quiet = { progress: false, log: () => {} };

/** A checkpoint written the way the trainers write one, for a tiny MLP. */
async function writeTiny(path: string, state: Record<string, unknown>, extra = {}) {
  const tensors: Record<string, { data: Float32Array; shape: number[] }> = { ...extra };
  for (const [name, shape] of Object.entries(modelParamShapes(MLP))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => 0.01 * Math.sin(i + 1));
    tensors[`net.${name}`] = { data, shape };
    tensors[`ema.${name}`] = { data: data.slice(), shape };
  }
  await saveCheckpoint(path, { tensors, state });
}

const EDM_STATE = { format: "diffuse-edm/1", config: { precond: "edm" }, model: MLP, step: 1 };
const DDPM_STATE = {
  format: "diffuse-ddpm/1",
  config: { T: 20, schedule: "linear" },
  model: MLP,
  step: 1,
};

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return e.message;
  }
  throw new Error("expected a rejection");
}

function rssMb(): number {
  return Deno.memoryUsage().rss / 2 ** 20;
}

Deno.test("damaged and hostile checkpoints each give their message, with bounded memory", async () => {
  const dir = await Deno.makeTempDir();
  const good = join(dir, "good.safetensors");
  await writeTiny(good, EDM_STATE);
  const cases: [string, Uint8Array | "dir" | "sidecar", RegExp][] = [
    ...damagedCheckpoints(await Deno.readFile(good)).map((c) =>
      [c.name, c.bytes, c.pattern] as [string, Uint8Array, RegExp]
    ),
    ["a folder", "dir", /is a folder, not a checkpoint/],
    ["the JSON sidecar", "sidecar", /is the JSON sidecar/],
  ];
  const before = rssMb();
  for (const [name, content, pattern] of cases) {
    let path = join(dir, `${name.replaceAll(" ", "_")}.safetensors`);
    if (content === "dir") await Deno.mkdir(path);
    else if (content === "sidecar") path = join(dir, "good.json");
    else await Deno.writeFile(path, content);
    const message = await rejection(loadDenoiser(path));
    assert.match(message, pattern, `${name}: ${message}`);
    assert.ok(
      message.includes(path) || message.includes(dir),
      `${name} names the file: ${message}`,
    );
  }
  // A checkpoint written before checksums existed (no "diffuse.sha256") still loads.
  const old = join(dir, "old.safetensors");
  const { tensors, metadata } = await readSafetensors(good);
  await writeSafetensors(old, tensors, { metadata: { diffuse: metadata.diffuse } });
  (await loadDenoiser(old)).dispose();
  // Extra tensors in the group a sampler does not use are found too.
  const extra = join(dir, "extra.safetensors");
  await writeTiny(extra, EDM_STATE, { "net.stray": { data: new Float32Array(4), shape: [4] } });
  assert.match(await rejection(loadDenoiser(extra)), /1 not in the network \(stray \[4\]\)/);
  assert.ok(rssMb() - before < 300, `memory grew by ${rssMb() - before} MB`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("one kind check: EDM tasks sample DDPM checkpoints, DDPM loaders name the task to use", async () => {
  const dir = await Deno.makeTempDir();
  const ddpm = join(dir, "ddpm.safetensors"), edm = join(dir, "edm.safetensors");
  await writeTiny(ddpm, DDPM_STATE);
  await writeTiny(edm, EDM_STATE);
  const loaded = await loadDenoiser(ddpm);
  assert.equal(loaded.denoiser.kind, "ddpm");
  assert.deepEqual(loaded.shape, [2]);
  const sigmas = Float64Array.from([loaded.denoiser.sigmaMax, 1, loaded.denoiser.sigmaMin, 0]);
  const { x } = await sampleHeun(loaded.denoiser, tf.mul(tf.randomNormal([3, 2]), sigmas[0]), {
    sigmas,
  });
  assert.ok((await x.data()).every(Number.isFinite));
  x.dispose();
  loaded.dispose();
  assert.match(
    await rejection(loadDdpm(edm)),
    /is a train:edm checkpoint \(diffuse-edm\/1\) but sample:ddpm reads checkpoints written by train:ddpm: use sample:edm/,
  );
  const badT = join(dir, "bad_t.safetensors");
  await writeTiny(badT, { ...DDPM_STATE, config: { T: 1e12, schedule: "linear" } });
  assert.match(
    await rejection(loadDenoiser(badT)),
    /T = 1000000000000 is not an integer in 1\.\.100000/,
  );
  // train:edm --resume refuses the DDPM run's checkpoint with the task to use.
  const run = join(dir, "run");
  await Deno.mkdir(run);
  await Deno.copyFile(ddpm, join(run, "checkpoint.safetensors"));
  assert.match(
    await rejection(trainEdm({ ...EDM_PRESETS.toy }, { runDir: run, resume: true, ...quiet })),
    /train:edm --resume reads checkpoints written by train:edm: use .*train:ddpm --resume/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("NDM and flow checkpoints are in the kind table: each loader names the task to use", async () => {
  const dir = await Deno.makeTempDir();
  const edm = join(dir, "edm.safetensors"), ndm = join(dir, "ndm.safetensors");
  const flow = join(dir, "flow.safetensors");
  const tensorsBefore = tf.memory().numTensors;
  await writeTiny(edm, EDM_STATE);
  await writeTiny(ndm, { ...EDM_STATE, format: "diffuse-ndm/1" });
  await writeTiny(flow, { ...EDM_STATE, format: "diffuse-flow/1" });
  const ndmHere =
    /is a train:ndm checkpoint \(diffuse-ndm\/1\) but .*: use sample:ndm, eval:ndm, train:ndm --resume for it/;
  const flowHere =
    /is a train:glow checkpoint \(diffuse-flow\/1\) but .*: use sample:glow, train:glow --resume for it/;
  for (const [path, pattern] of [[ndm, ndmHere], [flow, flowHere]] as const) {
    assert.match(await rejection(loadDenoiser(path, { task: "eval" })), pattern);
    assert.match(await rejection(loadDdpm(path)), pattern);
  }
  assert.match(await rejection(loadFlow(ndm)), ndmHere);
  assert.match(await rejection(loadNdm(flow)), flowHere);
  for (const load of [loadNdm, loadFlow]) {
    assert.match(
      await rejection(load(edm, { task: "eval:ndm" })),
      /is a train:edm checkpoint \(diffuse-edm\/1\) but eval:ndm reads .*: use sample:edm, sample:s2n, sample:sde, eval, train:edm --resume, train:dinof --score-checkpoint for it/,
    );
  }
  // By subprocess: exit 2 and the one line, before any sampling.
  assertUserError(
    await runTaskFile("sample_edm", ["--checkpoint", ndm, "--out", join(dir, "s.png")]),
    /but sample:edm reads checkpoints written by train:edm or train:ddpm: use sample:ndm/,
  );
  assertUserError(
    await runTaskFile("sample_glow", ["--checkpoint", edm, "--out", join(dir, "g.png")]),
    /but sample:glow reads checkpoints written by train:glow: use sample:edm/,
  );
  // train:ndm / train:glow --resume refuse another trainer's run.
  const run = join(dir, "run");
  await Deno.mkdir(run);
  await Deno.copyFile(edm, join(run, "checkpoint.safetensors"));
  for (const name of ["train_ndm", "train_glow"]) {
    assertUserError(
      await runTaskFile(name, ["--preset", "toy", "--resume", "--out", run]),
      new RegExp(
        `${name.replace("_", ":")} --resume reads checkpoints written by ${
          name.replace("_", ":")
        }: use sample:edm`,
      ),
    );
  }
  assert.equal(tf.memory().numTensors, tensorsBefore);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a PNG header claiming 100000 x 100000 pixels is refused before decoding", async () => {
  const small = encodePng({ data: new Float32Array(64), shape: [8, 8, 1] });
  const huge = small.slice();
  const view = new DataView(huge.buffer);
  view.setUint32(16, 100000);
  view.setUint32(20, 100000);
  const before = rssMb();
  assert.throws(
    () => decodePng(huge, { source: "huge.png" }),
    /huge\.png declares 100000x100000 pixels, above the limit of 16777216/,
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(join(dir, "a.png"), small);
  await Deno.writeFile(join(dir, "b.png"), huge);
  await assert.rejects(
    loadPngFolder(dir),
    (e) => e instanceof UserError && /b\.png is 100000x100000 .*\/a\.png is 8x8/.test(e.message),
  );
  assert.ok(rssMb() - before < 100, `memory grew by ${rssMb() - before} MB`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("flags: non-finite, beyond 2^53, empty list items, empty and over-long paths are UserErrors", async () => {
  const specs = {
    seed: { type: "int", help: "" },
    lr: { type: "number", help: "" },
    "channel-mult": { type: "list", help: "" },
    out: { type: "string", path: "file", help: "" },
  } as const;
  const cases: [string[], RegExp][] = [
    [["--seed", "1e300"], /--seed must be an integer of at most 2\^53 - 1/],
    [["--seed", "9007199254740993"], /--seed must be an integer of at most 2\^53 - 1/],
    [["--lr", "Infinity"], /--lr must be a finite number/],
    [["--channel-mult", "1,,2"], /--channel-mult has an empty item/],
    [["--channel-mult", "1,2,"], /--channel-mult has an empty item/],
    [["--out", ""], /--out must not be empty/],
    [["--out", "a/" + "x".repeat(300)], /--out has a name of 300 bytes/],
    [["--out", "x/".repeat(2100)], /--out is 4200 bytes long|--out is 4200 characters/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(
      () => parseFlags(args, specs, { task: "t" }),
      (e) => e instanceof UserError && pattern.test(e.message),
    );
  }
  const dir = await Deno.makeTempDir();
  const ckpt = join(dir, "c.safetensors");
  await Deno.writeFile(ckpt, new Uint8Array(4));
  await Deno.link(ckpt, join(dir, "alias.png"));
  for (const out of [ckpt, join(dir, ".", "c.safetensors"), join(dir, "alias.png")]) {
    await assert.rejects(
      checkOutputPath(out, { inputs: [ckpt], task: "sample:edm" }),
      (e) => e instanceof UserError && /is also an input of this task/.test(e.message),
    );
  }
  await checkOutputPath(join(dir, "samples.png"), { inputs: [ckpt] });
  await assert.rejects(
    checkOutputPath(join(ckpt, "x", "s.png")),
    (e) => e instanceof UserError && /is under .*c\.safetensors, which is a file/.test(e.message),
  );
  await assert.rejects(
    acquireRunLock(join(ckpt, "run"), () => {}),
    (e) => e instanceof UserError && /cannot create the run directory .*is a file/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sample:edm --out equal to its --checkpoint exits 2 and leaves the checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const ckpt = join(dir, "checkpoint.safetensors");
  await writeTiny(ckpt, EDM_STATE);
  const before = await Deno.readFile(ckpt);
  const out = await runTaskFile("sample_edm", ["--checkpoint", ckpt, "--out", ckpt], {
    DIFFUSE_BACKEND: "cpu",
  });
  assertUserError(out, /--out ".*checkpoint\.safetensors" is also an input of this task/);
  assert.deepEqual(await Deno.readFile(ckpt), before);
  await Deno.remove(dir, { recursive: true });
});

/** A one-weight "trainer" on the shared loop: loss (w - 1)^2 + 0.1, SGD, poisoned at one step. */
async function toyRun(
  runDir: string,
  options: { poisonAt?: number; resume?: boolean; steps: number },
) {
  const path = join(runDir, "checkpoint.safetensors");
  await Deno.mkdir(runDir, { recursive: true });
  let w = 5;
  const run = { step: 0, imagesSeen: 0, trainSeconds: 0, lastLoss: NaN, position: null };
  if (options.resume) {
    const { state } = await loadCheckpoint<{ step: number; w: number }>(path);
    w = state.w;
    Object.assign(run, { step: state.step, imagesSeen: state.step * 1000 });
  }
  let grad = 0;
  const batches: Iterator<Batch> = {
    next: () => ({ value: { size: 1000, next: null } as unknown as Batch, done: false }),
  };
  return await runTrainingLoop({
    counters: run,
    totalImages: options.steps * 1000,
    batches,
    evaluate: () => {
      grad = 2 * (w - 1);
      return Promise.resolve((w - 1) ** 2 + 0.1);
    },
    gradNorm: () => Promise.resolve(Math.abs(grad)),
    apply: () => {
      w -= 0.05 * grad;
      if (run.step + 1 === options.poisonAt) w += 1e4; // a finite update that wrecks the weights
    },
    discard: () => {},
    save: () =>
      saveCheckpoint(path, {
        tensors: { "net.w": { data: new Float32Array([w]), shape: [1] } },
        state: { format: "toy", config: {}, model: MLP, step: run.step, w },
      }),
    preview: (p) => Promise.resolve(p),
    cadence: { logEvery: 1, checkpointKimg: 4, sampleKimg: 1e9 },
    schedule: { lr: 0.05, lrRampupKimg: 0 },
    bar: null,
    started: performance.now(),
    maxMinutes: 0,
    checkpointPath: path,
    nonFiniteHint: "Lower --lr",
  }, { runDir, log: () => {}, divergence: { warmup: 5 } });
}

Deno.test("a poisoned update right before a checkpoint ends in a run that resumes and trains on", async () => {
  const dir = await Deno.makeTempDir();
  // Checkpoints at steps 4, 8, 12; the update of step 12 is poisoned, then saved.
  const message = await rejection(toyRun(dir, { poisonAt: 12, steps: 40 }));
  assert.match(message, /training diverged at step 15 \(3 steps in a row spiked/);
  assert.match(
    message,
    /last good checkpoint is kept at .*checkpoint\.safetensors \(step 8, confirmed healthy; --resume/,
  );
  const kept = await loadCheckpoint<{ step: number; w: number }>(
    join(dir, "checkpoint.safetensors"),
  );
  assert.equal(kept.state.step, 8);
  assert.ok(Math.abs(kept.state.w) < 10);
  // The poisoned version is still there under its own name; nothing is lost.
  const poisoned = await loadCheckpoint<{ w: number }>(
    join(dir, "checkpoint-00000012.safetensors"),
  );
  assert.ok(poisoned.state.w > 1000);
  const resumed = await toyRun(dir, { resume: true, steps: 40 });
  assert.equal(resumed.step, 40);
  assert.ok(resumed.lastLoss < 0.2, `loss ${resumed.lastLoss}`);
  await Deno.remove(dir, { recursive: true });
});

/** Starts `train:edm --preset toy` on `dir` with a checkpoint every step; resolves once one exists. */
async function startToyTraining(
  dir: string,
  options: { stderr?: "null" | "piped"; resume?: boolean } = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "tasks/train_edm.ts"),
      ...["--preset", "toy", "--out", dir, "--batch", "16", "--channels", "512", "--kimg", "1000"],
      ...["--checkpoint-every", "0.016", "--sample-every", "1000"],
      ...(options.resume ? ["--resume"] : []),
    ],
    env: { NO_COLOR: "1", DIFFUSE_BACKEND: "cpu" },
    stdout: "null",
    stderr: options.stderr ?? "null",
  }).spawn();
  const ckpt = join(dir, "checkpoint.safetensors");
  for (let i = 0; i < 600 && !(await Deno.stat(ckpt).then(() => true, () => false)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

Deno.test("Ctrl-C stops a training run with exit code 130 after saving", async () => {
  const dir = await Deno.makeTempDir();
  const child = await startToyTraining(dir, { stderr: "piped" });
  child.kill("SIGINT");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 130, stderr);
  assert.match(stderr, /interrupted: continue with --resume --out/);
  const { state } = await loadCheckpoint<{ step: number }>(join(dir, "checkpoint.safetensors"));
  assert.ok(state.step >= 1);
  assert.equal(await Deno.stat(join(dir, "run.lock")).then(() => true, () => false), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("kill -9 during checkpoint writes, then resume; a second writer is refused meanwhile", async () => {
  const dir = await Deno.makeTempDir();
  const child = await startToyTraining(dir);
  // A second run on the same folder refuses while the first holds it.
  const second = await rejection(trainEdm({ ...EDM_PRESETS.toy }, { runDir: dir, ...quiet }));
  assert.match(second, new RegExp(`is in use by another run \\(pid ${child.pid} on `));
  // Kill -9 at random moments, often inside a checkpoint write (one is written every step);
  // each time the checkpoint must load (checksum verified) and the next run resume from it.
  let killed = child;
  for (let round = 0; round < 3; round++) {
    if (round > 0) killed = await startToyTraining(dir, { resume: true });
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 600));
    killed.kill("SIGKILL");
    await killed.status;
    const { state } = await loadCheckpoint<{ step: number }>(join(dir, "checkpoint.safetensors"));
    assert.ok(state.step >= 1);
  }
  // A temporary file as a kill inside a write leaves it (the window is short, so make sure).
  // Every file of the run is written atomically: the history index and numbered copies too.
  for (
    const name of [
      ".checkpoint.safetensors.99999.0.deadbeef.tmp",
      ".checkpoints.json.99999.1.deadbeef.tmp",
      ".checkpoint-00000001.safetensors.99999.2.deadbeef.tmp",
    ]
  ) await Deno.writeFile(join(dir, name), new Uint8Array(9));
  const notes: string[] = [];
  const result = await trainEdm({ ...EDM_PRESETS.toy, batchSize: 16, channels: 512, kimg: 1000 }, {
    runDir: dir,
    resume: true,
    progress: false,
    log: (m) => notes.push(m),
    maxSteps: 2,
  });
  assert.ok(result.step >= 3, `resumed at step ${result.step - 2}`);
  assert.ok(
    notes.some((n) =>
      /taking over the stale lock .* of pid \d+ on .* \(no longer running\)/.test(n)
    ),
    notes.join("\n"),
  );
  assert.ok(
    notes.some((n) => /removed .*\.tmp, left by an interrupted checkpoint write/.test(n)),
    notes.join("\n"),
  );
  const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
  assert.deepEqual(leftovers, []);
  assert.equal(await Deno.stat(join(dir, "run.lock")).then(() => true, () => false), false);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a fresh run in a folder with old metrics but no checkpoint moves them aside", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), '{"step":1,"loss":9}\n');
  const notes: string[] = [];
  await trainEdm({ ...EDM_PRESETS.toy, batchSize: 16, kimg: 0.032, logEvery: 1 }, {
    runDir: dir,
    progress: false,
    log: (m) => notes.push(m),
    maxSteps: 2,
  });
  const metrics = (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n");
  assert.deepEqual(metrics.map((l) => JSON.parse(l).step), [1, 2]);
  assert.ok(JSON.parse(metrics[0]).loss !== 9);
  const aside = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".jsonl.old"));
  assert.ok(aside, "old metrics kept");
  assert.ok(notes.some((n) => n.includes("moved it to")));
  await Deno.remove(dir, { recursive: true });
});

// Needs root, to mount a small tmpfs (asked with `id -u`: Deno.uid() needs --allow-sys).
const canMount = await new Deno.Command("id", { args: ["-u"], stdout: "piped", stderr: "null" })
  .output().then((o) => new TextDecoder().decode(o.stdout).trim() === "0", () => false);

Deno.test({
  name: "a full disk names the checkpoint and keeps the previous one",
  ignore: !canMount,
  async fn() {
    const dir = await Deno.makeTempDir();
    const mounted = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir],
      stderr: "null",
    }).output();
    if (!mounted.success) return await Deno.remove(dir);
    try {
      const path = join(dir, "checkpoint.safetensors");
      const state = { step: 1 };
      await saveCheckpoint(path, {
        tensors: { w: { data: new Float32Array(16), shape: [16] } },
        state,
      });
      const big = { w: { data: new Float32Array(1 << 17), shape: [1 << 17] } };
      await assert.rejects(
        saveCheckpoint(path, { tensors: big, state: { step: 2 } }),
        (e) =>
          e instanceof UserError && e.message.includes(path) &&
          /disk is full \(ENOSPC\)/.test(e.message),
      );
      const { state: kept } = await loadCheckpoint<{ step: number }>(path);
      assert.equal(kept.step, 1);
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
