#!/usr/bin/env python3
"""PyTorch's training step of the model bistro benchmarks, for bench/device_check.sh: transformers'
LlamaForCausalLM built from the same config.json (`bistro model init`), the same batch shape,
forward + backward + clip + AdamW, under bf16 autocast with fp32 weights as bistro runs it.

  device_torch_ref.py CONFIG.json --batch B --seq-len T [--device cuda] [--dtype bf16]
                      [--steps N] [--compile] [--peak-tflops P]

Prints one JSON line: mode (eager or compile), step_ms, tokens_per_s, mfu (with a peak).
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=0)
    ap.add_argument("--flops-per-token", type=float, default=0)
    a = ap.parse_args()
    with open(a.config) as f:
        cfg = LlamaConfig(**{k: v for k, v in json.load(f).items() if k != "architectures"})
    sdpa = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 1)
    cfg._attn_implementation = "sdpa" if sdpa else "eager"
    dev = torch.device(a.device)
    model = LlamaForCausalLM(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1,
                            **({"fused": True} if dev.type == "cuda" else {}))
    fwd = torch.compile(model) if a.compile else model
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(cfg.vocab_size, (a.batch, a.seq_len), generator=g).to(dev)
    tgt = torch.randint(cfg.vocab_size, (a.batch, a.seq_len), generator=g).to(dev)
    amp = a.dtype == "bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits = fwd(input_ids=ids).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), tgt.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    secs = (time.perf_counter() - t0) / a.steps
    tps = a.batch * a.seq_len / secs
    mfu = tps * a.flops_per_token / (a.peak_tflops * 1e12) if a.peak_tflops > 0 else 0
    print(json.dumps({"mode": "compile" if a.compile else "eager", "step_ms": secs * 1e3,
                      "tokens_per_s": tps, "mfu": mfu, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
