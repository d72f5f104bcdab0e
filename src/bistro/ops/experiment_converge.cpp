#include "bistro/ops/experiment_converge.hpp"

#include <torch/torch.h>

#include <fstream>
#include <numeric>
#include <random>

#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {
namespace {

struct Data {
  LocalDataset dataset;
  Tokenizer tokenizer;
  std::vector<ConfigInfo> configs;
  PageBatchOptions opts;
  // The first micro-batch of a miner's page in a window.
  Batch miner_batch(int64_t step, int miner) {
    const auto p = pages(local_pages_key(static_cast<uint64_t>(step), static_cast<uint64_t>(miner)),
                         1, configs);
    return to_batch(page_batches(dataset, tokenizer, p, opts).front(), torch::kCPU);
  }
};

double eval_loss(Llama& model, const std::vector<Batch>& eval) {
  torch::NoGradGuard ng;
  double sum = 0;
  for (const auto& b : eval) sum += model->loss(b.inputs, b.targets).item<double>();
  return sum / static_cast<double>(eval.size());
}

std::vector<torch::Tensor> tensors(const Llama& m) {
  std::vector<torch::Tensor> out;
  for (auto& [n, p] : m->ordered_parameters()) out.push_back(p);
  return out;
}

// k distinct ascending positions per chunk and tensor (all of a 1-D tensor's), from the window.
std::vector<std::vector<int32_t>> shared_positions(const Llama& m, int64_t k, int64_t cap,
                                                   uint64_t window) {
  std::vector<std::vector<int32_t>> out;
  std::mt19937_64 rng(window * 0x9E3779B97F4A7C15ull + 1);
  for (auto& [n, p] : m->ordered_parameters()) {
    const auto plan = chunk_plan(p.sizes().vec(), cap);
    const int64_t kk = clamp_k(k, plan);
    std::vector<int32_t> pos, all(static_cast<size_t>(plan.size()));
    for (int64_t r = 0; r < plan.chunks(); ++r) {
      std::iota(all.begin(), all.end(), 0);
      for (int64_t s = 0; s < kk; ++s) {  // partial Fisher-Yates
        std::uniform_int_distribution<int64_t> pick(s, plan.size() - 1);
        std::swap(all[s], all[pick(rng)]);
      }
      std::sort(all.begin(), all.begin() + kk);
      pos.insert(pos.end(), all.begin(), all.begin() + kk);
    }
    out.push_back(std::move(pos));
  }
  return out;
}

}  // namespace

