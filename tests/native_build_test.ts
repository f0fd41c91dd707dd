import * as assert from "node:assert/strict";
import { join } from "node:path";
import { buildNativeKernels } from "../core/native/build.ts";

const hasCc = await new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

Deno.test({
  name: "buildNativeKernels compiles once into the cache, then finds the library there",
  ignore: !hasCc,
  async fn() {
    const cacheDir = await Deno.makeTempDir();
    try {
      const first = buildNativeKernels({ cacheDir });
      assert.ok(first.ok, first.ok ? "" : first.why);
      assert.equal(first.built, true);
      assert.match(first.path, /libdiffuse_kernels-[0-9a-f]{16}\.so$/);
      assert.ok(Deno.statSync(first.path).size > 0);
      const second = buildNativeKernels({ cacheDir });
      assert.deepEqual(second, { ok: true, path: first.path, built: false });
      // No temporary file is left beside it.
      assert.deepEqual([...Deno.readDirSync(cacheDir)].map((e) => e.name), [
        first.path.split("/").pop(),
      ]);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});

Deno.test("buildNativeKernels without a compiler says how to get one instead of throwing", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const r = buildNativeKernels({ cacheDir: join(cacheDir, "sub"), compiler: "no-such-cc-here" });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.match(r.why, /no C compiler "no-such-cc-here" \(Debian: apt-get install gcc\)/);
    }
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("buildNativeKernels with a cache path that is a file says so instead of throwing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "not-a-folder");
    await Deno.writeTextFile(file, "x");
    const r = buildNativeKernels({ cacheDir: file });
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.why, /cannot create the cache folder .*not-a-folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "loading the built library leaves denormal floats alone (no flush-to-zero in the process)",
  ignore: !hasCc,
  async fn() {
    const cacheDir = await Deno.makeTempDir();
    try {
      const built = buildNativeKernels({ cacheDir });
      assert.ok(built.ok, built.ok ? "" : built.why);
      const lib = Deno.dlopen(built.path, {});
      try {
        // Parsed at run time so that nothing is folded at compile time; 1e-40 is a float32
        // denormal, which flush-to-zero (set by GCC's crtfastmath.o on load) would turn into 0.
        const tiny = Math.fround(Number("1e-40"));
        assert.ok(tiny > 9e-41 && tiny < 1.1e-40, `Math.fround(1e-40) = ${tiny}`);
        assert.ok(new Float32Array([Number("3e-39") * 0.5])[0] > 0);
      } finally {
        lib.close();
      }
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});
