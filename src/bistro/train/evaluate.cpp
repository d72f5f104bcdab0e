#include "bistro/train/evaluate.hpp"

#include <chrono>
#include <cmath>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/data/pages.hpp"
#include "bistro/data/tokenizer.hpp"
#include "bistro/model/safetensors.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {
namespace fs = std::filesystem;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void write_batches(const fs::path& file, const std::vector<TokenBatch>& batches) {
  std::vector<int64_t> inputs, targets;
  int64_t rows = 0, seq = 0;
  for (const auto& b : batches) {
    check(seq == 0 || b.seq_len == seq, "eval: batches of different lengths");
    seq = b.seq_len, rows += b.rows;
    inputs.insert(inputs.end(), b.inputs.begin(), b.inputs.end());
    targets.insert(targets.end(), b.targets.begin(), b.targets.end());
  }
  safetensors::write(file, {{"input_ids", safetensors::DType::I64, {rows, seq}, inputs.data()},
                            {"targets", safetensors::DType::I64, {rows, seq}, targets.data()}});
}
}  // namespace

HeldOutEval eval_held_out(Llama& model, const Tokenizer& tokenizer, Dataset& dataset,
                          const std::string& name, const EvalOptions& o,
                          const EvalProgress& progress, const fs::path& save_batches) {
  check(o.pages > 0 && o.batch_rows > 0 && o.seq_len > 1,
        "eval: pages, batch and seq-len must be "
        "positive (seq-len at least 2)");
  check(o.seq_len <= model->config().max_position_embeddings,
        "eval: --seq-len {} is longer than the model's max_position_embeddings {}", o.seq_len,
        model->config().max_position_embeddings);
  const auto start = std::chrono::steady_clock::now();
  const auto held_out =
      pages(held_out_pages_key(), static_cast<size_t>(o.pages), dataset.configs());
  PageBatchOptions po;
  po.batch_rows = o.batch_rows;
  po.seq_len = o.seq_len;
  po.layout = BatchLayout::Packed;
  const auto batches = page_batches(dataset, tokenizer, held_out, po);
  check(!batches.empty(), "eval: {}: the held-out pages hold no tokens", name);
  if (!save_batches.empty()) write_batches(save_batches, batches);
  torch::NoGradGuard no_grad;
  model->eval();
  double sum = 0;
  uint64_t count = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const Batch b = to_batch(batches[i], torch::kCPU);
    sum += model->loss_sum(b.inputs, b.targets).item<double>();
    count += static_cast<uint64_t>((b.targets != -100).sum().item<int64_t>());
    if (progress) progress(i + 1, batches.size());
  }
  HeldOutEval r{name, count, count ? sum / static_cast<double>(count) : NAN, 0,
                seconds_since(start)};
  r.perplexity = std::exp(r.loss);
  return r;
}

double continuation_logprob(Llama& model, const Tokenizer& tokenizer, const std::string& context,
                            const std::string& continuation, int64_t* n_tokens) {
  std::vector<int32_t> ctx = tokenizer.encode(context),
                       full = tokenizer.encode(context + continuation);
  ctx.insert(ctx.begin(), tokenizer.bos_id());
  full.insert(full.begin(), tokenizer.bos_id());
  // SentencePiece may merge across the boundary: the continuation starts where the two part.
  size_t split = 0;
  while (split < ctx.size() && split < full.size() && ctx[split] == full[split]) ++split;
  split = std::max<size_t>(split, 1);  // at least the BOS is context
  check(split < full.size(), "eval: the continuation '{}' adds no tokens", continuation);
  const auto max_len = static_cast<size_t>(model->config().max_position_embeddings) + 1;
  const size_t drop = full.size() > max_len ? full.size() - max_len : 0;
  std::vector<int64_t> ids(full.begin() + static_cast<ptrdiff_t>(drop), full.end());
  const auto n = static_cast<int64_t>(ids.size());
  auto t = torch::from_blob(ids.data(), {1, n}, torch::kInt64).clone();
  torch::NoGradGuard no_grad;
  const auto logp =
      torch::log_softmax(model->logits(t.narrow(1, 0, n - 1)).to(torch::kCPU, torch::kFloat64), -1);
  double sum = 0;
  const auto first = static_cast<int64_t>(split - std::min(split, drop)) - 1;
  for (int64_t i = std::max<int64_t>(first, 0); i < n - 1; ++i)
    sum += logp[0][i][ids[static_cast<size_t>(i + 1)]].item<double>();
  if (n_tokens) *n_tokens = n - 1 - std::max<int64_t>(first, 0);
  return sum;
}

TaskEval eval_mc(Llama& model, const Tokenizer& tokenizer, const std::vector<McItem>& items,
                 const std::string& name, const EvalProgress& progress) {
  const auto start = std::chrono::steady_clock::now();
  model->eval();
  TaskEval r{name, items.size(), 0, 0, 0, {}};
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    size_t best = 0, best_norm = 0;
    double best_ll = -INFINITY, best_ll_norm = -INFINITY;
    auto& lls = r.logliks.emplace_back();
    for (size_t c = 0; c < item.choices.size(); ++c) {
      const auto& choice = item.choices[c];
      const bool spaced = !choice.empty() && std::isspace(static_cast<unsigned char>(choice[0]));
      const std::string cont = spaced ? choice : " " + choice;
      const double ll = continuation_logprob(model, tokenizer, item.context, cont);
      lls.push_back(ll);
      const double ll_norm = ll / static_cast<double>(std::max<size_t>(cont.size(), 1));
      if (ll > best_ll) best_ll = ll, best = c;
      if (ll_norm > best_ll_norm) best_ll_norm = ll_norm, best_norm = c;
    }
    r.acc += best == item.gold;
    r.acc_norm += best_norm == item.gold;
    if (progress) progress(i + 1, items.size());
  }
  r.acc /= static_cast<double>(std::max<size_t>(items.size(), 1));
  r.acc_norm /= static_cast<double>(std::max<size_t>(items.size(), 1));
  r.seconds = seconds_since(start);
  return r;
}

}  // namespace bistro
