#!/usr/bin/env python3
"""PyTorch reference for DeMo-style chunked DCT top-k (written from the DeMo/templar description
in shared/FACTS.md, independently of bistro's C++).

  dct_ref.py IN.safetensors OUT.safetensors --k 32 --cap 64

For every tensor X in IN, writes X.idx (int32 [chunks, k]) and X.val (float32 [chunks, k]): the
k largest |coefficients| of each chunk, ties to the lower index, in ascending index order.
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import read_safetensors, write_safetensors  # noqa: E402


def largest_divisor(n, cap):
    for d in range(min(n, cap), 1, -1):
        if n % d == 0:
            return d
    return 1


def dct_matrix(n):
    d = torch.empty(n, n, dtype=torch.float64)
    for u in range(n):
        alpha = math.sqrt((1.0 if u == 0 else 2.0) / n)
        for x in range(n):
            d[u, x] = alpha * math.cos(math.pi * (2 * x + 1) * u / (2.0 * n))
    return d.float()


def encode(x, k, cap):
    rows, cols = (1, x.numel()) if x.dim() == 1 else (x.shape[0], x.numel() // x.shape[0])
    n1, n2 = largest_divisor(rows, cap), largest_divisor(cols, cap)
    blocks = x.reshape(rows // n1, n1, cols // n2, n2).permute(0, 2, 1, 3)
    c = (dct_matrix(n1) @ blocks @ dct_matrix(n2).T).reshape(-1, n1 * n2)
    k = n1 * n2 if rows == 1 else max(1, min(k, n1 * n2))  # a vector is sent whole
    order = torch.sort(-c.abs(), dim=-1, stable=True).indices[:, :k]
    idx = torch.sort(order, dim=-1).values
    return idx.to(torch.int32), torch.gather(c, 1, idx)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--cap", type=int, default=64)
    a = p.parse_args()
    torch.set_num_threads(1)
    out = {}
    for name, x in read_safetensors(a.input).items():
        idx, val = encode(x, a.k, a.cap)
        out[name + ".idx"] = idx
        out[name + ".val"] = val
    write_safetensors(a.output, out)


if __name__ == "__main__":
    main()
