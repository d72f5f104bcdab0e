#!/usr/bin/env python3
"""bistro vs PyTorch, side by side in one run: the same model (built from the same checkpoint), the
same batch and thread count, the same training step (forward, backward, clip, AdamW).

  /usr/bin/python3 bench/bench_train.py [--bistro build/bistro] [--preset small] [--batch 8]
                                        [--seq-len 256] [--threads 2] [--steps 10] [--rounds 2]
                                        [--dtype fp32|bf16]

With --dtype bf16 both run under bf16 autocast (fp32 weights and AdamW state; PyTorch's
torch.autocast("cpu", torch.bfloat16)), and the peak is a bf16 product's.

Prints both throughputs, the ratio bistro/PyTorch, and each one's share of the sgemm peak. Rounds
alternate the two so that machine noise hits both alike.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import llama_ref  # noqa: E402


def bistro_run(a, extra=()):
    cmd = [a.bistro, "bench", "train", "--preset", a.preset, "--batch", str(a.batch), "--seq-len",
           str(a.seq_len), "--threads", str(a.threads), "--steps", str(a.steps), "--json",
           "--no-peak", "--dtype", a.dtype, *extra]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def torch_run(a, model, opt, ids, targets):
    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            logits = model(ids)
        loss = llama_ref.loss_fn(logits.float(), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    secs = time.perf_counter() - t0
    return a.steps * a.batch * a.seq_len / secs


def sgemm_peak(dtype):
    n = 4096
    x, y = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    out = torch.mm(x, y)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        torch.mm(x, y, out=out)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bistro", default="build/bistro")
    p.add_argument("--preset", default="small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.bistro, "model", "init", "--preset", a.preset, "--out", d + "/ck"],
                       check=True, capture_output=True)
        model = llama_ref.load(d + "/ck")
    c = model.c
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1)
    torch.manual_seed(0)
    ids = torch.randint(c["vocab_size"], (a.batch, a.seq_len))
    targets = torch.randint(c["vocab_size"], (a.batch, a.seq_len))

    n_matmul = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    flops_per_token = 6 * n_matmul + 12 * c["num_hidden_layers"] * c["hidden_size"] * a.seq_len

    best = {"bistro": 0.0, "bistro-unfused": 0.0, "pytorch": 0.0}
    for _ in range(a.rounds):
        best["bistro"] = max(best["bistro"], bistro_run(a)["tokens_per_s"])
        best["bistro-unfused"] = max(best["bistro-unfused"],
                                     bistro_run(a, ["--unfused"])["tokens_per_s"])
        best["pytorch"] = max(best["pytorch"], torch_run(a, model, opt, ids, targets))
    peak = sgemm_peak(torch.bfloat16 if a.dtype == "bf16" else torch.float32)

    print(f"preset {a.preset}, batch {a.batch}x{a.seq_len}, {a.threads} threads, {a.dtype}, "
          f"torch {torch.__version__}, {a.dtype} matmul peak {peak:.1f} GFLOP/s")
    print(f"{'':16s} {'tokens/s':>10s} {'GFLOP/s':>9s} {'of peak':>8s} {'vs PyTorch':>11s}")
    for name, tps in best.items():
        gf = tps * flops_per_token / 1e9
        print(f"{name:16s} {tps:10.1f} {gf:9.1f} {100 * gf / peak:7.1f}% "
              f"{tps / best['pytorch']:10.3f}x")


if __name__ == "__main__":
    main()
