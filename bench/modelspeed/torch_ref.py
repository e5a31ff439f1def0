#!/usr/bin/env python3
"""PyTorch side of bench/modelspeed: the same Qwen2 training step as lrtrain, in torch.

Run by the Go harness (go run ./bench/modelspeed), or by hand:

    /usr/bin/python3 bench/modelspeed/torch_ref.py --model DIR --adapters FILE \
        --inputs FILE --methods lrlora --threads 2 --warmup 1 --steps 5

It reads the checkpoint directory (config.json, model.safetensors), the adapter values
and the token batch that the harness wrote, attaches adapters to q,k,v,o,gate,up,down
of every layer, and times forward + causal-LM loss (sum / targets) + backward. For each
method it prints one line "MODELSPEED_RESULT {json}" with the first step's loss and
gradient norms (for the harness's agreement check), the step times, and RSS figures.

The model is golden.py's decoder (model/testdata/golden.py, float64, written after
transformers' modeling code) adapted to run in the checkpoint's float32 the way
transformers' Qwen2 does: RMSNorm in float32, rotate-half RoPE with float32 tables,
grouped-query attention through repeat_kv, eager attention with the mask filled with
finfo.min and a float32 softmax, SwiGLU MLP, q/k/v biases, tied embeddings.

Methods (W_eff = W0 + s*phi(B A), s = alpha/r, docs/method.md section 1):
  lrlora        phi(x) = sum_k a_k sinc(b_k (x - g_k)), b = softplus(beta), merged into
                W_eff; phi is a torch.autograd.Function written with torch ops that loops
                over k and saves only M, a, beta and g (the fused op's memory contract);
                its backward recomputes the K terms with sinc'(t) = (cos(pi t) - sinc(t))/t
                (a Taylor series near 0).
  lrlora-naive  the same phi as golden.py writes it: broadcast over a (d_out, d_in, K)
                axis and differentiated by autograd (small models only: it keeps
                several d_out*d_in*K tensors per layer).
  lora          phi(x) = x, merged: W_eff = W0 + s B A (what lrtrain computes).
  lora-peft     plain LoRA unmerged, as PEFT runs it: x W0^T + s (x A^T) B^T + bias.
"""

import argparse
import json
import math
import os
import re
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
          "BF16": torch.bfloat16, "I64": torch.int64}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
METHODS = ("lrlora", "lrlora-naive", "lora", "lora-peft")


def load_safetensors(path):
    """Reads every tensor straight into its own torch storage (one copy, no mmap)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        meta = header.pop("__metadata__", {})
        out = {}
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=DTYPES[info["dtype"]])
            if end > begin:
                f.seek(8 + n + begin)
                buf = t.view(-1).view(torch.uint8).numpy()
                if f.readinto(buf) != end - begin:
                    raise IOError("%s: short read of %s" % (path, name))
            out[name] = t
    return out, meta


def proc_status_kb(field):
    with open("/proc/self/status") as f:
        m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
    return int(m.group(1)) if m else 0


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- phi ------------------------------------------------------------------------

TAU = 1e-30  # u = b (M - g) + TAU: sin(pi u)/(pi u) is 1 where b (M - g) = 0, as the fused kernel does


def taylor_near_zero(dphi, u):
    """Replaces sinc'(u) by its Taylor series -(pi^2/3) u + (pi^4/30) u^3 - (pi^6/840) u^5
    where |u| < 0.1, where (cos(pi u) - sinc(u)) / u loses digits to cancellation."""
    u2 = u * u
    series = u * (-(math.pi ** 2) / 3 + u2 * ((math.pi ** 4) / 30 - u2 * (math.pi ** 6) / 840))
    return torch.where(u.abs() < 0.1, series, dphi)


class PhiSinc(torch.autograd.Function):
    """phi(M) = sum_k a_k sinc(b_k (M - g_k)), b = softplus(beta), in torch ops.

    One loop over k with in-place ops on three buffers shaped like M; torch's
    vectorised sin and cos are used (torch.sinc has no vectorised CPU kernel in 1.13
    and runs 5x slower). Backward recomputes the terms (docs/method.md section 4):
    dM = G * sum_k a_k b_k sinc'(u_k), da_k = sum G sinc(u_k),
    db_k = (a_k / b_k) sum G u_k sinc'(u_k), dbeta = db * sigmoid(beta)."""

    @staticmethod
    def forward(ctx, m, amp, beta, grid):
        ctx.save_for_backward(m, amp, beta, grid)
        b = F.softplus(beta).tolist()
        a, g = amp.tolist(), grid.tolist()
        out = torch.zeros_like(m)
        u, pu, s = torch.empty_like(m), torch.empty_like(m), torch.empty_like(m)
        for k in range(len(a)):
            torch.mul(m, b[k], out=u)
            u.sub_(b[k] * g[k] - TAU)
            torch.mul(u, math.pi, out=pu)
            torch.sin(pu, out=s)
            out.addcdiv_(s, pu, value=a[k])
        return out

    @staticmethod
    def backward(ctx, grad):
        m, amp, beta, grid = ctx.saved_tensors
        b = F.softplus(beta).tolist()
        a, g = amp.tolist(), grid.tolist()
        G = grad.contiguous().view(-1)
        lo, hi = float(m.min()), float(m.max())
        gm = torch.zeros_like(m).view(-1)
        u, c, s = (torch.empty_like(G) for _ in range(3))
        mf = m.contiguous().view(-1)
        ga, gb = [], []
        for k in range(len(a)):
            torch.mul(mf, b[k], out=u)
            u.sub_(b[k] * g[k] - TAU)
            torch.mul(u, math.pi, out=c)
            torch.sin(c, out=s)
            s.div_(c)  # sinc(u)
            ga.append(float(torch.dot(G, s)))
            torch.cos(c, out=c)
            c.sub_(s).div_(u)  # sinc'(u)
            if b[k] * (hi - g[k]) > -0.1 and b[k] * (lo - g[k]) < 0.1:  # some |u| < 0.1
                c = taylor_near_zero(c, u)
            gm.addcmul_(G, c, value=a[k] * b[k])
            c.mul_(u)
            gb.append(float(torch.dot(G, c)) * a[k] / b[k])
        ga = torch.tensor(ga, dtype=amp.dtype)
        gbeta = torch.tensor(gb, dtype=amp.dtype) * torch.sigmoid(beta)
        return gm.view_as(m), ga, gbeta, None


