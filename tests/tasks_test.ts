/**
 * The tasks end to end, as a user runs them: exit codes, one-line errors for bad input, and a
 * tiny train -> resume -> sample round trip on PNG images made here.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { readPng, writePng } from "../data/png.ts";
import { assertUserError, runTaskFile as task, spawnTaskFile } from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/** A folder of 8x8 gray PNGs in two class subfolders. */
async function makePngFolder(dir: string, count = 8) {
  for (const cls of ["a", "b"]) {
    await Deno.mkdir(join(dir, cls), { recursive: true });
    for (let i = 0; i < count / 2; i++) {
      const data = new Float32Array(64).map((_, j) => (j % 8 < 4) === (cls === "a") ? 1 : -1);
      await writePng(join(dir, cls, `${i}.png`), { data, shape: [8, 8, 1] });
    }
  }
}

const TINY = ["--model", "mnist-small", "--channels", "8", "--batch", "4", "--log-every", "1"];

Deno.test("train:edm and sample:edm print --help with examples", async () => {
  for (const name of ["train_edm", "sample_edm"]) {
    const r = await task(name, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Examples:/);
    assert.match(r.stdout, /--seed|--seeds/);
  }
});

Deno.test("train:edm --dry-run prints the resolved options", async () => {
  const r = await task("train_edm", ["--dry-run", "--lr", "2e-4", "--batch", "32"]);
  assert.equal(r.code, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  assert.equal(printed.config.lr, 2e-4);
  assert.equal(printed.config.batchSize, 32);
  assert.equal(printed.config.data, "mnist:train");
});

Deno.test("bad flags exit with code 2 and one line naming the flag", async () => {
  assertUserError(await task("train_edm", ["--lr", "-1"]), /--lr must be greater than 0/);
  assertUserError(await task("train_edm", ["--batch", "abc"]), /--batch must be a number/);
  assertUserError(await task("train_edm", ["--bogus"]), /unknown flag --bogus/);
  assertUserError(await task("sample_edm", ["--steps", "0"]), /--steps must be at least 1/);
  assertUserError(await task("sample_edm", ["--sampler", "ddim"]), /--sampler must be one of/);
});

Deno.test("a missing data path is a one-line error", async () => {
  const dir = await Deno.makeTempDir();
  const r = await task("train_edm", ["--data", "png:/no/such/folder", "--out", dir]);
  assertUserError(r, /\/no\/such\/folder/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("missing, truncated and corrupt checkpoints are one-line errors", async () => {
  const dir = await Deno.makeTempDir();
  assertUserError(
    await task("sample_edm", ["--checkpoint", join(dir, "none.safetensors")]),
    /no checkpoint at .*none\.safetensors/,
  );
  const bad = join(dir, "bad.safetensors");
  await Deno.writeFile(bad, new Uint8Array([1, 2, 3]));
  assertUserError(
    await task("sample_edm", ["--checkpoint", bad]),
    /bad\.safetensors.*(corrupt|truncated)/,
  );
  await Deno.writeTextFile(bad, "\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}");
  assertUserError(await task("sample_edm", ["--checkpoint", bad]), /bad\.safetensors/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train -> interrupt-free resume -> sample on PNG images, with class labels and augmentation", async () => {
  const dir = await Deno.makeTempDir();
  const data = join(dir, "pngs"), out = join(dir, "run");
  await makePngFolder(data);
  const common = ["--data", `png:${data}`, ...TINY, "--cond", "--augment", "0.5", "--out", out];
  const first = await task("train_edm", [...common, "--kimg", "0.008"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /done: 2 steps/);
  // Resuming with a different architecture is refused, and the checkpoint stays intact.
  const before = await Deno.readFile(join(out, "checkpoint.safetensors"));
  const mismatch = await task("train_edm", [
    ...common,
    "--kimg",
    "0.016",
    "--resume",
    "--channels",
    "16",
  ]);
  assertUserError(mismatch, /cannot resume .*network/);
  assert.deepEqual(await Deno.readFile(join(out, "checkpoint.safetensors")), before);
  const resumed = await task("train_edm", [...common, "--kimg", "0.016", "--resume"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /done: 4 steps/);
  const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n");
  assert.deepEqual(metrics.map((l) => JSON.parse(l).step), [1, 2, 3, 4]);
  const grid = join(dir, "grid.png"), each = join(dir, "each");
  const sampled = await task("sample_edm", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--seeds",
    "0-3",
    "--steps",
    "3",
    "--out",
    grid,
    "--images-dir",
    each,
  ]);
  assert.equal(sampled.code, 0, sampled.stderr);
  assert.match(sampled.stdout, /4 images, 5 evaluations each/);
  assert.equal([...Deno.readDirSync(each)].length, 4);
  const s2n = await task("sample_s2n", [
    "--checkpoint",
    join(out, "checkpoint.safetensors"),
    "--seeds",
    "0-1",
    "--steps",
    "3",
    "--rho",
    "1",
    "--gamma",
    "1.25",
    "--delta",
    "0.95",
    "--out",
    join(dir, "s2n.png"),
  ]);
  assert.equal(s2n.code, 0, s2n.stderr);
  assert.match(s2n.stdout, /2 images, 3 evaluations each/);
  assert.ok((await Deno.stat(grid)).size > 100);
  assert.equal(tf.memory().numTensors, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Ctrl-C during train:edm saves a checkpoint and exits 130; --resume continues", async () => {
  const dir = await Deno.makeTempDir();
  const data = join(dir, "pngs"), out = join(dir, "run");
  await makePngFolder(data);
  const args = ["--data", `png:${data}`, ...TINY, "--kimg", "100", "--out", out];
  const child = spawnTaskFile("train_edm", args);
  const dec = new TextDecoder();
  let stderr = "";
  const reader = child.stderr.getReader();
  // Wait until training has started, then interrupt it.
  while (!/parameters/.test(stderr)) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += dec.decode(value);
  }
  await new Promise((r) => setTimeout(r, 1500));
  child.kill("SIGINT");
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += dec.decode(value);
    }
  })();
  const [status, stdout] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    pump,
  ]);
  assert.equal(status.code, 130, stderr); // 128 + SIGINT, after saving
  assert.match(stderr, /interrupted: saving a checkpoint/);
  assert.match(stdout, /stopped early: interrupted/);
  const steps = Number(stdout.match(/done: (\d+) steps/)![1]);
  assert.ok(steps > 0);
  const resumed = await task("train_edm", [
    ...args.slice(0, -4),
    "--kimg",
    String((steps + 1) * 0.004),
    "--out",
    out,
    "--resume",
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, new RegExp(`done: ${steps + 1} steps`));
  await Deno.remove(dir, { recursive: true });
});

// ---------- sample:edm with the k-diffusion samplers, guidance, img2img and inpainting ----------

Deno.test("sample:edm rejects a flag that does not apply to the chosen sampler (exit 2)", async () => {
  assertUserError(
    await task("sample_edm", ["--sampler", "heun", "--eta", "1"]),
    /--eta does not apply to --sampler heun/,
  );
  assertUserError(
    await task("sample_edm", ["--sampler", "dpmpp-2m", "--order", "3"]),
    /--order does not apply to --sampler dpmpp-2m; it is for lms/,
  );
  assertUserError(
    await task("sample_edm", ["--sampler", "dpmpp-2m", "--s-churn", "10"]),
    /--s-churn does not apply/,
  );
  assertUserError(
    await task("sample_edm", ["--schedule", "exponential", "--rho", "2"]),
    /--rho does not apply to --schedule exponential/,
  );
  assertUserError(await task("sample_edm", ["--strength", "0.5"]), /need --init-image/);
});

Deno.test("train:edm --cond-drop, then sample:edm with a k-diffusion sampler, --guidance, img2img and a mask", async () => {
  const dir = await Deno.makeTempDir();
  const data = join(dir, "pngs"), out = join(dir, "run");
  for (const cls of ["a", "b"]) {
    await Deno.mkdir(join(data, cls), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const img = new Float32Array(64).map((_, j) => (j % 8 < 4) === (cls === "a") ? 1 : -1);
      await writePng(join(data, cls, `${i}.png`), { data: img, shape: [8, 8, 1] });
    }
  }
  const tiny = ["--model", "mnist-small", "--channels", "8", "--batch", "4", "--kimg", "0.008"];
  const trained = await task("train_edm", [
    "--data",
    `png:${data}`,
    ...tiny,
    "--cond",
    "--cond-drop",
    "0.5",
    "--out",
    out,
  ]);
  assert.equal(trained.code, 0, trained.stderr);
  const ckpt = join(out, "checkpoint.safetensors");
  const init = join(data, "a", "0.png"), mask = join(dir, "mask.png");
  await writePng(mask, {
    data: new Float32Array(64).map((_, j) => (j < 32 ? 1 : -1)),
    shape: [8, 8, 1],
  });
  const grid = join(dir, "grid.png"), each = join(dir, "each");
  const r = await task("sample_edm", [
    "--checkpoint",
    ckpt,
    "--seeds",
    "0-1",
    "--sampler",
    "dpmpp-2m-sde",
    "--eta",
    "0.5",
    "--steps",
    "4",
    "--guidance",
    "2",
    "--init-image",
    init,
    "--mask",
    mask,
    "--out",
    grid,
    "--images-dir",
    each,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2 images, 4 evaluations each/);
  // Inpainting kept the known top half exactly (8-bit PNG round trip of a PNG input).
  const source = await readPng(init);
  for (const name of Deno.readDirSync(each)) {
    const img = await readPng(join(each, name.name));
    for (let k = 0; k < 32; k++) assert.equal(img.data[k], source.data[k], `pixel ${k}`);
  }
  // img2img at strength 0 writes the input itself.
  const zero = await task("sample_edm", [
    "--checkpoint",
    ckpt,
    "--seeds",
    "0",
    "--init-image",
    init,
    "--strength",
    "0",
    "--sampler",
    "lms",
    "--images-dir",
    each,
    "--out",
    grid,
  ]);
  assert.equal(zero.code, 0, zero.stderr);
  assert.deepEqual((await readPng(join(each, "seed000000.png"))).data, source.data);
  const unconditional = await task("sample_edm", [
    "--checkpoint",
    ckpt,
    "--seeds",
    "0",
    "--mask",
    mask,
  ]);
  assertUserError(unconditional, /need --init-image/);
  await Deno.remove(dir, { recursive: true });
});
