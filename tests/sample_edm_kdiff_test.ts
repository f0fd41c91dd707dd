/**
 * sample:edm with the k-diffusion samplers, guidance, img2img and inpainting, end to end as a
 * user runs it: flags of another sampler exit 2, and a tiny class-conditional model trained with
 * --cond-drop samples with every new flag.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readPng, writePng } from "../data/png.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PERMS = ["--allow-read", "--allow-write", "--allow-env", "--allow-ffi"];

async function task(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, join(ROOT, "tasks", `${name}.ts`), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", DIFFUSE_BACKEND: "wasm" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertUserError(r: { code: number; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], pattern);
}

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
