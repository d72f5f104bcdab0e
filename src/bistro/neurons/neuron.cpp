#include "bistro/neurons/neuron.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/core/files.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"

namespace bistro {
namespace {
template <typename F>
void each_hparam(NeuronHparams& h, F&& f) {
  f("preset", h.preset);
  f("init_seed", h.init_seed);
  f("blocks_per_window", h.blocks_per_window);
  f("pages_per_window", h.pages_per_window);
  f("eval_pages", h.eval_pages);
  f("score_batches", h.score_batches);
  f("batch_rows", h.batch_rows);
  f("seq_len", h.seq_len);
  f("max_micro_batches", h.max_micro_batches);
  f("lr", h.lr);
  f("weight_decay", h.weight_decay);
  f("codec", h.codec);
  f("inner_steps", h.inner_steps);
  f("max_inner_steps", h.max_inner_steps);
  f("warmup_steps", h.warmup_steps);
  f("topk", h.topk);
  f("ef_beta", h.ef_beta);
  f("outer_lr", h.outer_lr);
  f("checkpoint_interval", h.checkpoint_interval);
  f("compression", h.compression);
  f("dct_k", h.dct_k);
  f("chunk_cap", h.chunk_cap);
  f("dct_lr", h.dct_lr);
  f("score_ema", h.score_ema);
  f("temperature", h.temperature);
  f("weights_interval", h.weights_interval);
  f("grace_blocks", h.grace_blocks);
  f("failover_blocks", h.failover_blocks);
  f("rating_ema", h.rating_ema);
  f("record_peers", h.record_peers);
  f("copy_entries", h.copy_entries);
  f("copy_indices", h.copy_indices);
  f("margin_floor", h.margin_floor);
  f("record_guard", h.record_guard);
  f("upload_tolerance_ms", h.upload_tolerance_ms);
  f("score_random_batches", h.score_random_batches);
  f("harm_alpha", h.harm_alpha);
  f("evidence_alpha", h.evidence_alpha);
  f("trust_alpha", h.trust_alpha);
  f("evidence_decay", h.evidence_decay);
  f("pay_prior", h.pay_prior);
  f("null_reads", h.null_reads);
  f("burn_uid", h.burn_uid);
  f("score_budget", h.score_budget);
  f("close_budget", h.close_budget);
  f("judge_budget", h.judge_budget);
}
}  // namespace

nlohmann::json to_json(const NeuronHparams& h) {
  nlohmann::json j;
  NeuronHparams c = h;
  each_hparam(c, [&](const char* name, auto& v) { j[name] = v; });
  return j;
}

NeuronHparams load_hparams(const std::filesystem::path& file) {
  NeuronHparams h;
  if (file.empty()) return h;
  auto j = nlohmann::json::parse(read_file(file), nullptr, false);
  check(j.is_object(), "{}: hparams must be a JSON object", file.string());
  for (auto& [key, value] : j.items()) {
    bool found = false;
    each_hparam(h, [&](const char* name, auto& v) {
      if (key != name) return;
      found = true;
      using T = std::decay_t<decltype(v)>;
      try {
        if constexpr (std::is_unsigned_v<T>) check(value.is_number_unsigned(), "not unsigned");
        v = value.get<T>();
      } catch (const std::exception&) {
        fail("{}: {} has the wrong type", file.string(), key);
      }
    });
    check(found, "{}: unknown hparam '{}'", file.string(), key);
  }
  check(h.blocks_per_window > 0, "{}: blocks_per_window must be positive", file.string());
  check(h.compression > 0 && h.batch_rows > 0 && h.seq_len > 1 && h.max_micro_batches > 0,
        "{}: compression, batch_rows, seq_len and max_micro_batches must be positive",
        file.string());
  check(h.score_ema >= 0 && h.score_ema < 1, "{}: score_ema must be in [0, 1)", file.string());
  check(h.codec == "sparseloco" || h.codec == "slice" || h.codec == "dct-topk",
        "{}: codec '{}' is not sparseloco, slice or dct-topk", file.string(), h.codec);
  check(h.inner_steps > 0 && h.warmup_steps >= 0 && h.topk > 0 && h.checkpoint_interval > 0,
        "{}: inner_steps, topk and checkpoint_interval must be positive", file.string());
  check(h.ef_beta >= 0 && h.ef_beta <= 1 && h.outer_lr > 0,
        "{}: ef_beta must be in [0, 1] and outer_lr positive", file.string());
  check(h.dct_k > 0 && h.chunk_cap > 0, "{}: dct_k and chunk_cap must be positive", file.string());
  check(h.rating_ema >= 0 && h.rating_ema < 1 && h.margin_floor >= 0 && h.margin_floor < 1 &&
            h.record_peers > 0 && h.record_guard >= 0,
        "{}: rating_ema and margin_floor must be in [0, 1), record_peers positive and "
        "record_guard not negative",
        file.string());
  check(h.close_budget >= 0 && h.close_budget <= 1 && h.judge_budget >= 0 && h.judge_budget <= 1,
        "{}: close_budget and judge_budget must be in [0, 1]", file.string());
  check(h.max_inner_steps >= h.inner_steps, "{}: max_inner_steps must be at least inner_steps",
        file.string());
  check(h.harm_alpha > 0 && h.harm_alpha < 0.5 && h.evidence_alpha > 0 && h.evidence_alpha < 0.5,
        "{}: harm_alpha and evidence_alpha must be in (0, 0.5)", file.string());
  check(h.trust_alpha >= h.evidence_alpha && h.trust_alpha < 0.5,
        "{}: trust_alpha must be in [evidence_alpha, 0.5)", file.string());
  check(h.evidence_decay >= 0 && h.evidence_decay < 1, "{}: evidence_decay must be in [0, 1)",
        file.string());
  check(h.pay_prior >= 0 && h.pay_prior <= 1e6, "{}: pay_prior must be in [0, 1e6]", file.string());
  check(h.null_reads <= 1000000, "{}: null_reads must be at most 1e6", file.string());
  check(h.burn_uid >= -1 && h.burn_uid <= 65535, "{}: burn_uid must be a uid (0-65535) or -1",
        file.string());
  check(h.score_batches > 0 && h.score_random_batches > 0,
        "{}: score_batches and score_random_batches must be positive", file.string());
  check(h.copy_entries > 0 && h.copy_entries <= 1 && h.copy_indices > 0 && h.copy_indices <= 1,
        "{}: copy_entries and copy_indices must be in (0, 1]", file.string());
  return h;
}

GauntletParams gauntlet_params(const NeuronHparams& h) {
  GauntletParams p;
  p.copy_entries = h.copy_entries;
  p.copy_indices = h.copy_indices;
  p.upload_tolerance_ms = static_cast<int64_t>(h.upload_tolerance_ms);
  p.rating_ema = h.rating_ema;
  p.margin_floor = h.margin_floor;
  p.record_peers = h.record_peers;
  p.harm_alpha = h.harm_alpha;
  p.evidence_alpha = h.evidence_alpha;
  p.trust_alpha = h.trust_alpha;
  p.evidence_decay = h.evidence_decay;
  p.pay_prior = h.pay_prior;
  p.burn_uid = static_cast<int>(h.burn_uid);
  return p;
}

std::string hparams_hash(const NeuronHparams& h) {
  const std::string j = to_json(h).dump();
  return to_hex(sha256({reinterpret_cast<const uint8_t*>(j.data()), j.size()}));
}

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
