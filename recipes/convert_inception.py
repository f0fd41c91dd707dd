#!/usr/bin/env python3
r"""Convert pytorch-fid's FID Inception-v3 weights to a safetensors file for diffuse.

Needs Python 3 and PyTorch (torch); uses the `safetensors` package when it is
installed and a small built-in writer otherwise. The input is the file that
pytorch-fid downloads on first use:

    pt_inception-2015-12-05-6726825d.pth
    (https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
     pt_inception-2015-12-05-6726825d.pth; pytorch-fid caches it under
     ~/.cache/torch/hub/checkpoints/)

It holds the TensorFlow Inception graph of 2015-12-05 that FID and IS are
defined with. The output keeps PyTorch's names and layouts (conv weights
[out, in, kh, kw], fc [1008, 2048], BatchNorm running statistics) as float32;
diffuse's eval/inception_v3.ts transposes and folds them when it loads the
file. BatchNorm's `num_batches_tracked` counters are dropped (never read).

Usage:
    python3 recipes/convert_inception.py pt_inception-2015-12-05-6726825d.pth \
        weights/pt_inception-2015-12-05.safetensors

Then, in TypeScript: `await loadInceptionV3("weights/pt_inception-2015-12-05.safetensors")`.

safetensors format (huggingface/safetensors): 8-byte little-endian header
length N, N bytes of JSON header {name: {dtype, shape, data_offsets}}, then the
raw little-endian tensor bytes.
"""

import json
import os
import struct
import sys

EXPECTED_VALUES = 23_885_392  # 23,850,960 learned + 34,432 BatchNorm running statistics
EXPECTED_TENSORS = 472  # 94 BasicConv2d x 5 tensors + fc.weight + fc.bias


def load_state_dict(path):
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        state = torch.load(path, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        sys.exit(f"error: {path} holds a {type(state).__name__}, not a state dict")
    out = {}
    for name, tensor in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith("num_batches_tracked"):
            continue
        if not tensor.is_floating_point():
            sys.exit(f"error: tensor {name} has dtype {tensor.dtype}, expected a float tensor")
        out[name] = tensor.detach().cpu().float().contiguous()
    return out


def check(tensors, path):
    if any(name.startswith("AuxLogits.") for name in tensors):
        sys.exit(
            f"error: {path} has AuxLogits: it is torchvision's ImageNet Inception-v3, not the "
            "FID one; use pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
        )
    fc = tensors.get("fc.weight")
    if fc is None or tuple(fc.shape) != (1008, 2048):
        shape = None if fc is None else tuple(fc.shape)
        sys.exit(f"error: {path}: fc.weight has shape {shape}, the FID Inception has (1008, 2048)")
    count = sum(t.numel() for t in tensors.values())
    if len(tensors) != EXPECTED_TENSORS or count != EXPECTED_VALUES:
        print(
            f"warning: {len(tensors)} tensors with {count} values; the FID Inception has "
            f"{EXPECTED_TENSORS} with {EXPECTED_VALUES} (diffuse will name what is missing)",
            file=sys.stderr,
        )


def tensor_bytes(tensor):
    try:
        return tensor.numpy().astype("<f4", copy=False).tobytes()
    except (RuntimeError, ImportError):  # torch built without numpy
        import array

        values = array.array("f", tensor.flatten().tolist())
        if sys.byteorder != "little":
            values.byteswap()
        return values.tobytes()


def write_safetensors(path, tensors, metadata):
    """The format by hand: length, JSON header padded with spaces to 8 bytes, data."""
    header = {"__metadata__": metadata}
    offset = 0
    names = sorted(tensors)
    for name in names:
        size = tensors[name].numel() * 4
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in names:
            f.write(tensor_bytes(tensors[name]))
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) == 2 else 2
    src, dst = argv[1], argv[2]
    if not os.path.isfile(src):
        sys.exit(f"error: no file at {src}; download pt_inception-2015-12-05-6726825d.pth first")
    tensors = load_state_dict(src)
    check(tensors, src)
    metadata = {"source": os.path.basename(src), "layout": "pytorch"}
    try:
        from safetensors.torch import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(tensors, dst, metadata=metadata)
    else:
        write_safetensors(dst, tensors, metadata)
    count = sum(t.numel() for t in tensors.values())
    print(f"wrote {dst}: {len(tensors)} tensors, {count} float32 values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
