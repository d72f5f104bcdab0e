#include "bistro/miner/inner_loop.hpp"

#include <algorithm>
#include <chrono>

#include "bistro/core/error.hpp"

namespace bistro {

InnerLoopResult inner_loop(Trainer& trainer, const std::vector<Batch>& batches, int64_t steps,
                           const std::function<bool(double)>& in_time) {
  check(!batches.empty(), "inner loop: the window's pages gave no micro-batches");
  InnerLoopPlan plan;
  plan.max_steps = steps;
  plan.batch = [&](int64_t i) -> const Batch& {
    return batches[static_cast<size_t>(i) % batches.size()];
  };
  plan.in_time = in_time;
  return inner_loop(trainer, plan);
}

InnerLoopResult inner_loop(Trainer& trainer, const InnerLoopPlan& plan) {
  InnerLoopResult r;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < plan.max_steps; ++i) {
    if (i > 0 && plan.in_time) {
      const double per_step =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
          static_cast<double>(i);
      if (!plan.in_time(per_step)) break;
    }
    if (plan.before_step) plan.before_step(i);
    const auto s = trainer.step({plan.batch(i)});
    r.loss += s.loss;
    r.tokens += s.tokens;
    ++r.steps;
  }
  r.loss /= static_cast<double>(std::max<int64_t>(1, r.steps));
  return r;
}

std::vector<torch::Tensor> pseudo_gradient(const std::vector<torch::Tensor>& start,
                                           const std::vector<torch::Tensor>& now) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < start.size(); ++i)
    out.push_back(start[i] - now[i].detach().to(start[i].device()));
  return out;
}

}  // namespace bistro
