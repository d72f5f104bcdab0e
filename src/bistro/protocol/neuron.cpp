#include "bistro/protocol/neuron.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/runtime/runtime.hpp"

namespace bistro {
NeuronData::NeuronData(const std::string& dataset_dir, const NeuronHparams& h)
    : dataset([&] {
        if (!dataset_dir.empty()) return LocalDataset(dataset_dir);
        build_default_corpus(default_corpus_dir(), {}, false);
        return LocalDataset(default_corpus_dir());
      }()),
      tokenizer(default_tokenizer_path()) {
  configs = dataset.configs();
  options.batch_rows = h.batch_rows;
  options.seq_len = h.seq_len;
  options.layout = BatchLayout::Packed;
}

std::vector<Batch> NeuronData::batches(const std::vector<Page>& pages, int64_t max_batches) {
  std::vector<Batch> out;
  for (const auto& tb : page_batches(dataset, tokenizer, pages, options)) {
    if (max_batches > 0 && static_cast<int64_t>(out.size()) >= max_batches) break;
    out.push_back(to_batch(tb, torch::kCPU));
  }
  return out;
}

std::vector<Batch> NeuronData::sample(uint64_t key, int64_t n) {
  PageBatchOptions o = options;
  o.page_rows = 1;
  std::vector<Batch> out;
  for (size_t docs = static_cast<size_t>(n * options.batch_rows), attempt = 0; attempt < 6;
       ++attempt, docs *= 2) {
    const auto tbs = page_batches(dataset, tokenizer, pages(key, docs, configs, 1), o);
    // Full micro-batches only (documents are short: a row packs several).
    int64_t full = 0;
    for (const auto& tb : tbs) full += tb.rows == options.batch_rows;
    if (full < n && attempt < 5) continue;
    for (const auto& tb : tbs) {
      if (static_cast<int64_t>(out.size()) >= n) break;
      out.push_back(to_batch(tb, torch::kCPU));
    }
    break;
  }
  return out;
}

std::vector<Batch> NeuronData::window_batches(uint64_t window, uint16_t uid,
                                              const NeuronHparams& h) {
  return batches(pages(local_pages_key(window, uid), h.pages_per_window, configs),
                 h.max_micro_batches);
}

std::vector<Batch> pick_batches(const std::vector<Batch>& batches, int64_t n, uint64_t key) {
  if (n >= static_cast<int64_t>(batches.size())) return batches;
  const int64_t per = batches.front().inputs.size(0);
  std::vector<std::pair<size_t, int64_t>> rows;  // (micro-batch, row)
  for (size_t b = 0; b < batches.size(); ++b) {
    check(batches[b].inputs.sizes() == batches.front().inputs.sizes(),
          "pick_batches: micro-batch {} differs in shape from the first", b);
    for (int64_t r = 0; r < per; ++r) rows.emplace_back(b, r);
  }
  const size_t want = static_cast<size_t>(n * per);
  rng::Stream s(key);
  for (size_t i = 0; i < want; ++i)  // a partial Fisher-Yates shuffle
    std::swap(rows[i], rows[i + s.below(rows.size() - i)]);
  rows.resize(want);
  std::sort(rows.begin(), rows.end());
  std::vector<Batch> out;
  for (size_t at = 0; at < want; at += static_cast<size_t>(per)) {
    std::vector<torch::Tensor> in, tg;
    for (size_t q = at; q < at + static_cast<size_t>(per); ++q) {
      in.push_back(batches[rows[q].first].inputs[rows[q].second]);
      tg.push_back(batches[rows[q].first].targets[rows[q].second]);
    }
    out.push_back({torch::stack(in), torch::stack(tg)});
  }
  return out;
}

std::vector<Batch> NeuronData::held_out(const NeuronHparams& h) {
  return batches(pages(held_out_pages_key(), h.eval_pages, configs),
                 h.codec == "sparseloco" ? 6 : 0);
}

TrainOptions inner_train_options(const NeuronHparams& h) {
  TrainOptions t;
  t.adamw.weight_decay = h.weight_decay;
  t.schedule = {.lr = h.lr, .warmup_steps = h.warmup_steps, .total_steps = 0};
  return t;
}

double mean_loss(Llama& model, const std::vector<Batch>& batches) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (const auto& b : batches) sum += model->loss(b.inputs, b.targets).item<double>();
  return batches.empty() ? 0.0 : sum / static_cast<double>(batches.size());
}

std::vector<torch::Tensor> parameter_tensors(Llama& model) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : model->ordered_parameters()) out.push_back(p);
  return out;
}

void copy_parameters(const std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < to.size(); ++i) to[i].copy_(from[i]);
}

std::vector<torch::Tensor> clone_parameters(const std::vector<torch::Tensor>& from) {
  std::vector<torch::Tensor> out;
  out.reserve(from.size());
  for (const auto& p : from) out.push_back(p.detach().clone());
  return out;
}

void rebase_parameters(const std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from,
                       const std::vector<torch::Tensor>& onto) {
  torch::NoGradGuard no_grad;
  check(to.size() == from.size() && to.size() == onto.size(),
        "rebase_parameters: {} tensors to move, {} and {} to move them by", to.size(), from.size(),
        onto.size());
  for (size_t i = 0; i < to.size(); ++i) to[i].add_((onto[i] - from[i]).to(to[i].device()));
}

UpdateExpectation update_expectation(const NeuronHparams& h, const LlamaConfig& config,
                                     uint64_t window, uint16_t uid, const std::string& hotkey) {
  UpdateExpectation e;
  e.codec = h.codec;
  e.k = h.codec == "slice" ? h.compression : h.codec == "sparseloco" ? h.topk : h.dct_k;
  if (h.codec == "sparseloco") e.value_bits = 2, e.index_bits = 12;
  e.chunk_cap = h.chunk_cap;
  e.window = window;
  e.uid = uid;
  e.hotkey = to_hex(ss58_decode(hotkey));
  e.config_hash = config_hash(config);
  e.params = parameter_specs(config);
  return e;
}

void neuron_log(int level, int threshold, const std::string& who, const std::string& message) {
  if (level > threshold) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  fmt::print(stderr, "{}.{:03} {} {}\n", secs / 1000, secs % 1000, who, message);
}

Compute neuron_compute(const NeuronArgs& a, const std::string& codec) {
  const Compute c = parse_compute(a.device, a.dtype);
  check(codec == "sparseloco" || (c.device.is_cpu() && !c.bf16),
        "--device {} --dtype {}: codec {} (protocol v1) runs on the CPU in fp32 only", a.device,
        a.dtype, codec);
  return c;
}

void wait_for_block(chain::Chain& chain, uint64_t block, double poll_seconds) {
  while (chain.block() < block)
    std::this_thread::sleep_for(std::chrono::duration<double>(poll_seconds));
}

}  // namespace bistro
