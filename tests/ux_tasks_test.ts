/**
 * The tasks as a new user meets them, by subprocess: paths typed in another folder, bad outputs
 * refused before any work, flags that do not apply, the time guard's messages, metrics from the
 * first step, resumable sampling, and one figure for the checkpoint and PNG routes of `eval`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { selectBackend } from "../core/engine.ts";
import { writePng } from "../data/png.ts";
import {
  assertUserError,
  runScript as run,
  runTaskFile as task,
  spawnTaskFile,
} from "./_task_run.ts";

await selectBackend({ backend: "cpu", log: () => {} });

/**
 * 28x28 gray PNGs (the MNIST classifier's input) with a bar at a varying column, in the class
 * folders "left" and "right" (or flat with `classes: false`).
 */
async function makeDigits(dir: string, count: number, classes = true) {
  for (let i = 0; i < count; i++) {
    const sub = classes ? (i < count / 2 ? "left" : "right") : "";
    await Deno.mkdir(join(dir, sub), { recursive: true });
    const data = new Float32Array(784).map((_, j) => Math.abs((j % 28) - 6 - 2 * i) < 3 ? 1 : -1);
    await writePng(join(dir, sub, `${i}.png`), { data, shape: [28, 28, 1] });
  }
}

Deno.test("relative paths resolve against the caller's folder (INIT_CWD), not the repo", async () => {
  const dir = await Deno.makeTempDir();
  const r = await task("sample_edm", ["--checkpoint", "sub/none.safetensors"], { INIT_CWD: dir });
  assertUserError(r, new RegExp(`no checkpoint at ${dir}/sub/none\\.safetensors`));
  const e = await task("eval", ["--data", "png:pngs"], { INIT_CWD: dir });
  assertUserError(e, new RegExp(`${dir}/pngs`));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad outputs and flags that do not apply fail at once with one line naming the fix", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "f.png");
  await Deno.writeTextFile(file, "x");
  // The default checkpoint does not exist here: the output is checked before it is opened.
  assertUserError(await task("sample_edm", ["--out", dir]), /--out .* is a folder/);
  assertUserError(await task("sample_edm", ["--out", ""]), /--out (is empty|must not be empty)/);
  assertUserError(await task("sample_ddpm", ["--out", join(dir, "x.jpg")]), /must end in \.png/);
  assertUserError(await task("sample_s2n", ["--out", join(file, "g.png")]), /is a file/);
  assertUserError(
    await task("sample_edm", ["--s-churn", "40"]),
    /--s-churn does not apply to --sampler heun; it is for stochastic/,
  );
  assertUserError(await task("sample_ddpm", ["--eta", "1"]), /--eta applies to --sampler ddim/);
  assertUserError(await task("sample_edm", ["--resume"]), /--resume needs --images-dir/);
  assertUserError(await task("sample_edm", ["--batch", "20000"]), /--batch must be at most 1024/);
  assertUserError(
    await task("sample_edm", ["--backend", "tensorflow", "--out", join(dir, "a.png")]),
    /backend "tensorflow" is not available.*--backend wasm/,
  );
  assertUserError(
    await task("train_edm", ["--out", join(file, "run"), "--kimg", "1"]),
    /train:edm: --out cannot use folder .*f\.png\/run/,
  );
  assertUserError(await task("eval", ["--out-dir", "/proc/no-such"]), /eval: --out-dir cannot/);
  assertUserError(
    await task("sample_edm", ["--out", join(dir, "a.png")], { DIFFUSE_BACKEND: "gpu" }),
    /unknown backend "gpu" \(from DIFFUSE_BACKEND\)/,
  );
  assertUserError(
    await task("train_edm", ["--resume", "--out", dir, "--kimg", "1"]),
    /nothing to resume/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("recipes take flags like tasks: --help, and one-line errors for bad flags", async () => {
  for (const name of ["minimal_sampler", "s2n_gamma_sweep", "s2n_stochastic_grid", "ddpm_table2"]) {
    const help = await run(join("recipes", `${name}.ts`), ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`recipes/${name}\\.ts \\[flags\\][\\s\\S]*Examples:`));
  }
  assertUserError(await run("recipes/s2n_gamma_sweep.ts", ["--n", "x"]), /--n must be a number/);
  assertUserError(
    await run("recipes/minimal_sampler.ts", ["--checkpoint", "/no/such.safetensors"]),
    /no checkpoint at \/no\/such\.safetensors/,
  );
});

Deno.test("the time guard is shown with its default in --help and --dry-run; presets get their own folder", async () => {
  const help = await task("train_edm", ["--help"]);
  assert.match(help.stdout, /--max-minutes.*default: per preset: mnist 12, mnist-uncond 13/);
  const dry = await task("train_edm", ["--dry-run", "--kimg", "500"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /time guard: stops after 12 min even if 500 kimg are not reached/);
  // The mnist preset is class-conditional on mnist data only.
  assert.equal(JSON.parse(dry.stdout).config.classConditional, true);
  assert.equal(JSON.parse(dry.stdout).config.lrDecayKimg, 60);
  // The preset's 60-kimg decay shrinks to a shorter run; an explicit one longer than it is refused.
  const short = await task("train_edm", ["--dry-run", "--kimg", "30"]);
  assert.equal(JSON.parse(short.stdout).config.lrDecayKimg, 30);
  assertUserError(
    await task("train_edm", ["--dry-run", "--kimg", "30", "--lr-decay", "40"]),
    /lrDecayKimg must be in \[0, kimg = 30\], got 40/,
  );
  const png = await task("train_edm", ["--dry-run", "--data", "png:some/folder"]);
  assert.equal(JSON.parse(png.stdout).config.classConditional, false);
  const sde = await task("train_sde", ["--dry-run"]);
  assert.equal(JSON.parse(sde.stdout).config.classConditional, false);
  assert.equal(
    JSON.parse(sde.stdout).config.batchSize,
    64,
    "train:sde keeps the unconditional recipe",
  );
  const toy = await task("train_ddpm", ["--dry-run", "--preset", "toy"]);
  assert.equal(JSON.parse(toy.stdout).out, "runs/ddpm-toy");
});

Deno.test("train -> sample -> eval: metrics from the first step, resumable sampling, one FD for both eval routes, the time guard's stop", async () => {
  const dir = await Deno.makeTempDir();
  await makeDigits(join(dir, "data"), 8);
  const tiny = ["--data", `png:${join(dir, "data")}`, "--model", "mnist-small", "--channels", "8"];
  const out = join(dir, "run");
  await makeDigits(join(dir, "flat"), 2, false);
  assertUserError(
    await task("train_edm", [
      ...tiny,
      "--cond",
      "--data",
      `png:${join(dir, "flat")}`,
      "--out",
      out,
    ]),
    /--cond needs class labels.*drop --cond/,
  );
  // Two steps of 4 images, fewer than the 20-step log interval; classes kept by name.
  const t = await task("train_edm", [
    ...tiny,
    "--cond",
    "--cond-drop",
    "0.1",
    "--batch",
    "4",
    "--kimg",
    "0.008",
    "--out",
    out,
  ]);
  assert.equal(t.code, 0, t.stderr);
  const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n");
  assert.deepEqual(metrics.map((l) => JSON.parse(l).step), [1, 2]);
  assert.ok((await Deno.stat(join(out, "loss.svg"))).isFile);
  assert.match(await Deno.readTextFile(join(out, "report.html")), /<img src="loss\.svg"/);
  const ckpt = join(out, "checkpoint.safetensors");

  const images = join(dir, "im");
  const sample = ["--checkpoint", ckpt, "--seeds", "0-7", "--steps", "2", "--batch", "3"];
  const s = await task("sample_edm", [
    ...sample,
    "--images-dir",
    images,
    "--out",
    join(dir, "g.png"),
  ]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal([...Deno.readDirSync(images)].length, 8);
  await Deno.remove(join(images, "seed000006.png"));
  const again = await task("sample_edm", [
    ...sample,
    "--images-dir",
    images,
    "--resume",
    "--out",
    join(dir, "g.png"),
  ]);
  assert.match(again.stdout, /wrote 1 PNGs to .* \(7 were there\)/);

  // Ctrl-C once the first PNG is on disk: the finished images stay, the message says --resume.
  const slow = join(dir, "slow");
  const child = spawnTaskFile("sample_edm", [
    "--checkpoint",
    ckpt,
    "--seeds",
    "0-999",
    "--batch",
    "1",
    "--steps",
    "4",
    "--images-dir",
    slow,
    "--out",
    join(dir, "s.png"),
  ]);
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      if ([...Deno.readDirSync(slow)].some((e) => e.name.endsWith(".png"))) break;
    } catch {
      // not created yet
    }
  }
  child.kill("SIGINT");
  const stopped = await child.output();
  const said = new TextDecoder().decode(stopped.stdout);
  assert.equal(stopped.code, 0, new TextDecoder().decode(stopped.stderr));
  const kept = [...Deno.readDirSync(slow)].filter((e) => /^seed\d+\.png$/.test(e.name)).length;
  assert.ok(kept >= 1 && kept < 1000, `${kept} PNGs kept`);
  assert.match(said, new RegExp(`interrupted after ${kept} of 1000 images.*--resume`));

  const byName = await task("sample_edm", [
    ...sample.slice(0, 2),
    "--seeds",
    "0-1",
    "--steps",
    "2",
    "--class",
    "right",
    "--out",
    join(dir, "right.png"),
  ]);
  assert.equal(byName.code, 0, byName.stderr);
  assertUserError(
    await task("sample_edm", [...sample.slice(0, 2), "--class", "up", "--out", join(dir, "u.png")]),
    /--class must be one of left, right or a label below 2, got "up"/,
  );

  const ref = ["--data", `png:${join(dir, "data")}`, "--kid-size", "4", "--kid-subsets", "3"];
  const a = await task("eval", [...ref, "--images", images, "--out-dir", join(dir, "ea")]);
  assert.equal(a.code, 0, a.stderr);
  const b = await task("eval", [
    ...ref,
    "--checkpoint",
    ckpt,
    "--n",
    "8",
    "--steps",
    "2",
    "--out-dir",
    join(dir, "eb"),
  ]);
  assert.equal(b.code, 0, b.stderr);
  const fromPng = JSON.parse(await Deno.readTextFile(join(dir, "ea", "eval.json"))).report;
  const fromCkpt = JSON.parse(await Deno.readTextFile(join(dir, "eb", "eval.json"))).rows[0].report;
  assert.ok(Number.isFinite(fromPng.fd));
  assert.equal(fromCkpt.fd, fromPng.fd);
  assert.deepEqual(fromCkpt.kid, fromPng.kid);
  assert.deepEqual(fromCkpt.is, fromPng.is);
  assert.match(b.stdout, /warning: only 8 samples/);

  // A run the time guard stops says where and how to continue; the bar shows the real count.
  const g = await task("train_edm", [
    ...tiny,
    "--batch",
    "4",
    "--kimg",
    "100",
    "--max-minutes",
    "0.02",
    "--out",
    join(dir, "guard"),
  ]);
  assert.equal(g.code, 0, g.stderr);
  assert.match(
    g.stdout,
    /stopped at [\d.]+ of 100 kimg \(the 0.02-minute time guard.*--resume --out/,
  );
  assert.doesNotMatch(g.stderr, /100000\/100000/);

  // Classifier-free guidance in eval: on the conditional checkpoint, and refused on another.
  const guidedArgs = [...ref, "--n", "8", "--steps", "2", "--guidance", "2"];
  const guided = await task("eval", [
    ...guidedArgs,
    "--checkpoint",
    ckpt,
    "--out-dir",
    join(dir, "eg"),
  ]);
  assert.equal(guided.code, 0, guided.stderr);
  assert.match(guided.stdout, /8 samples, heun 2 steps \(3 NFE, guidance 2\)/);
  const guidedJson = JSON.parse(await Deno.readTextFile(join(dir, "eg", "eval.json")));
  assert.equal(guidedJson.guidance, 2);
  assertUserError(
    await task("eval", [
      ...guidedArgs,
      "--checkpoint",
      join(dir, "guard", "checkpoint.safetensors"),
      "--out-dir",
      join(dir, "eu"),
    ]),
    /--guidance needs a class-conditional checkpoint; drop --guidance/,
  );
  await Deno.remove(dir, { recursive: true });
});
