import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import {
  checkParamsMatch,
  CHECKPOINT_STATE_KEY,
  loadCheckpoint,
  saveCheckpoint,
  sidecarPath,
  tensorsWithPrefix,
} from "../core/checkpoint.ts";
import { encodeSafetensors, writeSafetensors } from "../core/safetensors.ts";

await selectBackend({ backend: "cpu", log: () => {} });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("saveCheckpoint/loadCheckpoint round-trip tensors and state without leaking tensors", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/checkpoint.safetensors`;
    const rng = new Rng(3);
    rng.normal();
    const w = tf.variable(
      tf.tensor4d(Float32Array.from({ length: 18 }, (_, i) => i - 9.5), [3, 3, 1, 2]),
    );
    const b = tf.tensor1d([0.25, -0.5]);
    const m = tf.zeros([3, 3, 1, 2]);
    const state = {
      step: 1234,
      config: { preset: "tiny", channels: [8, 16], lr: 2e-4 },
      adam: { beta1: 0.9, t: 1234 },
      rng: rng.state(),
    };
    const before = tf.memory().numTensors;
    await saveCheckpoint(path, {
      tensors: { "net.conv.weight": w, "net.conv.bias": b, "adam.m.conv.weight": m },
      state,
    });
    assert.equal(tf.memory().numTensors, before, "saving must not create or dispose tensors");
    assert.ok(!w.isDisposed && !b.isDisposed, "the caller's tensors stay alive");

    const loaded = await loadCheckpoint<typeof state>(path);
    assert.deepEqual(loaded.state, state);
    assert.deepEqual(Array.from(loaded.tensors["net.conv.weight"].data), Array.from(w.dataSync()));
    assert.deepEqual(loaded.tensors["net.conv.weight"].shape, [3, 3, 1, 2]);
    assert.deepEqual(Array.from(loaded.tensors["net.conv.bias"].data), [0.25, -0.5]);
    // The restored rng continues the same stream.
    assert.equal(Rng.fromState(loaded.state.rng).normal(), rng.normal());
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([w, b, m]);
  });
});

Deno.test("saveCheckpoint writes a readable JSON sidecar after the weights", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/checkpoint.safetensors`;
    await saveCheckpoint(path, {
      tensors: { "net.w": { data: new Float32Array(6), shape: [2, 3] } },
      state: { step: 7 },
    });
    assert.equal(sidecarPath(path), `${dir}/checkpoint.json`);
    const text = await Deno.readTextFile(`${dir}/checkpoint.json`);
    assert.ok(text.includes("\n  "), "sidecar is indented for people");
    const sidecar = JSON.parse(text);
    assert.deepEqual(sidecar.state, { step: 7 });
    assert.deepEqual(sidecar.tensors, { "net.w": [2, 3] });
    assert.equal(sidecar.checkpoint, "checkpoint.safetensors");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["checkpoint.json", "checkpoint.safetensors"]);
  });
});

Deno.test("saveCheckpoint overwrites the latest checkpoint and keeps the old one on failure", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/checkpoint.safetensors`;
    const t = { "net.w": { data: new Float32Array([1]), shape: [1] } };
    await saveCheckpoint(path, { tensors: t, state: { step: 1 } });
    await saveCheckpoint(path, { tensors: t, state: { step: 2 } });
    assert.equal((await loadCheckpoint(path)).state.step, 2);
    await assert.rejects(
      saveCheckpoint(path, { tensors: t, state: { step: 3, bad: 1n } }),
      /not JSON-serializable/,
    );
    const disposed = tf.scalar(1);
    disposed.dispose();
    await assert.rejects(
      saveCheckpoint(path, { tensors: { "net.w": disposed }, state: { step: 4 } }),
      /disposed/,
    );
    assert.equal((await loadCheckpoint(path)).state.step, 2);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["checkpoint.json", "checkpoint.safetensors"]);
  });
});

Deno.test("loadCheckpoint explains a missing checkpoint and how to make one", async () => {
  await withDir(async (dir) => {
    await assert.rejects(loadCheckpoint(`${dir}/nope.safetensors`), (e: Error) => {
      assert.ok(e instanceof Deno.errors.NotFound);
      assert.equal(
        e.message,
        `no checkpoint at ${dir}/nope.safetensors: train first with \`deno task train:edm\` ` +
          `or pass --checkpoint`,
      );
      return true;
    });
  });
});

