#!/usr/bin/python3
"""One training step of the repro model, checked against PyTorch in float64.

The reproduction recipe's model is Nystromformer's LRA/code model.py (lra.md): this script writes
that model's forward pass afresh in PyTorch - token + learned position embeddings, pre-LN blocks
with softmax attention masked by `dot - 1e6 * (1 - mask)`, a final LayerNorm whose padded rows are
zeroed, MEAN pooling as the sum over the padded length divided by it (the power of two), a
Dense-ReLU-Dense head and the mean cross-entropy - loads the parameters lra-bench had before one
training step, runs that step's batch, and compares the loss and every parameter's gradient with
lra-bench's. Dropout must be off in the run (--dropout=0 --attn-dropout=0).

    apt-get install python3-torch      # Debian's PyTorch; run with /usr/bin/python3
    LRA_TEST_DUMP_STEP=0:/tmp/xc build/lra-bench --task=listops --backend=full --steps=1 \\
        --dropout=0 --attn-dropout=0 --eval-every=0 --final-eval=subset --eval-subset=32 --out=/tmp/xc/r.json
    /usr/bin/python3 scripts/torch_crosscheck.py /tmp/xc            # our LayerNorm eps (1e-6)
    /usr/bin/python3 scripts/torch_crosscheck.py /tmp/xc --pytorch  # theirs: eps 1e-5
Both use the exact (erf) GELU, as lra-bench does since numerics 8 (flax's tanh form before).
"""
import json
import math
import sys

import numpy as np
import torch

d = sys.argv[1]
theirs = "--pytorch" in sys.argv[2:]
step = json.load(open(f"{d}/step.json"))
cfg = json.load(open(f"{d}/r.json"))["config"]
params = np.fromfile(f"{d}/params.f32", dtype=np.float32)
grads = np.fromfile(f"{d}/grads.f32", dtype=np.float32)
names = sorted(step["tensors"], key=lambda k: step["tensors"][k])
offsets = [step["tensors"][k] for k in names] + [len(params)]
torch.set_default_dtype(torch.float64)
P = {k: torch.tensor(params[offsets[i]:offsets[i + 1]].astype(np.float64), requires_grad=True)
     for i, k in enumerate(names)}
G = {k: grads[offsets[i]:offsets[i + 1]].astype(np.float64) for i, k in enumerate(names)}

B, L = step["B"], step["L"]
C, NH, Q, M = cfg["emb"], cfg["heads"], cfg["qkv"], cfg["mlp"]
hs = Q // NH
pool_len = 1 << math.ceil(math.log2(cfg["max-len"])) if cfg["mean-len"] == "pow2" else cfg["max-len"]
tokens = torch.tensor(step["tokens"]).reshape(B, L)
mask = torch.tensor(step["mask"], dtype=torch.float64).reshape(B, L)
labels = torch.tensor(step["labels"])
eps = 1e-5 if theirs else 1e-6


def W(name, rows):
    return P[name].reshape(rows, -1)


def layernorm(x, w, b):
    return torch.nn.functional.layer_norm(x, (C,), P[w], P[b], eps)


def gelu(x):
    return torch.nn.functional.gelu(x, approximate="none")


def attention(x, l):
    qkv = x @ W(f"blocks.{l}.qkvw", 3 * Q).T + P[f"blocks.{l}.qkvb"]
    q, k, v = (t.reshape(B, L, NH, hs).transpose(1, 2) for t in qkv.split(Q, dim=-1))
    dot = q @ k.transpose(-2, -1) / math.sqrt(hs)
    dot = dot - 1e6 * (1 - mask[:, None, None, :])
    out = torch.softmax(dot, dim=-1) @ v
    out = out.transpose(1, 2).reshape(B, L, Q)
    return out @ W(f"blocks.{l}.projw", C).T + P[f"blocks.{l}.projb"]


x = P["wte"].reshape(-1, C)[tokens] + P["pos"].reshape(-1, C)[:L][None]
for l in range(cfg["layers"]):
    x = x + attention(layernorm(x, f"blocks.{l}.ln1w", f"blocks.{l}.ln1b"), l)
    h = layernorm(x, f"blocks.{l}.ln2w", f"blocks.{l}.ln2b") @ W(f"blocks.{l}.fcw", M).T + P[f"blocks.{l}.fcb"]
    x = x + gelu(h) @ W(f"blocks.{l}.fcprojw", C).T + P[f"blocks.{l}.fcprojb"]
x = layernorm(x, "lnfw", "lnfb") * mask[:, :, None]
pooled = x.sum(dim=1) / pool_len  # their inp.mean(dim=1) over the padded length
hid = torch.relu(pooled @ W("h1w", M).T + P["h1b"])
logits = hid @ W("h2w", P["h2b"].numel()).T + P["h2b"]
loss = torch.nn.functional.cross_entropy(logits, labels)
loss.backward()

print(f"{'PyTorch (LayerNorm eps 1e-5)' if theirs else 'our LayerNorm eps 1e-6'}, erf GELU, float64; "
      f"batch {B} x {L}, pooling over {pool_len}")
print(f"loss: lra-bench {step['loss']:.9f}, torch {loss.item():.9f}, relative difference "
      f"{abs(step['loss'] - loss.item()) / loss.item():.2e}")
worst = 0.0
for k in names:
    ref = P[k].grad.numpy()
    err = np.linalg.norm(G[k] - ref) / max(np.linalg.norm(ref), 1e-30)
    worst = max(worst, err)
    print(f"  d{k:<18} |g| {np.linalg.norm(ref):.3e}  relative L2 difference {err:.2e}")
print(f"largest relative L2 difference of a gradient: {worst:.2e}")
