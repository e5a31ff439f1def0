#!/usr/bin/env python3
"""Writes adamw_golden.json: torch.optim.AdamW trajectories that optim's tests replay.

Regenerate (Debian's python3-torch 1.13.1):
    cd optim/testdata && /usr/bin/python3 gen_adamw.py > adamw_golden.json

Two float64 parameters, six steps with a different learning rate each, weight
decay 0.1. Parameter "b" gets no gradient in step 1 (torch skips it and creates
its state lazily at step 2). After every step the file holds the parameters and
both moments. The test sets each step's gradient to the stored one through the
loss sum(p * grad), so the script and the test see identical gradients.
"""
import json

import torch

torch.manual_seed(1234)
params = {
    "a": torch.randn(3, 4, dtype=torch.float64),
    "b": torch.randn(5, dtype=torch.float64),
}
init = {k: v.clone() for k, v in params.items()}
for v in params.values():
    v.requires_grad_(True)
names = ["a", "b"]
opt = torch.optim.AdamW([params[n] for n in names], lr=1e-3, betas=(0.9, 0.999),
                        eps=1e-8, weight_decay=0.1)
lrs = [1e-2, 5e-3, 2e-2, 1e-3, 3e-2, 7e-3]
steps = []
for t, lr in enumerate(lrs):
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=False)
    grads = {n: torch.randn_like(params[n]) * (10.0 ** (t % 3 - 1)) for n in names}
    if t == 0:
        del grads["b"]  # no gradient for b in step 1
    loss = sum((params[n] * grads[n]).sum() for n in grads)
    loss.backward()
    opt.step()
    rec = {"lr": lr, "grads": {n: g.flatten().tolist() for n, g in grads.items()}, "after": {}}
    for i, n in enumerate(names):
        p = params[n]
        st = opt.state[p]
        if not st:
            continue
        rec["after"][n] = {
            "step": int(st["step"].item()),
            "param": p.detach().flatten().tolist(),
            "exp_avg": st["exp_avg"].flatten().tolist(),
            "exp_avg_sq": st["exp_avg_sq"].flatten().tolist(),
        }
    steps.append(rec)

out = {
    "version": 1,
    "torch": torch.__version__,
    "config": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
    "params": {n: {"shape": list(init[n].shape), "init": init[n].flatten().tolist()} for n in names},
    "order": names,
    "steps": steps,
}
print(json.dumps(out, indent=1))