void run_converge_experiment(const ConvergeOptions& o) {
  init_runtime(o.threads);
  const auto config = preset(o.preset);
  const auto corpus = default_corpus_dir();
  build_default_corpus(corpus, {}, false);
  Data data{LocalDataset(corpus),
            Tokenizer(default_tokenizer_path()),
            {},
            {.batch_rows = o.batch, .seq_len = o.seq_len, .layout = BatchLayout::Packed}};
  data.configs = data.dataset.configs();
  std::vector<Batch> eval;
  {
    const uint8_t h[4] = {0xe, 0x7, 0xa, 0x1};
    for (const auto& tb :
         page_batches(data.dataset, data.tokenizer,
                      pages(global_pages_key(1'000'000, h), 2, data.configs), data.opts)) {
      eval.push_back(to_batch(tb, torch::kCPU));
    }
  }
  std::ofstream csv(o.csv_path.empty() ? "/dev/stdout" : o.csv_path);
  csv << "method,step,tokens,eval_loss,train_loss\n";
  const int64_t tokens_per_step = o.miners * o.batch * o.seq_len;
  auto report = [&](const char* method, int64_t step, double train, Llama& model) {
    if (step % o.eval_every != 0 && step != o.steps) return;
    const double ev = eval_loss(model, eval);
    csv << method << ',' << step << ',' << step * tokens_per_step << ',' << ev << ',' << train
        << '\n';
    csv.flush();
    fmt::print(stderr, "{:10s} step {:4d}  eval {:.4f}  train {:.4f}\n", method, step, ev, train);
  };
  Schedule sched{.lr = o.adamw_lr, .warmup_steps = 10, .total_steps = o.steps, .min_lr_ratio = 0.1};

  auto wanted = [&](const std::string& m) {
    return ("," + o.methods + ",").find("," + m + ",") != std::string::npos;
  };
  std::string dct_label = o.dct_value_bits == 32
                              ? fmt::format("dct-topk-k{}", o.dct_k)
                              : fmt::format("dct-topk-k{}-{}bit", o.dct_k, o.dct_value_bits);
  if (o.shared_k > 0) {
    dct_label = fmt::format("dct-shared-k{}", o.shared_k);
    if (o.dct_value_bits != 32) dct_label += fmt::format("-{}bit", o.dct_value_bits);
  }
  if (o.chunk_cap != 64) dct_label += fmt::format("-chunk{}", o.chunk_cap);
  if (o.k_embed > 0) dct_label += fmt::format("-embed{}", o.k_embed);
  if (o.demo_beta != 0.999) dct_label += fmt::format("-beta{}", o.demo_beta);
  const std::string slice_label = fmt::format("slice-{}x", o.slice_compression);

  if (wanted("allreduce")) {  // baseline: AdamW on the mean gradient of all miners
    Llama model(config);
    model->init_weights(42);
    AdamW opt(tensors(model), {});
    report("allreduce", 0, 0, model);
    for (int64_t s = 0; s < o.steps; ++s) {
      opt.zero_grad();
      double train = 0;
      for (int i = 0; i < o.miners; ++i) {
        auto b = data.miner_batch(s, i);
        auto loss = model->loss(b.inputs, b.targets) / o.miners;
        loss.backward();
        train += loss.item<double>();
      }
      clip_grad_norm(opt.params(), 1.0);
      opt.step(sched.at(s));
      report("allreduce", s + 1, train, model);
    }
  }
  if (wanted("dct-topk")) {  // DeMo: compressed momentum, merged by everyone
    Llama model(config);
    model->init_weights(42);
    std::vector<std::unique_ptr<DemoCompressor>> miners;
    for (int i = 0; i < o.miners; ++i) {
      miners.push_back(std::make_unique<DemoCompressor>(
          model->ordered_parameters(), DemoOptions{.beta = o.demo_beta,
                                                   .k = o.shared_k > 0 ? o.shared_k : o.dct_k,
                                                   .chunk_cap = o.chunk_cap,
                                                   .k_embed = o.k_embed}));
    }
    Schedule demo_sched = sched;
    demo_sched.lr = o.demo_lr;
    report(dct_label.c_str(), 0, 0, model);
    for (int64_t s = 0; s < o.steps; ++s) {
      const double lr = demo_sched.at(s);
      std::vector<std::vector<int32_t>> shared;
      if (o.shared_k > 0)
        shared = shared_positions(model, o.shared_k, o.chunk_cap, static_cast<uint64_t>(s));
      std::vector<Update> updates;
      double train = 0;
      for (int i = 0; i < o.miners; ++i) {
        for (auto& p : tensors(model)) p.mutable_grad() = torch::Tensor();
        auto b = data.miner_batch(s, i);
        auto loss = model->loss(b.inputs, b.targets);
        loss.backward();
        train += loss.item<double>() / o.miners;
        updates.push_back(o.shared_k > 0 ? miners[i]->encode_at(lr, shared)
                                         : miners[i]->encode(lr));
        for (auto& t : updates.back().tensors) {  // what a peer would decode
          float scale = 0;
          t.val = quantize_roundtrip(t.val, o.dct_value_bits, &scale);
        }
      }
      std::vector<PeerUpdate> peers;
      for (int i = 0; i < o.miners; ++i) peers.push_back({static_cast<uint64_t>(i), &updates[i]});
      demo_merge(tensors(model), peers, lr, 0.1);
      report(dct_label.c_str(), s + 1, train, model);
    }
  }
  if (wanted("slice")) {  // BISTRO slices: local AdamW, then the mean at this window's positions
    std::vector<Llama> replicas;
    std::vector<std::unique_ptr<AdamW>> opts;
    for (int i = 0; i < o.miners; ++i) {
      replicas.emplace_back(config);
      replicas.back()->init_weights(42);
      opts.push_back(std::make_unique<AdamW>(tensors(replicas.back()), AdamWOptions{}));
    }
    report(slice_label.c_str(), 0, 0, replicas[0]);
    for (int64_t s = 0; s < o.steps; ++s) {
      double train = 0;
      std::vector<Update> updates;
      const uint8_t h[8] = {static_cast<uint8_t>(s), static_cast<uint8_t>(s >> 8), 0x5};
      const uint64_t key = slice_key(static_cast<uint64_t>(s), h);
      for (int i = 0; i < o.miners; ++i) {
        opts[i]->zero_grad();
        auto b = data.miner_batch(s, i);
        auto loss = replicas[i]->loss(b.inputs, b.targets);
        loss.backward();
        train += loss.item<double>() / o.miners;
        clip_grad_norm(opts[i]->params(), 1.0);
        opts[i]->step(sched.at(s));
        updates.push_back(
            slice_encode(replicas[i]->ordered_parameters(), key, o.slice_compression));
      }
      std::vector<PeerUpdate> peers;
      for (int i = 0; i < o.miners; ++i) peers.push_back({static_cast<uint64_t>(i), &updates[i]});
      for (auto& r : replicas)
        slice_merge(r->ordered_parameters(), peers, key, o.slice_compression);
      report(slice_label.c_str(), s + 1, train, replicas[0]);
    }
  }
}

}  // namespace bistro
