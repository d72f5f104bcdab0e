#!/usr/bin/env python3
"""bistro's DCT top-k update path vs a PyTorch implementation of the same steps (templar-style:
torch.topk, scatter, scatter_reduce mean), same shapes and thread count, in one run.

  /usr/bin/python3 bench/bench_compress.py [--bistro build/bistro] [--preset small] [--threads 2]
                                           [--layers -1] [--peers 4] [--k 32]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import warnings

warnings.filterwarnings("ignore", message="scatter_reduce")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
from dct_ref import dct_matrix, largest_divisor  # noqa: E402


def shapes(bistro, preset, layers):
    out = subprocess.run([bistro, "model", "info", "--preset", preset], check=True,
                         capture_output=True, text=True).stdout
    c = json.loads(out[:out.rindex("}") + 1])
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = h // c["num_attention_heads"] * c["num_key_value_heads"]
    n_layers = c["num_hidden_layers"] if layers < 0 else layers
    s = [(v, h)]
    for _ in range(n_layers):
        s += [(h, h), (kv, h), (kv, h), (h, h), (i, h), (i, h), (h, i), (h,), (h,)]
    return s + [(h,), (v, h)]


def plan(shape):
    rows, cols = (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])
    return rows, cols, largest_divisor(rows, 64), largest_divisor(cols, 64)


def to_chunks(x, p, mats):
    rows, cols, n1, n2 = p
    b = x.reshape(rows // n1, n1, cols // n2, n2).permute(0, 2, 1, 3)
    return (mats[n1] @ b @ mats[n2].T).reshape(-1, n1 * n2)


def from_chunks(c, p, mats, shape):
    rows, cols, n1, n2 = p
    b = mats[n1].T @ c.reshape(rows // n1, cols // n2, n1, n2) @ mats[n2]
    return b.permute(0, 2, 1, 3).reshape(shape)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--bistro", default="build/bistro")
    a.add_argument("--preset", default="small")
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--layers", type=int, default=-1)
    a.add_argument("--peers", type=int, default=4)
    a.add_argument("--k", type=int, default=32)
    a.add_argument("--repeats", type=int, default=3)
    args = a.parse_args()
    torch.set_num_threads(args.threads)
    cmd = [args.bistro, "bench", "compress", "--preset", args.preset, "--threads",
           str(args.threads), "--layers", str(args.layers), "--peers", str(args.peers), "--k",
           str(args.k), "--repeats", str(args.repeats), "--json"]
    b = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

    torch.manual_seed(0)
    params = [torch.randn(s) * 0.02 for s in shapes(args.bistro, args.preset, args.layers)]
    grads = [torch.randn(p.shape) * 1e-3 for p in params]
    mats = {}
    for p in params:
        for n in plan(p.shape)[2:]:
            mats.setdefault(n, dct_matrix(n))
    moms = [torch.zeros_like(p) for p in params]

    def encode():
        sent = []
        for p, g, m in zip(params, grads, moms):
            pl = plan(p.shape)
            m.mul_(0.999).add_(g, alpha=1e-3)
            c = to_chunks(m, pl, mats)
            k = max(1, min(args.k, c.shape[1]))
            _, idx = torch.topk(c.abs(), k, dim=1, sorted=False)
            val = torch.gather(c, 1, idx)
            m.sub_(from_chunks(torch.zeros_like(c).scatter_(1, idx, val), pl, mats, p.shape))
            sent.append((idx, val))
        return sent

    def merge(peers):
        for j, p in enumerate(params):
            pl = plan(p.shape)
            idxs = torch.cat([peer[j][0] for peer in peers], 1)
            vals = torch.cat([peer[j][1] for peer in peers], 1)
            mean = torch.zeros(idxs.shape[0], pl[2] * pl[3]).scatter_reduce(
                1, idxs, vals, "mean", include_self=False)
            d = from_chunks(mean, pl, mats, p.shape)
            p.mul_(1 - 1e-3 * 0.1).sub_(d.sign(), alpha=1e-3)

    # The same protocol as `bistro bench compress`: buffers exist before the clock starts, each
    # peer encodes its own gradient, medians over the peers (encode) and the repeats (merge).
    encode_times, peers = [], []
    for i in range(args.peers):
        if i > 0:
            for g in grads:
                g.normal_(0, 1e-3)
        t0 = time.perf_counter()
        peers.append(encode())
        encode_times.append(time.perf_counter() - t0)
    merge_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        merge(peers)
        merge_times.append(time.perf_counter() - t0)
    encode_s = statistics.median(encode_times)
    merge_s = statistics.median(merge_times)

    bt = b["encode_s"] + b["decode_s"] + b["merge_s"]
    pt = encode_s + merge_s
    print(f"preset {args.preset} shapes ({b['parameters']} parameters), k {args.k}, "
          f"{args.peers} peers, {args.threads} threads")
    print(f"{'':10s} {'encode':>8s} {'decode':>8s} {'merge':>8s} {'total':>8s}")
    print(f"{'bistro':10s} {b['encode_s']:8.3f} {b['decode_s']:8.3f} {b['merge_s']:8.3f} {bt:8.3f}")
    print(f"{'pytorch':10s} {encode_s:8.3f} {'-':>8s} {merge_s:8.3f} {pt:8.3f}")
    print(f"ratio PyTorch/bistro: {pt / bt:.2f}x   wire {b['wire_bytes'] / 1e6:.2f} MB, "
          f"{b['model_bytes'] / b['wire_bytes']:.0f}x smaller than fp32")


if __name__ == "__main__":
    main()
