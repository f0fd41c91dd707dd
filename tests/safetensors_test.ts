import assert from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  SafetensorsError,
  writeSafetensors,
} from "../core/safetensors.ts";

/** A file laid out by hand: 8-byte length, `header` padded with spaces to 8 bytes, then `data`. */
function handMade(header: string, data: Uint8Array): Uint8Array {
  let json = new TextEncoder().encode(header);
  const padded = Math.ceil(json.length / 8) * 8;
  json = Uint8Array.from([...json, ...new Array(padded - json.length).fill(0x20)]);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function le(write: (v: DataView) => void, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  write(new DataView(out.buffer));
  return out;
}

Deno.test("encodeSafetensors/decodeSafetensors round-trip tensors, shapes and metadata", () => {
  const tensors = {
    "net.conv.weight": {
      data: Float32Array.from({ length: 24 }, (_, i) => i / 7 - 1),
      shape: [2, 3, 1, 4],
    },
    "ema.bias": { data: new Float32Array([Math.PI, -0, 1e-30, 3e38]), shape: [4] },
    "scalar": { data: new Float32Array([42.5]), shape: [] },
    "empty": { data: new Float32Array(0), shape: [0, 3] },
    "counts": { data: new Int32Array([-7, 0, 2 ** 31 - 1]), shape: [3] },
  };
  const bytes = encodeSafetensors(tensors, { metadata: { a: "1", note: 'héllo {"x": 2}' } });
  const { tensors: got, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { a: "1", note: 'héllo {"x": 2}' });
  assert.deepEqual(Object.keys(got).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    assert.deepEqual(got[name].shape, t.shape, name);
    assert.deepEqual(Array.from(got[name].data), Array.from(t.data), name);
    assert.equal(got[name].data.constructor, t.data.constructor, name);
  }
  assert.equal(got.counts.dtype, "I32");
  assert.ok(Object.is(got["ema.bias"].data[1], -0));
  // The data section starts on an 8-byte boundary, as the Python library writes it.
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0);
});

Deno.test("encodeSafetensors does not alias or keep the caller's arrays", () => {
  const data = new Float32Array([1, 2, 3]);
  const decoded = decodeSafetensors(encodeSafetensors({ w: { data, shape: [3] } }));
  data[0] = 99;
  assert.equal(decoded.tensors.w.data[0], 1);
});

