import assert from "node:assert/strict";
import { writeFileAtomic } from "../core/atomic_write.ts";

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("writeFileAtomic creates and then replaces a file, leaving no temp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.json`;
    await writeFileAtomic(path, "first");
    assert.equal(await Deno.readTextFile(path), "first");
    await writeFileAtomic(path, new Uint8Array([104, 105]));
    assert.equal(await Deno.readTextFile(path), "hi");
    assert.deepEqual(names(dir), ["a.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic writes sync and async chunk streams in order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/c.bin`;
    await writeFileAtomic(path, [new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])]);
    assert.deepEqual(Array.from(await Deno.readFile(path)), [1, 2, 3]);
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 4; i++) yield new Uint8Array(100_000).fill(i);
    };
    await writeFileAtomic(path, chunks());
    const back = await Deno.readFile(path);
    assert.equal(back.length, 400_000);
    assert.deepEqual([back[0], back[150_000], back[399_999]], [0, 1, 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic keeps the old file and removes its temp file when the data fails midway", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/checkpoint.safetensors`;
    await writeFileAtomic(path, "old complete content");
    let sawTempFile = false;
    const failing = function* (): Generator<Uint8Array> {
      yield new TextEncoder().encode("new partial ");
      // By now the first chunk has gone to a temp file beside the target.
      sawTempFile = names(dir).some((n) => n.endsWith(".tmp"));
      throw new Error("disk gremlin");
    };
    await assert.rejects(writeFileAtomic(path, failing()), /disk gremlin/);
    assert.ok(sawTempFile, "the write must go through a temp file in the same folder");
    assert.equal(await Deno.readTextFile(path), "old complete content");
    assert.deepEqual(names(dir), ["checkpoint.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic fails cleanly when the folder does not exist", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(writeFileAtomic(`${dir}/missing/x.txt`, "x"), Deno.errors.NotFound);
    assert.deepEqual(names(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic rejects chunks that are not bytes and leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = [new Uint8Array(1), [1, 2] as unknown as Uint8Array];
    await assert.rejects(writeFileAtomic(`${dir}/x.bin`, bad), TypeError);
    assert.deepEqual(names(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