def phi_naive(ad):
    """golden.py's phi_of: broadcast over K, autograd keeps the (d_out, d_in, K) terms."""
    m = ad["lora_B"] @ ad["lora_A"]
    b = F.softplus(ad["phi.bandwidth_raw"])
    t = b * (m.unsqueeze(-1) - ad["phi.grid"])
    return (ad["phi.amplitude"] * torch.sinc(t)).sum(-1)


class Linears:
    """The checkpoint's linear layers with adapters on the target modules."""

    def __init__(self, weights, adapters, method, scaling):
        self.w, self.adapters, self.method, self.s = weights, adapters, method, scaling

    def __call__(self, x, module):
        w, bias = self.w[module + ".weight"], self.w.get(module + ".bias")
        ad = self.adapters.get(module)
        if ad is None:
            return F.linear(x, w, bias)
        if self.method == "lora-peft":
            return F.linear(x, w, bias) + self.s * F.linear(F.linear(x, ad["lora_A"]), ad["lora_B"])
        if self.method == "lora":
            delta = ad["lora_B"] @ ad["lora_A"]
        elif self.method == "lrlora-naive":
            delta = phi_naive(ad)
        else:
            delta = PhiSinc.apply(ad["lora_B"] @ ad["lora_A"], ad["phi.amplitude"],
                                  ad["phi.bandwidth_raw"], ad["phi.grid"])
        return F.linear(x, w + self.s * delta, bias)


# ---- the decoder (golden.py's, in the checkpoint dtype) ---------------------------

def rms_norm(x, w, eps):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, h, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


