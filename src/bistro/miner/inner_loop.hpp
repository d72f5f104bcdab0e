// The miner's inner loop (protocol v2): H AdamW steps from the shared parameters on the pages the
// protocol assigned to (window, uid); step i takes micro-batch i mod the number available. The
// AdamW state persists across windows (the Trainer owns it) and the lr follows the miner's own
// step count; none of this is consensus: only the pseudo-gradient it yields is judged.
#pragma once

#include <functional>
#include <vector>

#include "bistro/train/trainer.hpp"

namespace bistro {

struct InnerLoopResult {
  double loss = 0;  // mean over the steps
  int64_t steps = 0;
  int64_t tokens = 0;
};

// `in_time(seconds_per_step)`, asked before every step after the first, may end the loop early
// (a miner stops short rather than miss its upload deadline).
InnerLoopResult inner_loop(Trainer& trainer, const std::vector<Batch>& batches, int64_t steps,
                           const std::function<bool(double)>& in_time = {});

// The miner's window: steps while time remains, up to `max_steps`; `batch(i)` gives step i's
// micro-batch and `before_step(i)` runs before each (the miner moves its start to theta_w there
// when record(w-1) lands during the first steps: it trains from theta_{w-1} until then).
struct InnerLoopPlan {
  int64_t max_steps = 0;
  std::function<const Batch&(int64_t)> batch;
  std::function<bool(double)> in_time;  // as above
  std::function<void(int64_t)> before_step;
};
InnerLoopResult inner_loop(Trainer& trainer, const InnerLoopPlan& plan);

// theta_start - theta_now, per parameter: the window's pseudo-gradient.
std::vector<torch::Tensor> pseudo_gradient(const std::vector<torch::Tensor>& start,
                                           const std::vector<torch::Tensor>& now);

}  // namespace bistro
