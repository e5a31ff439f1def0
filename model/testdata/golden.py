#!/usr/bin/env python3
"""Reference outputs for the golden tests of lrtrain's model package.

Regenerate (from the repository root; Debian's python3-torch 1.13):

    go run ./model/testdata/gen && /usr/bin/python3 model/testdata/golden.py

For every case directory under model/testdata/golden/ this reads config.json,
model.safetensors and inputs.safetensors (written by the Go program gen/) and writes
golden.safetensors with the logits, the loss sum and the number of targets, all in
float64. For a case with adapters.safetensors it also attaches LR-LoRA adapters to
every linear layer and writes the gradients of the loss (sum / targets) with respect
to every adapter tensor as "grad.<name>".

The models are written here from scratch in plain PyTorch, following the conventions
of Hugging Face transformers' modeling code (transformers itself is not needed):
rotate-half RoPE with Llama 3 frequency scaling, grouped-query attention through
repeat_kv, RMSNorm, Qwen2's q/k/v biases and tied embeddings, Phi-3's fused qkv_proj
and gate_up_proj split after the projection, sliding-window causal masks (key j is
hidden from query i when i - j >= window), RoBERTa's position ids that start after
padding_idx, BERT's pooler. Everything runs in float64, so the Go side can be
compared tightly in float64 and loosely in float32.

LR-LoRA (docs/method.md section 1): M = B A, phi(x) = sum_k a_k sinc(b_k (x - g_k)) with
b_k = softplus(beta_k) and sinc(t) = sin(pi t)/(pi t), dW = s phi(M), s = alpha/r,
W_eff = W0 + dW.
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

FORMAT = "lrtrain-model-golden"
VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
          "BF16": torch.bfloat16, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = DTYPES[info["dtype"]]
        buf = bytearray(data[base + begin:base + end])
        t = torch.frombuffer(buf, dtype=dt) if buf else torch.zeros(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    return out, header.get("__metadata__", {})


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


class Weights:
    """Checkpoint tensors as float64; Linear layers may carry LR-LoRA adapters."""

    def __init__(self, tensors, adapters=None, scaling=1.0):
        self.t = {k: v.to(torch.float64) for k, v in tensors.items()}
        self.adapters = adapters or {}
        self.scaling = scaling

    def __getitem__(self, name):
        return self.t[name]

    def has(self, name):
        return name in self.t

    def linear(self, x, module):
        w = self.t[module + ".weight"]
        if module in self.adapters:
            w = w + self.scaling * phi_of(self.adapters[module])
        return F.linear(x, w, self.t.get(module + ".bias"))


def phi_of(ad):
    m = ad["lora_B"] @ ad["lora_A"]
    b = F.softplus(ad["phi.bandwidth_raw"])
    t = b * (m.unsqueeze(-1) - ad["phi.grid"])
    return (ad["phi.amplitude"] * torch.sinc(t)).sum(-1)


# ---- decoders --------------------------------------------------------------------

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def inv_freq(cfg, head_dim):
    dim = int(head_dim * (cfg.get("partial_rotary_factor") or 1.0))
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    rs = cfg.get("rope_scaling")
    kind = (rs or {}).get("rope_type", (rs or {}).get("type", "default"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    elif kind != "default":
        raise ValueError("rope type " + kind)
    return inv


def repeat_kv(x, n_rep):
    b, h, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


def layer_window(cfg, i):
    win = cfg.get("sliding_window")
    if win is None:
        return 0
    if cfg["model_type"] == "qwen2":
        if not cfg.get("use_sliding_window") or i < cfg.get("max_window_layers", 0):
            return 0
    return win


def decoder_logits(cfg, w, ids, mask):
    b, t = ids.shape
    hidden, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or hidden // nh
    eps = cfg["rms_norm_eps"]
    phi3 = cfg["model_type"] == "phi3"

    x = w["model.embed_tokens.weight"][ids]
    pos = torch.arange(t, dtype=torch.float64)[None]
    freqs = pos[:, :, None] * inv_freq(cfg, hd)[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    rot = cos.shape[-1]

    def rope(v):
        vr, vp = v[..., :rot], v[..., rot:]
        return torch.cat((vr * cos + rotate_half(vr) * sin, vp), dim=-1)

    qi = torch.arange(t)[:, None]
    kj = torch.arange(t)[None, :]
    lowest = torch.finfo(torch.float64).min
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        allowed = kj <= qi
        win = layer_window(cfg, i)
        if win:
            allowed = allowed & ((qi - kj) < win)
        allowed = allowed[None, None] & (mask[:, None, None, :] != 0)

        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        if phi3:
            qkv = w.linear(h, p + "self_attn.qkv_proj")
            q = qkv[..., :nh * hd]
            k = qkv[..., nh * hd:nh * hd + nkv * hd]
            v = qkv[..., nh * hd + nkv * hd:]
        else:
            q = w.linear(h, p + "self_attn.q_proj")
            k = w.linear(h, p + "self_attn.k_proj")
            v = w.linear(h, p + "self_attn.v_proj")
        q = rope(q.view(b, t, nh, hd).transpose(1, 2))
        k = rope(k.view(b, t, nkv, hd).transpose(1, 2))
        v = v.view(b, t, nkv, hd).transpose(1, 2)
        k, v = repeat_kv(k, nh // nkv), repeat_kv(v, nh // nkv)
        scores = (q @ k.transpose(2, 3)) * hd ** -0.5
        scores = scores + torch.where(allowed, 0.0, lowest)
        probs = torch.softmax(scores, dim=-1)
        o = (probs @ v).transpose(1, 2).reshape(b, t, nh * hd)
        x = x + w.linear(o, p + "self_attn.o_proj")

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        if phi3:
            gate, up = w.linear(h, p + "mlp.gate_up_proj").chunk(2, dim=-1)
            m = up * F.silu(gate)
        else:
            m = F.silu(w.linear(h, p + "mlp.gate_proj")) * w.linear(h, p + "mlp.up_proj")
        x = x + w.linear(m, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["lm_head.weight"] if w.has("lm_head.weight") else w["model.embed_tokens.weight"]
    return x @ head.T


def causal_lm_loss(logits, labels):
    v = logits.shape[-1]
    pred = logits[:, :-1].reshape(-1, v)
    target = labels[:, 1:].reshape(-1)
    loss = F.cross_entropy(pred, target, ignore_index=-100, reduction="sum")
    return loss, int((target != -100).sum())


# ---- encoders --------------------------------------------------------------------

def encoder_logits(cfg, w, ids, mask, token_types):
    p = cfg["model_type"]
    roberta = p == "roberta"
    b, t = ids.shape
    hidden, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = hidden // nh
    eps = cfg["layer_norm_eps"]
    pad = cfg["pad_token_id"]

    def ln(x, name):
        return F.layer_norm(x, (hidden,), w[name + ".weight"], w[name + ".bias"], eps)

    if roberta:
        tok = (ids != pad).long()
        pos = torch.cumsum(tok, dim=1) * tok + pad
    else:
        pos = torch.arange(t)[None]
    if token_types is None:
        token_types = torch.zeros_like(ids)
    e = p + ".embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "token_type_embeddings.weight"][token_types]
    x = x + w[e + "position_embeddings.weight"][pos]
    x = ln(x, e + "LayerNorm")
    ext = (1.0 - mask[:, None, None, :].to(torch.float64)) * torch.finfo(torch.float64).min
    for i in range(cfg["num_hidden_layers"]):
        l = "%s.encoder.layer.%d." % (p, i)

        def split(v):
            return v.view(b, t, nh, hd).transpose(1, 2)
        q = split(w.linear(x, l + "attention.self.query"))
        k = split(w.linear(x, l + "attention.self.key"))
        v = split(w.linear(x, l + "attention.self.value"))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + ext
        ctx = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, t, hidden)
        a = ln(w.linear(ctx, l + "attention.output.dense") + x, l + "attention.output.LayerNorm")
        inter = F.gelu(w.linear(a, l + "intermediate.dense"))
        x = ln(w.linear(inter, l + "output.dense") + a, l + "output.LayerNorm")
    first = x[:, 0]
    if roberta:
        return w.linear(torch.tanh(w.linear(first, "classifier.dense")), "classifier.out_proj")
    pooled = torch.tanh(w.linear(first, "bert.pooler.dense"))
    return w.linear(pooled, "classifier")


# ---- driver ----------------------------------------------------------------------

def load_adapters(path):
    tensors, meta = read_safetensors(path)
    adapters = {}
    for name, t in tensors.items():
        for suffix in (".lora_A", ".lora_B", ".phi.amplitude", ".phi.bandwidth_raw", ".phi.grid"):
            if name.endswith(suffix):
                module = name[:-len(suffix)]
                t = t.to(torch.float64)
                if suffix != ".phi.grid":
                    t.requires_grad_(True)
                adapters.setdefault(module, {})[suffix[1:]] = t
    scaling = float(meta["alpha"]) / float(meta["rank"])
    return adapters, scaling


def run_case(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    weights, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    inputs, _ = read_safetensors(os.path.join(d, "inputs.safetensors"))
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    out = {}
    if cfg["model_type"] in ("roberta", "bert"):
        w = Weights(weights)
        logits = encoder_logits(cfg, w, ids, mask, inputs.get("token_type_ids"))
        if "scores" in inputs:
            loss = ((logits.view(-1) - inputs["scores"].to(torch.float64)) ** 2).sum()
            count = logits.shape[0]
        else:
            labels = inputs["class_labels"]
            loss = F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")
            count = int((labels != -100).sum())
    else:
        w = Weights(weights)
        logits = decoder_logits(cfg, w, ids, mask)
        loss, count = causal_lm_loss(logits, inputs["labels"])
    out["logits"] = logits.detach()
    out["loss_sum"] = loss.detach().reshape(1)
    out["target_count"] = torch.tensor([count], dtype=torch.int64)

    ad_path = os.path.join(d, "adapters.safetensors")
    if os.path.exists(ad_path):
        adapters, scaling = load_adapters(ad_path)
        w = Weights(weights, adapters, scaling)
        logits = decoder_logits(cfg, w, ids, mask)
        loss, count = causal_lm_loss(logits, inputs["labels"])
        (loss / count).backward()
        out["adapted.logits"] = logits.detach()
        out["adapted.loss_sum"] = loss.detach().reshape(1)
        for module, ts in adapters.items():
            for key, t in ts.items():
                if t.requires_grad:
                    out["grad.%s.%s" % (module, key)] = t.grad.detach()
    meta = {"format": FORMAT, "version": str(VERSION), "torch": torch.__version__,
            "regenerate": "go run ./model/testdata/gen && /usr/bin/python3 model/testdata/golden.py"}
    write_safetensors(os.path.join(d, "golden.safetensors"), out, meta)
    print("wrote", os.path.join(d, "golden.safetensors"), "loss/count =", float(loss) / max(count, 1))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "golden")
    torch.set_default_dtype(torch.float64)
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if os.path.isdir(d) and os.path.exists(os.path.join(d, "config.json")):
            run_case(d)


if __name__ == "__main__":
    main()
