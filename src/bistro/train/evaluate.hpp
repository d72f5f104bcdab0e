// A model's held-out loss and perplexity on a dataset and its accuracy on multiple-choice tasks
// (what `bistro eval` and the localnet's report read; ops/eval.hpp fetches the master's
// published checkpoint for it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bistro/data/mc_tasks.hpp"
#include "bistro/model/llama.hpp"

namespace bistro {

class Dataset;
class Tokenizer;

struct EvalOptions {
  int64_t pages = 8;  // held-out pages per dataset
  int64_t batch_rows = 8;
  int64_t seq_len = 128;
};
using EvalProgress = std::function<void(uint64_t done, uint64_t total)>;

struct HeldOutEval {
  std::string dataset;
  uint64_t tokens = 0;  // counted targets
  double loss = 0;      // mean next-token cross-entropy per target (nats)
  double perplexity = 0;
  double seconds = 0;
};
// Every token of `options.pages` held-out pages of the dataset: the pages keyed as the validator's
// held-out set ("bistro/validator-eval"; docs/protocol.md), packed into batch_rows x seq_len
// micro-batches. With save_batches, the exact batches are written there (safetensors input_ids,
// targets; int64) for an independent check.
HeldOutEval eval_held_out(Llama& model, const Tokenizer& tokenizer, Dataset& dataset,
                          const std::string& name, const EvalOptions& options,
                          const EvalProgress& progress = {},
                          const std::filesystem::path& save_batches = {});

struct TaskEval {
  std::string task;
  uint64_t items = 0;
  double acc = 0;       // the choice with the highest log-likelihood is the gold one
  double acc_norm = 0;  // the same, per byte of the choice (lm-evaluation-harness's acc_norm)
  double seconds = 0;
  std::vector<std::vector<double>> logliks;  // per item, per choice
};
// The log-likelihood of `continuation` after `context` (BOS + context; the continuation's tokens
// are where the tokens of context + continuation part from the context's), left-truncated to the
// model's max_position_embeddings. n_tokens: how many continuation tokens were scored.
double continuation_logprob(Llama& model, const Tokenizer& tokenizer, const std::string& context,
                            const std::string& continuation, int64_t* n_tokens = nullptr);
// Each choice is scored as " " + choice (lm-evaluation-harness's target delimiter) unless it
// starts with whitespace.
TaskEval eval_mc(Llama& model, const Tokenizer& tokenizer, const std::vector<McItem>& items,
                 const std::string& name, const EvalProgress& progress = {});

}  // namespace bistro
