#!/usr/bin/python3
"""Writes golden.safetensors for the Go tests of package safetensors.

How to regenerate (from the repository root; Debian's python3-torch 1.13.1 is enough, the
`safetensors` Python package is not needed):

    /usr/bin/python3 safetensors/testdata/make_golden.py

The file is written by hand from the format description (8-byte little-endian header
length, JSON header padded with spaces to a multiple of 8, then the tensor bytes back to
back), with "__metadata__" first and the tensors in sorted name order, which is the layout
the Go writer produces, so the tests can also compare bytes. The tensors *_as_f32 and
round_* hold torch's own conversions, which the Go conversions are checked against.
"""
import json
import os
import struct

import torch

inf, nan = float("inf"), float("nan")


def tensors():
    t = {}
    t["f64"] = torch.tensor([[1.0, -2.5, 3.141592653589793], [1e-300, -0.0, 1e300]], dtype=torch.float64)
    t["f32"] = torch.tensor([[0.1, -1.5, 3.4e38], [1e-45, inf, -inf]], dtype=torch.float32)
    # binary16: normals, smallest/largest subnormal, largest finite, specials.
    t["f16"] = torch.tensor([1.0, -2.0, 0.33325195, 2.0**-24, 2.0**-14 - 2.0**-24, 2.0**-14,
                             65504.0, inf, -inf, nan, -0.0, 6.1e-5], dtype=torch.float16)
    t["f16_as_f32"] = t["f16"].float()
    # bfloat16: normals, a subnormal, near the float32 maximum, specials.
    t["bf16"] = torch.tensor([1.0, -3.0, 1.0 / 3.0, 1e-40, 3.0e38, inf, -inf, nan, -0.0, 1e-3],
                             dtype=torch.bfloat16)
    t["bf16_as_f32"] = t["bf16"].float()
    # float32 values that exercise rounding to nearest-even in both half formats.
    tricky = [
        1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, -(1.0 + 2.0**-11) , 65519.0, 65520.0, 65536.0, 1e6,
        2.0**-25, 2.0**-25 * 1.0001, 1.5 * 2.0**-24, 2.5 * 2.0**-24, 2.0**-15, 1e-8,
        1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.3895313e38, 3.4028235e38, 1e-39, -1e-39,
        0.0, -0.0, inf, -inf, nan,
    ]
    g = torch.Generator().manual_seed(1234)
    randoms = (torch.randn(24, generator=g) * torch.logspace(-9, 6, 24)).tolist()
    src = torch.tensor(tricky + randoms, dtype=torch.float32)
    t["round_src"] = src
    t["round_f16"] = src.half()
    t["round_bf16"] = src.bfloat16()
    t["i64"] = torch.tensor([-(2**63), 2**63 - 1, 0, -1], dtype=torch.int64)
    t["i32"] = torch.tensor([[-(2**31), 2**31 - 1], [7, -7]], dtype=torch.int32)
    t["i16"] = torch.tensor([-(2**15), 2**15 - 1, 3], dtype=torch.int16)
    t["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    t["u8"] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    t["bool"] = torch.tensor([True, False, True])
    t["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    t["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    return t


DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def raw_bytes(x):
    x = x.contiguous()
    if x.dtype == torch.bfloat16:  # numpy has no bfloat16; same-size view
        x = x.view(torch.int16)
    return x.numpy().tobytes()  # little-endian on x86


def main():
    t = tensors()
    header = {"__metadata__": {"format": "pt", "source": "make_golden.py"}}
    blobs, off = [], 0
    for name in sorted(t):
        b = raw_bytes(t[name])
        header[name] = {"dtype": DTYPES[t[name].dtype], "shape": list(t[name].shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.safetensors")
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print("wrote", out, 8 + len(h) + off, "bytes")


if __name__ == "__main__":
    main()
