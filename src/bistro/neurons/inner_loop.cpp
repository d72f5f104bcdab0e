#include "bistro/neurons/inner_loop.hpp"

#include "bistro/core/error.hpp"

namespace bistro {

InnerLoopResult inner_loop(Trainer& trainer, const std::vector<Batch>& batches, int64_t steps) {
  check(!batches.empty(), "inner loop: the window's pages gave no micro-batches");
  InnerLoopResult r;
  for (int64_t i = 0; i < steps; ++i) {
    const auto s = trainer.step({batches[static_cast<size_t>(i) % batches.size()]});
    r.loss += s.loss / static_cast<double>(steps);
    r.tokens += s.tokens;
    ++r.steps;
  }
  return r;
}

std::vector<torch::Tensor> pseudo_gradient(const std::vector<torch::Tensor>& start,
                                           const std::vector<torch::Tensor>& now) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < start.size(); ++i) out.push_back(start[i] - now[i].detach());
  return out;
}

}  // namespace bistro