def decoder_logits(cfg, w, lin, ids):
    b, t = ids.shape
    hidden, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or hidden // nh
    eps = cfg["rms_norm_eps"]
    if cfg.get("rope_scaling") or cfg.get("use_sliding_window"):
        raise ValueError("rope scaling and sliding windows are not part of this benchmark")
    embed = w["model.embed_tokens.weight"]
    dt = embed.dtype

    inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    freqs = torch.arange(t, dtype=torch.float32)[:, None] * inv.float()[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dt)[None, None], emb.sin().to(dt)[None, None]
    hidden_mask = torch.ones(t, t, dtype=torch.bool).triu(1)[None, None]  # key j > query i
    lowest = torch.finfo(dt).min

    x = F.embedding(ids, embed)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = lin(h, p + "self_attn.q_proj").view(b, t, nh, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").view(b, t, nkv, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").view(b, t, nkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, nh // nkv), repeat_kv(v, nh // nkv)
        scores = (q @ k.transpose(2, 3)) * hd ** -0.5
        scores = scores.masked_fill(hidden_mask, lowest)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dt)
        o = (probs @ v).transpose(1, 2).reshape(b, t, nh * hd)
        x = x + lin(o, p + "self_attn.o_proj")

        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        m = F.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj")
        x = x + lin(m, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", embed)
    return F.linear(x, head)


def causal_lm_loss(logits, labels):
    v = logits.shape[-1]
    pred = logits[:, :-1].reshape(-1, v).float()
    target = labels[:, 1:].reshape(-1)
    loss = F.cross_entropy(pred, target, ignore_index=-100, reduction="sum")
    return loss, int((target != -100).sum())


# ---- driver ---------------------------------------------------------------------

def load_adapters(path, method, dtype):
    tensors, meta = load_safetensors(path)
    keys = ["lora_A", "lora_B"]
    if method.startswith("lrlora"):
        keys += ["phi.amplitude", "phi.bandwidth_raw", "phi.grid"]
    adapters = {}
    for name, t in tensors.items():
        for key in keys:
            if name.endswith("." + key):
                t = t.to(dtype)
                if key != "phi.grid":
                    t.requires_grad_(True)
                adapters.setdefault(name[:-len(key) - 1], {})[key] = t
    return adapters, float(meta["alpha"]) / float(meta["rank"])


def run(args, method):
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    weights, _ = load_safetensors(os.path.join(args.model, "model.safetensors"))
    adapters, scaling = load_adapters(args.adapters, method, weights["model.embed_tokens.weight"].dtype)
    ids = load_safetensors(args.inputs)[0]["input_ids"]
    want = cfg["num_hidden_layers"] * len(TARGETS)
    if len(adapters) != want:
        raise ValueError("%s holds adapters for %d modules, want %d" % (args.adapters, len(adapters), want))
    lin = Linears(weights, adapters, method, scaling)
    params = [(m + "." + k, t) for m, ad in sorted(adapters.items()) for k, t in sorted(ad.items()) if t.requires_grad]

    load_peak, rss_loaded = proc_status_kb("VmHWM"), proc_status_kb("VmRSS")
    reset = reset_peak_rss()
    res = {"side": "pytorch", "method": method, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "batch": ids.shape[0], "seq": ids.shape[1],
           "rss_loaded_kb": rss_loaded, "peak_reset": reset, "fwd_ms": [], "bwd_ms": [], "step_ms": []}
    for step in range(args.warmup + args.steps):
        for _, p in params:
            p.grad = None
        t0 = time.perf_counter()
        logits = decoder_logits(cfg, weights, lin, ids)
        loss, count = causal_lm_loss(logits, ids)
        mean = loss / count
        t1 = time.perf_counter()
        mean.backward()
        t2 = time.perf_counter()
        if step == 0:
            res["loss"], res["count"] = float(mean), count
            res["grad_norms"] = {n: float(p.grad.double().norm()) for n, p in params}
            res["first_step_ms"] = (t2 - t0) * 1e3
        elif step >= args.warmup:
            res["fwd_ms"].append((t1 - t0) * 1e3)
            res["bwd_ms"].append((t2 - t1) * 1e3)
            res["step_ms"].append((t2 - t0) * 1e3)
        del logits, loss, mean
    if res["step_ms"]:
        res["median_ms"] = statistics.median(res["step_ms"])
    res["train_peak_kb"] = proc_status_kb("VmHWM")
    res["peak_kb"] = max(load_peak, res["train_peak_kb"])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint directory")
    ap.add_argument("--adapters", required=True, help="adapter values (safetensors)")
    ap.add_argument("--inputs", required=True, help="token batch (safetensors, input_ids)")
    ap.add_argument("--methods", default="lrlora", help="comma-separated: " + ", ".join(METHODS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps (at least 1: the first is the check step)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    args = ap.parse_args()
    if args.warmup < 1:
        sys.exit("torch_ref.py: --warmup must be at least 1 (the first step is the check step)")
    for method in args.methods.split(","):
        if method not in METHODS:
            sys.exit("torch_ref.py: method %r (want one of %s)" % (method, ", ".join(METHODS)))
        print("MODELSPEED_RESULT " + json.dumps(run(args, method)), flush=True)


if __name__ == "__main__":
    main()
