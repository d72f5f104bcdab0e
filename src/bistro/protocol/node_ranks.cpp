#include "bistro/protocol/node_ranks.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "bistro/core/error.hpp"

namespace bistro {

NodeRanks::NodeRanks(const NeuronArgs& a, const NeuronHparams& h, const std::string& role) {
  const auto env = runtime::launch_ranks(a.ranks, local);
  if (!env) {
    group = std::make_unique<runtime::Ranks>();
    return;
  }
  if (a.device.rfind("cuda", 0) == 0) runtime::require_rank_gpu(*env);
  const double seconds =
      std::max(60.0, 4.0 * 12.0 * static_cast<double>(h.blocks_per_window + h.grace_blocks));
  group = std::make_unique<runtime::Ranks>(
      *env, std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  group->require_same(role + " settings", fmt::format("{}|{}|{}|{}|{}|{}", role, hparams_hash(h),
                                                      a.device, a.dtype, a.dataset, a.behaviour));
}

Compute rank_compute(const NeuronArgs& a) {
  Compute compute = parse_compute(a.device, a.dtype);
  if (compute.device.is_cuda() && a.device == "cuda")
    if (const auto env = runtime::rank_env())
      compute.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
  return compute;
}

void NodeRanks::finish() {
  if (local) local->wait();
}

}  // namespace bistro
