/**
 * Damaged and hostile variants of one good checkpoint file (issue 15's corrupted-checkpoint
 * table), each with the message a loader must give: shared by tests/reliability_test.ts and
 * bench/reliability_cases.ts, which runs them through the tasks.
 *
 * @module
 */

/** One damaged variant and the message pattern a loader must answer with. */
export interface DamagedCheckpoint {
  /** What is wrong, in words. */
  name: string;
  /** The file's bytes. */
  bytes: Uint8Array;
  /** The message the loader must give. */
  pattern: RegExp;
}

/** A U-Net of about 10^10 parameters: building it from a state would exhaust memory. */
const HUGE_UNET = {
  kind: "unet",
  name: "x",
  config: {
    imgResolution: 1024,
    inChannels: 3,
    outChannels: 3,
    modelChannels: 4096,
    channelMult: [1, 2, 4, 8],
    numBlocks: 64,
    attnResolutions: [],
  },
};

/**
 * The variants of `bytes`, a good checkpoint written by `saveCheckpoint` whose state has a
 * `model` with a `config.hidden` (an MLP).
 */
export function damagedCheckpoints(bytes: Uint8Array): DamagedCheckpoint[] {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const state = JSON.parse(header.__metadata__.diffuse);
  const withHeader = (h: unknown): Uint8Array => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + bytes.length - 8 - headerLength);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(bytes.subarray(8 + headerLength), 8 + json.length);
    return out;
  };
  const withState = (patch: Record<string, unknown>): Uint8Array => {
    const patched = { ...state, ...patch };
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete patched[k];
    const metadata = { ...header.__metadata__, diffuse: JSON.stringify(patched) };
    return withHeader({ ...header, __metadata__: metadata });
  };
  const flip = (at: number): Uint8Array => {
    const b = bytes.slice();
    b[at] ^= 0x5a;
    return b;
  };
  const withLength = (n: bigint): Uint8Array => {
    const b = bytes.slice();
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  const first = Object.keys(header).find((k) => k !== "__metadata__")!;
  const hugeShape = { ...header, [first]: { ...header[first], shape: [1e9, 1e9] } };
  const negative = { ...state.model, config: { ...state.model.config, hidden: -8 } };
  return [
    {
      name: "truncated to half",
      bytes: bytes.subarray(0, bytes.length >> 1),
      pattern: /is corrupt/,
    },
    { name: "truncated to 5 bytes", bytes: bytes.subarray(0, 5), pattern: /too short/ },
    { name: "flipped header byte", bytes: flip(9), pattern: /is corrupt \(header/ },
    { name: "flipped data byte", bytes: flip(bytes.length - 3), pattern: /data checksum mismatch/ },
    {
      name: "header length 2^40",
      bytes: withLength(2n ** 40n),
      pattern: /header length 1099511627776 is implausible/,
    },
    {
      name: "header length past the end",
      bytes: withLength(BigInt(bytes.length)),
      pattern: /header length says/,
    },
    { name: "huge declared shape", bytes: withHeader(hugeShape), pattern: /span/ },
    {
      name: "state declares a huge U-Net",
      bytes: withState({ model: HUGE_UNET }),
      pattern: /do not match the network its own state describes/,
    },
    {
      name: "negative width",
      bytes: withState({ model: negative }),
      pattern: /hidden = -8; it must be an integer/,
    },
    {
      name: "unknown model kind",
      bytes: withState({ model: { kind: "gan", config: {} } }),
      pattern: /unknown model kind "gan"/,
    },
    {
      name: "state without model",
      bytes: withState({ model: undefined }),
      pattern: /has no model description/,
    },
    {
      name: "state without config",
      bytes: withState({ config: undefined }),
      pattern: /has no run config/,
    },
    {
      name: "made-up format tag",
      bytes: withState({ format: "made-up/9" }),
      pattern: /"made-up\/9", which no diffuse trainer writes/,
    },
    {
      name: "no format tag",
      bytes: withState({ format: undefined }),
      pattern: /has no format tag/,
    },
  ];
}
