#!/usr/bin/env python3
"""Check a PEFT-layout LoRA adapter against a merged export, independently of lrtrain.

Usage: peft_merge_check.py ADAPTER_DIR BASE_DIR MERGED_DIR MODULE

Reads the three safetensors files by hand (8-byte little-endian header length, JSON
header, raw little-endian data; F32 only), takes r, lora_alpha and use_rslora from
ADAPTER_DIR/adapter_config.json, and checks for the one module (e.g.
model.layers.0.self_attn.q_proj) that

    merged = W0 + s * B @ A,   s = lora_alpha / r   (lora_alpha / sqrt(r) with rsLoRA)

with A = base_model.model.<module>.lora_A.weight [r, d_in] and B = ...lora_B.weight
[d_out, r], computed here in float64 (pure Python: no torch, no numpy). The merged
export rounds in float32, so each entry may differ from the float64 value by a few
float32 roundings: the bound is 4 * 2**-23 * (|W0| + s * sum_k |B_ik * A_kj|).
Prints the largest deviation relative to its bound and exits 1 when one exceeds it.
It is run by export's TestMergedMatchesPEFTFormulaInPython; regenerate nothing.
"""
import json
import math
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}, this check reads F32 only")
        b, e = info["data_offsets"]
        vals = struct.unpack(f"<{(e - b) // 4}f", data[b:e])
        out[name] = (info["shape"], vals)
    return out


def main():
    adapter_dir, base_dir, merged_dir, module = sys.argv[1:5]
    cfg = json.load(open(f"{adapter_dir}/adapter_config.json"))
    if cfg["peft_type"] != "LORA":
        raise SystemExit(f"peft_type {cfg['peft_type']}, want LORA")
    r, alpha = cfg["r"], cfg["lora_alpha"]
    s = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    ad = read(f"{adapter_dir}/adapter_model.safetensors")
    (ra, din), a = ad[f"base_model.model.{module}.lora_A.weight"]
    (dout, rb), b = ad[f"base_model.model.{module}.lora_B.weight"]
    if ra != r or rb != r:
        raise SystemExit(f"lora_A [{ra}, {din}], lora_B [{dout}, {rb}] do not have r = {r}")
    (wo, wi), w0 = read(f"{base_dir}/model.safetensors")[f"{module}.weight"]
    (mo, mi), merged = read(f"{merged_dir}/model.safetensors")[f"{module}.weight"]
    if (wo, wi) != (dout, din) or (mo, mi) != (dout, din):
        raise SystemExit(f"shapes: W0 [{wo}, {wi}], merged [{mo}, {mi}], adapter [{dout}, {din}]")
    worst = 0.0
    for i in range(dout):
        for j in range(din):
            terms = [b[i * r + k] * a[k * din + j] for k in range(r)]
            want = w0[i * din + j] + s * sum(terms)
            bound = 4 * 2.0**-23 * (abs(w0[i * din + j]) + s * sum(abs(t) for t in terms))
            worst = max(worst, abs(merged[i * din + j] - want) / bound)
    print(f"{module}: [{dout}, {din}], r={r}, s={s:g}: largest deviation {worst:.3f} of the float32 bound")
    sys.exit(0 if worst <= 1 else 1)


if __name__ == "__main__":
    main()