Deno.test("decodeSafetensors reads another tool's layout: padded header, unsorted order, F16 and friends", () => {
  // Header keys in neither name nor data order, __metadata__ first, the way the Rust/Python
  // library writes, padded with spaces; the data section holds the tensors in another order.
  const header = JSON.stringify({
    "__metadata__": { format: "pt" },
    "zeta": { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    "alpha.half": { dtype: "F16", shape: [2, 3], data_offsets: [32, 44] },
    "f64": { dtype: "F64", shape: [1], data_offsets: [8, 16] },
    "i64": { dtype: "I64", shape: [2], data_offsets: [16, 32] },
    "bf16": { dtype: "BF16", shape: [2], data_offsets: [44, 48] },
    "u8": { dtype: "U8", shape: [3], data_offsets: [48, 51] },
  });
  const half = [0x3c00, 0xc000, 0x3800, 0x0001, 0x7c00, 0x8000]; // 1, -2, 0.5, 2^-24, inf, -0
  const data = le((v) => {
    v.setFloat32(0, 1.25, true);
    v.setFloat32(4, -3, true);
    v.setFloat64(8, 0.1, true);
    v.setBigInt64(16, -5n, true);
    v.setBigInt64(24, 2n ** 31n - 1n, true);
    half.forEach((h, i) => v.setUint16(32 + 2 * i, h, true));
    v.setUint16(44, 0x3fc0, true); // bf16 1.5
    v.setUint16(46, 0xc2f7, true); // bf16 -123.5
    v.setUint8(48, 0);
    v.setUint8(49, 200);
    v.setUint8(50, 255);
  }, 51);
  const bytes = handMade(header, data);
  assert.ok(header.length % 8 !== 0, "the test must exercise header padding");
  const { tensors, metadata } = decodeSafetensors(bytes, { source: "torch.safetensors" });
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(Array.from(tensors.zeta.data), [1.25, -3]);
  assert.deepEqual(tensors["alpha.half"].shape, [2, 3]);
  assert.equal(tensors["alpha.half"].dtype, "F16");
  assert.ok(tensors["alpha.half"].data instanceof Float32Array);
  assert.deepEqual(Array.from(tensors["alpha.half"].data), [1, -2, 0.5, 2 ** -24, Infinity, -0]);
  assert.ok(Object.is(tensors["alpha.half"].data[5], -0));
  assert.equal(tensors.f64.data[0], Math.fround(0.1));
  assert.ok(tensors.i64.data instanceof Int32Array);
  assert.deepEqual(Array.from(tensors.i64.data), [-5, 2 ** 31 - 1]);
  assert.deepEqual(Array.from(tensors.bf16.data), [1.5, -123.5]);
  assert.deepEqual(Array.from(tensors.u8.data), [0, 200, 255]);
});

Deno.test("decodeSafetensors reads a byte array that is a view into a larger buffer", () => {
  const inner = encodeSafetensors({ w: { data: new Float32Array([5, 6]), shape: [2] } });
  const outer = new Uint8Array(inner.length + 3);
  outer.set(inner, 3); // unaligned start
  const { tensors } = decodeSafetensors(outer.subarray(3));
  assert.deepEqual(Array.from(tensors.w.data), [5, 6]);
});

Deno.test("readSafetensors/writeSafetensors round-trip through a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/w.safetensors`;
    await writeSafetensors(path, { w: { data: new Float32Array([1, -1]), shape: [1, 2] } }, {
      metadata: { k: "v" },
    });
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(Array.from(tensors.w.data), [1, -1]);
    assert.deepEqual(metadata, { k: "v" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const F32_ENTRY = (offsets: [number, number], shape = [2]) => ({
  dtype: "F32",
  shape,
  data_offsets: offsets,
});

const corruptCases: [string, () => Uint8Array, RegExp][] = [
  ["fewer than 8 bytes", () => new Uint8Array([1, 2, 3]), /3 bytes, too short/],
  [
    "an implausible header length",
    () => le((v) => v.setBigUint64(0, 2n ** 40n, true), 16),
    /header length 1099511627776 is implausible/,
  ],
  [
    "a header longer than the file",
    () => handMade(JSON.stringify({ w: F32_ENTRY([0, 8]) }), new Uint8Array(8)).subarray(0, 20),
    /header length says \d+ bytes but only 12 follow/,
  ],
  ["a header that is not JSON", () => handMade("{not json", new Uint8Array(0)), /not valid JSON/],
  ["a header that is not an object", () => handMade("[1, 2]", new Uint8Array(0)), /JSON object/],
  [
    "an unknown dtype",
    () => handMade(JSON.stringify({ w: { ...F32_ENTRY([0, 8]), dtype: "Q7" } }), new Uint8Array(8)),
    /tensor "w" has unknown dtype "Q7"/,
  ],
  [
    "an unsupported dtype",
    () =>
      handMade(
        JSON.stringify({ w: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }),
        new Uint8Array(2),
      ),
    /dtype F8_E4M3, which this reader does not support/,
  ],
  [
    "a shape that does not match the byte size",
    () => handMade(JSON.stringify({ w: F32_ENTRY([0, 8], [3]) }), new Uint8Array(8)),
    /tensor "w" has shape \[3\] and dtype F32 \(12 bytes\) but data_offsets \[0, 8\] span 8/,
  ],
  [
    "a negative dimension",
    () => handMade(JSON.stringify({ w: F32_ENTRY([0, 8], [-2]) }), new Uint8Array(8)),
    /invalid shape \[-2\]/,
  ],
  [
    "offsets past the end (truncated data)",
    () => handMade(JSON.stringify({ w: F32_ENTRY([0, 8]) }), new Uint8Array(5)),
    /tensor "w" ends at data byte 8 but the data section has only 5 bytes/,
  ],
  [
    "reversed offsets",
    () => handMade(JSON.stringify({ w: F32_ENTRY([8, 0]) }), new Uint8Array(8)),
    /invalid data_offsets \[8,0\]/,
  ],
  [
    "overlapping tensors",
    () =>
      handMade(
        JSON.stringify({ a: F32_ENTRY([0, 8]), b: F32_ENTRY([4, 12]) }),
        new Uint8Array(12),
      ),
    /tensors "a" and "b" overlap/,
  ],
  [
    "a gap between tensors",
    () =>
      handMade(
        JSON.stringify({ a: F32_ENTRY([0, 8]), b: F32_ENTRY([12, 20]) }),
        new Uint8Array(20),
      ),
    /data bytes 8\.\.12 belong to no tensor/,
  ],
  [
    "trailing bytes",
    () => handMade(JSON.stringify({ a: F32_ENTRY([0, 8]) }), new Uint8Array(9)),
    /data bytes 8\.\.9 after the last tensor/,
  ],
  [
    "non-string metadata",
    () => handMade(JSON.stringify({ __metadata__: { step: 3 } }), new Uint8Array(0)),
    /metadata "step" is number, must be a string/,
  ],
  [
    "an I64 value outside int32",
    () =>
      handMade(
        JSON.stringify({ n: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }),
        le((v) => v.setBigInt64(0, 2n ** 40n, true), 8),
      ),
    /tensor "n" \(I64\) holds 1099511627776 at index 0, outside the int32 range/,
  ],
];

for (const [what, make, message] of corruptCases) {
  Deno.test(`decodeSafetensors names the file and the problem for ${what}`, () => {
    assert.throws(
      () => decodeSafetensors(make(), { source: "runs/x/bad.safetensors" }),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError);
        assert.match(e.message, /^safetensors file runs\/x\/bad\.safetensors: /);
        assert.match(e.message, message);
        return true;
      },
    );
  });
}

Deno.test("readSafetensors reports a truncated file on disk with its path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/cut.safetensors`;
    const full = encodeSafetensors({ w: { data: new Float32Array(16), shape: [16] } });
    await Deno.writeFile(path, full.subarray(0, full.length - 10));
    await assert.rejects(readSafetensors(path), (e: Error) => {
      assert.ok(e instanceof SafetensorsError);
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.message, /truncated/);
      return true;
    });
    await assert.rejects(readSafetensors(`${dir}/none.safetensors`), /no safetensors file at/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeSafetensors rejects bad input with a message naming the tensor", () => {
  assert.throws(
    () => encodeSafetensors({ w: { data: new Float32Array(5), shape: [2, 3] } }),
    /tensor "w" has 5 values but shape \[2,3\] needs 6/,
  );
  assert.throws(
    () =>
      encodeSafetensors({
        w: { data: new Float64Array(1) as unknown as Float32Array, shape: [1] },
      }),
    TypeError,
  );
  assert.throws(
    () => encodeSafetensors({ __metadata__: { data: new Float32Array(1), shape: [1] } }),
    /reserved/,
  );
  assert.throws(
    () => encodeSafetensors({}, { metadata: { step: 3 as unknown as string } }),
    /metadata "step" must be a string/,
  );
});
