#!/usr/bin/env python3
"""transformers' side of the interop tests: it loads what bistro writes and writes what bistro
loads, with the real LlamaForCausalLM and AutoTokenizer (the versions pinned in
tools/python/requirements-transformers.txt, installed by scripts/setup into .venv).

  hf_interop.py logits DIR TOKENS.safetensors OUT.safetensors
      LlamaForCausalLM.from_pretrained(DIR) in fp32 (eager attention): "logits" of the "input_ids"
      in TOKENS, and "loss", transformers' own causal-LM loss with labels = input_ids.
  hf_interop.py init DIR CONFIG.json SEED
      a randomly initialised LlamaForCausalLM of that LlamaConfig, saved with save_pretrained.
  hf_interop.py tokenize DIR TEXTS.json OUT.json
      AutoTokenizer.from_pretrained(DIR), fast and slow: each text's ids without special tokens,
      and the first text's ids with them.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM


def logits(directory, tokens, out):
    model = LlamaForCausalLM.from_pretrained(directory, torch_dtype=torch.float32,
                                             attn_implementation="eager")
    model.eval()
    ids = load_file(tokens)["input_ids"].to(torch.int64)
    with torch.no_grad():
        res = model(input_ids=ids, labels=ids, use_cache=False)
    save_file({"logits": res.logits.float().contiguous(),
               "loss": res.loss.float().reshape(1).contiguous()}, out)


def init(directory, config_file, seed):
    torch.manual_seed(int(seed))
    config = LlamaConfig(**json.load(open(config_file)))
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)


def tokenize(directory, texts_file, out):
    texts = json.load(open(texts_file))
    result = {}
    for name, fast in (("fast", True), ("slow", False)):
        tok = AutoTokenizer.from_pretrained(directory, use_fast=fast)
        result[name] = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        result[name + "_class"] = type(tok).__name__
        result[name + "_with_special"] = tok(texts[0])["input_ids"] if texts else []
        result[name + "_vocab"] = len(tok)
    json.dump(result, open(out, "w"))


if __name__ == "__main__":
    commands = {"logits": logits, "init": init, "tokenize": tokenize}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
