#include "bistro/ops/bench_score.hpp"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "bistro/compress/error_feedback.hpp"
#include "bistro/protocol/hparams.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/runtime/launch.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/validator/ranks.hpp"
#include "bistro/validator/scoring.hpp"

namespace bistro {

namespace {

std::vector<Batch> random_batches(const LlamaConfig& c, const NeuronHparams& h, int64_t n,
                                  c10::Device device, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<Batch> out;
  for (int64_t i = 0; i < n; ++i) {
    auto t = torch::randint(c.vocab_size, {h.batch_rows, h.seq_len + 1}, torch::kInt64);
    out.push_back({t.narrow(1, 0, h.seq_len).contiguous().to(device),
                   t.narrow(1, 1, h.seq_len).contiguous().to(device)});
  }
  return out;
}

}  // namespace

int run_score_bench(const ScoreBenchOptions& o) {
  std::unique_ptr<runtime::LocalRanks> local;
  const auto env = runtime::launch_ranks(o.ranks, local);
  init_runtime(o.threads);
  auto compute = parse_compute(o.device, o.dtype);
  if (env && compute.device.is_cuda()) {
    runtime::require_rank_gpu(*env);
    if (!compute.device.has_index())
      compute.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
  }
  auto group = env ? std::make_unique<runtime::Ranks>(*env, std::chrono::minutes(5))
                   : std::make_unique<runtime::Ranks>();
  group->require_same("bench score arguments",
                      fmt::format("{}|{}|{}|{}", o.preset, o.updates, o.device, o.dtype));
  const NeuronHparams h;
  const LlamaConfig config = preset(o.preset);
  Llama theta(config);
  theta->init_weights(h.init_seed);
  theta->to(compute.device);
  theta->set_bf16(compute.bf16);
  if (group->rank() != 0) {
    ScoringRanks(*group).follow(theta);
    return 0;
  }
  ScoringRanks ranks(*group);
  // Updates: random pseudo-gradients at an honest scale, top-k encoded as miners send them.
  const auto params = parameter_tensors(theta);
  std::vector<Update> ups;
  torch::manual_seed(17);
  for (int i = 0; i <= o.updates; ++i) {
    ErrorFeedback ef(theta->ordered_parameters(), {.k = h.topk, .chunk_cap = h.chunk_cap});
    std::vector<torch::Tensor> d;
    for (const auto& p : params) d.push_back(torch::randn(p.sizes()) * 1e-3);
    ups.push_back(ef.encode(d));
  }
  WindowScorer scorer(theta, config,
                      random_batches(config, h, h.score_random_batches, compute.device, 1),
                      h.outer_lr, &ranks);
  double seconds = 0;
  for (int i = 0; i <= o.updates; ++i) {
    // An untrusted miner's update: read on twice the own micro-batches (validator/gather.cpp).
    auto own = random_batches(config, h, 2 * h.score_batches, compute.device, 100 + i);
    const auto t0 = std::chrono::steady_clock::now();
    scorer.add(static_cast<uint16_t>(i + 1), &ups[i], std::move(own));
    if (compute.device.is_cuda()) torch::cuda::synchronize();
    if (i > 0)
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double per = seconds / o.updates;
  const double forwards = static_cast<double>(scorer.forward_batches()) / (o.updates + 1);
  fmt::print(
      "bench score: preset {}, {}, {} thread(s) x {} rank(s): {:.3f} s an update ({:.1f} "
      "micro-batch forwards of {}x{} each, {} on other ranks in all)\n",
      o.preset, compute.describe(), o.threads, group->size(), per, forwards, h.batch_rows,
      h.seq_len, ranks.shared_batches());
  ranks.stop();
  if (local) local->wait();
  return 0;
}

}  // namespace bistro
