#include "bistro/ops/experiment_converge.hpp"

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "bistro/compress/dct.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/core/error.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/page_batches.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/model/config.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/runtime/runtime.hpp"
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
  check(o.device == "cpu" || (o.methods.find("dct") == std::string::npos &&
                              o.methods.find("slice") == std::string::npos),
        "converge: --device {}: dct-topk and slice run on the CPU only (ddp, diloco and "
        "sparseloco run anywhere)",
        o.device);
  const Compute compute = parse_compute(o.device, o.dtype);
  // Every method's models on the device, in the dtype (theta's outer steps still run on the CPU).
  auto fresh = [&] {
    Llama m(config);
    m->init_weights(42);
    m->to(compute.device);
    m->set_bf16(compute.bf16);
    return m;
  };
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
  // Evaluates after inner step `step` when it crossed a multiple of eval_every since `from`.
  auto report = [&](const std::string& method, int64_t from, int64_t step, double train,
                    Llama& model) {
    if (step != 0 && step != o.steps && from / o.eval_every == step / o.eval_every) return;
    const double ev = eval_loss(model, eval);
    csv << method << ',' << step << ',' << step * tokens_per_step << ',' << ev << ',' << train
        << '\n';
    csv.flush();
    fmt::print(stderr, "{:24s} step {:5d}  eval {:.4f}  train {:.4f}\n", method, step, ev, train);
  };
  int64_t numel = 0;
  for (const auto& p : parameter_specs(config)) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    numel += n;
  }
  // One JSON line per method: what docs/benchmarks.md tabulates.
  auto summarize = [&](const std::string& method, Llama& model, double bytes_per_window,
                       int64_t steps_per_window, double seconds) {
    const double dense = 4.0 * static_cast<double>(numel) * static_cast<double>(steps_per_window);
    nlohmann::json j = {{"method", method},
                        {"preset", o.preset},
                        {"miners", o.miners},
                        {"steps", o.steps},
                        {"inner_steps", steps_per_window},
                        {"tokens", o.steps * tokens_per_step},
                        {"final_eval", eval_loss(model, eval)},
                        {"bytes_per_miner_per_window", bytes_per_window},
                        {"effective_compression", dense / bytes_per_window},
                        {"seconds", seconds}};
    fmt::print(stderr, "summary {}\n", j.dump());
    if (!o.summary_path.empty()) {
      std::ofstream out(o.summary_path, std::ios::app);
      out << j.dump() << '\n';
    }
  };
  auto clock = [] { return std::chrono::steady_clock::now(); };
  auto since = [&](auto t0) { return std::chrono::duration<double>(clock() - t0).count(); };
  Schedule sched{
      .lr = o.adamw_lr, .warmup_steps = o.warmup, .total_steps = o.steps, .min_lr_ratio = 0.1};
  const int64_t H = std::max<int64_t>(1, o.inner_steps);
  const int64_t windows = o.steps / H;
  check(windows >= 1, "converge: --steps {} is less than one window of {} inner steps", o.steps, H);
  // The inner loop every windowed method shares: miner i's H AdamW steps from theta on its own
  // batches (inner steps w*H .. w*H+H-1); returns the mean training loss.
  auto inner_loop = [&](Llama& model, AdamW& opt, int miner, int64_t w) {
    double train = 0;
    for (int64_t s = w * H; s < (w + 1) * H; ++s) {
      opt.zero_grad();
      auto b = data.miner_batch(s, miner);
      auto loss = model->loss(b.inputs, b.targets);
      loss.backward();
      train += loss.item<double>() / static_cast<double>(H);
      clip_grad_norm(opt.params(), 1.0);
      opt.step(sched.at(s));
    }
    return train;
  };
  const auto signer = ed25519_signer({0x5e, 0xed});

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
  std::string loco_label = fmt::format("sparseloco-H{}-k{}", H, o.loco_k);
  if (o.loco_value_bits != 2) loco_label += fmt::format("-{}bit", o.loco_value_bits);
  if (o.loco_beta != 0.95) loco_label += fmt::format("-beta{}", o.loco_beta);
  if (o.outer_lr != 1.0) loco_label += fmt::format("-alpha{}", o.outer_lr);
  if (o.outer_delay > 0) loco_label += fmt::format("-delay{}", o.outer_delay);
  const std::string diloco_label = fmt::format("diloco-H{}", H);

  if (wanted("ddp") || wanted("allreduce")) {  // AdamW on the mean gradient of all miners
    const auto t0 = clock();
    Llama model = fresh();
    AdamW opt(tensors(model), {});
    report("ddp", 0, 0, 0, model);
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
      report("ddp", s, s + 1, train, model);
    }
    summarize("ddp", model, 4.0 * static_cast<double>(numel), 1, since(t0));
  }
  if (wanted("diloco")) {  // dense pseudo-gradients, outer Nesterov SGD
    const auto t0 = clock();
    Llama model = fresh();
    const auto work = tensors(model);
    auto theta = clone_parameters(work);
    std::vector<torch::Tensor> momentum;
    for (const auto& t : theta) momentum.push_back(torch::zeros_like(t));
    std::vector<std::unique_ptr<AdamW>> opts;
    for (int i = 0; i < o.miners; ++i)
      opts.push_back(std::make_unique<AdamW>(work, AdamWOptions{}));
    Llama shared = fresh();
    copy_parameters(tensors(shared), theta);
    report(diloco_label, 0, 0, 0, shared);
    for (int64_t w = 0; w < windows; ++w) {
      std::vector<torch::Tensor> mean;
      for (const auto& t : theta) mean.push_back(torch::zeros_like(t));
      double train = 0;
      for (int i = 0; i < o.miners; ++i) {
        copy_parameters(work, theta);
        train += inner_loop(model, *opts[i], i, w) / o.miners;
        torch::NoGradGuard ng;
        for (size_t j = 0; j < theta.size(); ++j) mean[j] += (theta[j] - work[j]) / o.miners;
      }
      torch::NoGradGuard ng;
      for (size_t j = 0; j < theta.size(); ++j) {  // torch.optim.SGD(nesterov=True)
        momentum[j].mul_(o.diloco_momentum).add_(mean[j]);
        theta[j].sub_((mean[j] + o.diloco_momentum * momentum[j]) * o.diloco_lr);
      }
      copy_parameters(tensors(shared), theta);
      report(diloco_label, w * H, (w + 1) * H, train, shared);
    }
    summarize(diloco_label, shared, 4.0 * static_cast<double>(numel), H, since(t0));
  }
  if (wanted("sparseloco")) {  // the protocol: error feedback, top-k, 2-bit, clipped mean
    const auto t0 = clock();
    Llama model = fresh();
    const auto work = tensors(model);
    Llama shared = fresh();
    copy_parameters(tensors(shared), work);
    const auto theta = tensors(shared);
    std::vector<std::unique_ptr<AdamW>> opts;
    std::vector<std::unique_ptr<ErrorFeedback>> ef;
    for (int i = 0; i < o.miners; ++i) {
      opts.push_back(std::make_unique<AdamW>(work, AdamWOptions{}));
      ef.push_back(std::make_unique<ErrorFeedback>(
          model->ordered_parameters(), ErrorFeedbackOptions{.beta = o.loco_beta,
                                                            .k = o.loco_k,
                                                            .chunk_cap = o.chunk_cap,
                                                            .value_bits = o.loco_value_bits,
                                                            .index_bits = 12}));
    }
    report(loco_label, 0, 0, 0, shared);
    std::vector<std::vector<Update>> pending;  // aggregates waiting out the outer delay
    double bytes = 0;
    for (int64_t w = 0; w < windows; ++w) {
      std::vector<Update> updates;
      double train = 0;
      for (int i = 0; i < o.miners; ++i) {
        copy_parameters(work, theta);
        train += inner_loop(model, *opts[i], i, w) / o.miners;
        std::vector<torch::Tensor> delta;
        {
          torch::NoGradGuard ng;
          for (size_t j = 0; j < theta.size(); ++j) delta.push_back(theta[j] - work[j]);
        }
        updates.push_back(ef[i]->encode(delta));
        if (bytes == 0) {  // what one miner puts on the wire each window
          Update wire = updates.back();
          wire.config_hash = std::string(64, '0');
          bytes = static_cast<double>(encode_update(wire, *signer).size());
        }
      }
      pending.push_back(std::move(updates));
      if (static_cast<int>(pending.size()) > o.outer_delay) {
        std::vector<PeerUpdate> peers;
        for (int i = 0; i < o.miners; ++i)
          peers.push_back({static_cast<uint64_t>(i), &pending.front()[i]});
        outer_step(theta, peers, o.outer_lr);
        pending.erase(pending.begin());
      }
      report(loco_label, w * H, (w + 1) * H, train, shared);
    }
    summarize(loco_label, shared, bytes, H, since(t0));
  }
  if (wanted("dct-topk")) {  // DeMo: compressed momentum, merged by everyone
    Llama model = fresh();
    std::vector<std::unique_ptr<DemoCompressor>> miners;
    for (int i = 0; i < o.miners; ++i) {
      miners.push_back(std::make_unique<DemoCompressor>(
          model->ordered_parameters(), DemoOptions{.beta = o.demo_beta,
                                                   .k = o.shared_k > 0 ? o.shared_k : o.dct_k,
                                                   .chunk_cap = o.chunk_cap,
                                                   .k_embed = o.k_embed}));
    }
    const auto t0 = clock();
    double bytes = 0;
    Schedule demo_sched = sched;
    demo_sched.lr = o.demo_lr;
    report(dct_label, 0, 0, 0, model);
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
      if (bytes == 0) {
        Update wire = updates[0];
        wire.config_hash = std::string(64, '0');
        wire.value_bits = o.dct_value_bits;
        wire.index_bits = 12;
        bytes = static_cast<double>(encode_update(wire, *signer).size());
      }
      report(dct_label, s, s + 1, train, model);
    }
    summarize(dct_label, model, bytes, 1, since(t0));
  }
  if (wanted("slice")) {  // BISTRO slices: local AdamW, then the mean at this window's positions
    std::vector<Llama> replicas;
    std::vector<std::unique_ptr<AdamW>> opts;
    for (int i = 0; i < o.miners; ++i) {
      replicas.emplace_back(config);
      replicas.back()->init_weights(42);
      replicas.back()->set_bf16(compute.bf16);
      opts.push_back(std::make_unique<AdamW>(tensors(replicas.back()), AdamWOptions{}));
    }
    const auto t0 = clock();
    double bytes = 0;
    report(slice_label, 0, 0, 0, replicas[0]);
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
      if (bytes == 0) {
        Update wire = updates[0];
        wire.config_hash = std::string(64, '0');
        bytes = static_cast<double>(encode_update(wire, *signer).size());
      }
      report(slice_label, s, s + 1, train, replicas[0]);
    }
    summarize(slice_label, replicas[0], bytes, 1, since(t0));
  }
}

}  // namespace bistro