Deno.test("loadCheckpoint calls a truncated or damaged file corrupt and names it", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/checkpoint.safetensors`;
    await saveCheckpoint(path, {
      tensors: { "net.w": { data: new Float32Array(64), shape: [8, 8] } },
      state: { step: 1 },
    }, { sidecar: false });
    const full = await Deno.readFile(path);
    await Deno.writeFile(path, full.subarray(0, full.length - 7));
    await assert.rejects(
      loadCheckpoint(path),
      new RegExp(`^Error: checkpoint ${path} is corrupt \\(tensor "net\\.w" ends at data byte 256`),
    );
    await Deno.writeFile(path, full.subarray(0, 5));
    await assert.rejects(loadCheckpoint(path), /is corrupt \(file is 5 bytes, too short/);
  });
});

Deno.test("loadCheckpoint rejects a plain safetensors file and corrupt state JSON", async () => {
  await withDir(async (dir) => {
    const plain = `${dir}/weights.safetensors`;
    await writeSafetensors(plain, { w: { data: new Float32Array(1), shape: [1] } });
    await assert.rejects(
      loadCheckpoint(plain),
      /not a diffuse checkpoint \(no "diffuse" metadata\)/,
    );
    const broken = `${dir}/broken.safetensors`;
    await Deno.writeFile(
      broken,
      encodeSafetensors({}, { metadata: { [CHECKPOINT_STATE_KEY]: '{"step": 1,' } }),
    );
    await assert.rejects(loadCheckpoint(broken), /corrupt \(its "diffuse" state is not valid JSON/);
  });
});

Deno.test("tensorsWithPrefix selects one group and strips its prefix", () => {
  const all = { "net.a": 1, "net.b.c": 2, "ema.a": 3, "adam.m.a": 4 };
  assert.deepEqual(tensorsWithPrefix(all, "net."), { a: 1, "b.c": 2 });
  assert.deepEqual(tensorsWithPrefix(all, "adam.m."), { a: 4 });
  assert.deepEqual(tensorsWithPrefix(all, "adam.v."), {});
});

Deno.test("checkParamsMatch accepts an exact match, from shapes or from tensors", () => {
  const expected = { "conv.weight": [3, 3, 1, 8], "conv.bias": [8] };
  checkParamsMatch(expected, { "conv.bias": [8], "conv.weight": [3, 3, 1, 8] });
  checkParamsMatch(expected, {
    "conv.weight": { shape: [3, 3, 1, 8] },
    "conv.bias": { shape: [8] },
  });
});

Deno.test("checkParamsMatch lists missing, extra and reshaped parameters and the fix", () => {
  const expected = { a: [2, 2], b: [4], c: [1] };
  assert.throws(
    () =>
      checkParamsMatch(expected, { a: [2, 3], b: [4], z: [5] }, {
        source: "runs/x/checkpoint.safetensors",
      }),
    (e: Error) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /^runs\/x\/checkpoint\.safetensors does not match/);
      assert.match(e.message, /1 missing from runs\/x\/checkpoint\.safetensors \(c \[1\]\)/);
      assert.match(e.message, /1 not in the network \(z \[5\]\)/);
      assert.match(
        e.message,
        /1 with another shape \(a: \[2, 3\] in runs\/x\/checkpoint\.safetensors, \[2, 2\] in the network\)/,
      );
      assert.match(e.message, /same --preset\/--channels/);
      assert.match(e.message, /new run directory/);
      return true;
    },
  );
  // Rank differences count as shape mismatches too.
  assert.throws(() => checkParamsMatch({ a: [2, 1] }, { a: [2] }), /1 with another shape/);
});

Deno.test("checkParamsMatch lists only the first few names of a long difference", () => {
  const expected = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`p${i}`, [1]]));
  assert.throws(
    () => checkParamsMatch(expected, {}, { maxListed: 3 }),
    (e: Error) => {
      assert.match(
        e.message,
        /9 missing from the checkpoint \(p0 \[1\]; p1 \[1\]; p2 \[1\]; \.\.\. 6 more\)/,
      );
      assert.ok(!e.message.includes("p3"));
      return true;
    },
  );
});
