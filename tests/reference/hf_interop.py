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
  hf_interop.py perplexity DIR BATCHES.safetensors OUT.json
      the token-mean cross-entropy of LlamaForCausalLM's logits of "input_ids" against "targets"
      (next tokens, -100 where none), and its exponential.
  hf_interop.py choices DIR TASKS.jsonl OUT.json
      each choice's log-likelihood after its context, with transformers' model and tokenizer:
      BOS + context, the continuation " " + choice from where the tokens of context + continuation
      part from the context's.
"""
import json
import math
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM


def logits(directory, tokens, out):
    model = load(directory)
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


def load(directory):
    model = LlamaForCausalLM.from_pretrained(directory, torch_dtype=torch.float32,
                                             attn_implementation="eager")
    return model.eval()


def perplexity(directory, batches, out):
    model = load(directory)
    b = load_file(batches)
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, b["input_ids"].shape[0], 8):
            ids, targets = b["input_ids"][i:i + 8], b["targets"][i:i + 8]
            logits = model(input_ids=ids, use_cache=False).logits.double()
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                reduction="sum").item()
            count += int((targets != -100).sum())
    json.dump({"tokens": count, "loss": total / count, "perplexity": math.exp(total / count)},
              open(out, "w"))


def choices(directory, tasks, out):
    model, tok = load(directory), AutoTokenizer.from_pretrained(directory)
    result = []
    for line in open(tasks):
        if not line.strip():
            continue
        doc = json.loads(line)
        context = doc.get("query", doc.get("context"))
        lls = []
        for choice in doc["choices"]:
            cont = choice if choice[:1].isspace() else " " + choice
            ctx = [tok.bos_token_id] + tok(context, add_special_tokens=False)["input_ids"]
            full = [tok.bos_token_id] + tok(context + cont, add_special_tokens=False)["input_ids"]
            split = 0
            while split < min(len(ctx), len(full)) and ctx[split] == full[split]:
                split += 1
            split = max(split, 1)
            with torch.no_grad():
                logp = torch.log_softmax(
                    model(input_ids=torch.tensor([full[:-1]]), use_cache=False).logits.double(), -1)
            lls.append(sum(logp[0, i - 1, full[i]].item() for i in range(split, len(full))))
        result.append(lls)
    json.dump(result, open(out, "w"))


if __name__ == "__main__":
    commands = {"logits": logits, "init": init, "tokenize": tokenize, "perplexity": perplexity,
                "choices": choices}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
