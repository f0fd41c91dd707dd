import assert from "node:assert/strict";
import { selectBackend } from "../core/engine.ts";
import { UserError } from "../core/errors.ts";
import { Rng } from "../core/rng.ts";
import { decodeSafetensors, writeSafetensors } from "../core/safetensors.ts";
import {
  decodeFeatureStats,
  encodeFeatureStats,
  loadFeatureStats,
  saveFeatureStats,
} from "../eval/feature_stats_file.ts";

await selectBackend({ backend: "cpu", log: () => {} });

Deno.test("saveFeatureStats() / loadFeatureStats() round-trip float64 bit for bit as valid safetensors", async () => {
  const rng = new Rng(3), d = 5;
  const mu = Float64Array.from({ length: d }, (_, i) => i === 0 ? 0.1 : rng.normal() / 3);
  const sigma = Float64Array.from(
    { length: d * d },
    (_, i) => i === 1 ? 1 / 3 : rng.normal() * 1e-9,
  );
  const stats = { network: "inception-v3", count: 50_000, mu, sigma };
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/ref.safetensors`;
    await saveFeatureStats(path, stats);
    const back = await loadFeatureStats(path, { network: "inception-v3" });
    assert.deepEqual(back, stats);
    // Any safetensors reader sees F64 tensors with the right shapes and the metadata.
    const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path));
    assert.equal(tensors.mu.dtype, "F64");
    assert.deepEqual(tensors.sigma.shape, [d, d]);
    assert.equal(metadata.count, "50000");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadFeatureStats() gives a UserError for a missing, truncated, foreign or mismatched file", async () => {
  const stats = {
    network: "a",
    count: 2,
    mu: new Float64Array([1, 2]),
    sigma: new Float64Array(4),
  };
  const bytes = encodeFeatureStats(stats);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      loadFeatureStats(`${dir}/none.safetensors`),
      (e: Error) => e instanceof UserError && e.message.includes("none.safetensors"),
    );
    const isUserError = (pattern: RegExp) => (e: Error) =>
      e instanceof UserError && pattern.test(e.message);
    assert.throws(
      () => decodeFeatureStats(bytes.subarray(0, bytes.length - 3)),
      isUserError(/truncated/),
    );
    assert.throws(() => decodeFeatureStats(bytes, { network: "b" }), isUserError(/"a".*"b"/));
    const corrupt = bytes.slice();
    corrupt[8] = 0x78; // "x" where the JSON header starts with "{"
    assert.throws(() => decodeFeatureStats(corrupt), isUserError(/JSON/));
    const nan = bytes.slice();
    new DataView(nan.buffer).setFloat64(nan.length - 8, NaN, true);
    assert.throws(() => decodeFeatureStats(nan), isUserError(/NaN/));
    // A valid safetensors file that is not feature statistics (F32 weights).
    const weights = `${dir}/w.safetensors`;
    await writeSafetensors(weights, { mu: { data: new Float32Array(2), shape: [2] } });
    await assert.rejects(loadFeatureStats(weights), isUserError(/not feature statistics/));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeFeatureStats() refuses inconsistent statistics", () => {
  const ok = { network: "a", count: 2, mu: new Float64Array([1, 2]), sigma: new Float64Array(4) };
  assert.throws(() => encodeFeatureStats({ ...ok, sigma: new Float64Array(3) }), RangeError);
  assert.throws(() => encodeFeatureStats({ ...ok, count: 1 }), RangeError);
  assert.throws(() => encodeFeatureStats({ ...ok, network: "" }), TypeError);
});
