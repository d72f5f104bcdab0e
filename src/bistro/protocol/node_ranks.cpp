#include "bistro/protocol/node_ranks.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <torch/torch.h>

#include "bistro/core/error.hpp"

namespace bistro {

NodeRanks::NodeRanks(const NeuronArgs& a, const NeuronHparams& h, const std::string& role) {
  check(a.ranks >= 1, "--ranks {}: at least 1", a.ranks);
  auto env = runtime::rank_env();
  check(!env || a.ranks == 1 || env->world_size == a.ranks,
        "--ranks {} but WORLD_SIZE={}: launch with one or the other", a.ranks,
        env ? env->world_size : 0);
  if (!env && a.ranks > 1) {
    local = std::make_unique<runtime::LocalRanks>(a.ranks);
    env = runtime::rank_env();
  }
  if (!env) {
    group = std::make_unique<runtime::Ranks>();
    return;
  }
  if (a.device.rfind("cuda", 0) == 0) {  // one GPU a rank: local rank k takes cuda:k
    const auto n = static_cast<int>(torch::cuda::device_count());
    check(env->local_rank < n, "rank {} (local rank {}) has no GPU: this host has {}", env->rank,
          env->local_rank, n);
  }
  const double seconds =
      std::max(60.0, 4.0 * 12.0 * static_cast<double>(h.blocks_per_window + h.grace_blocks));
  group = std::make_unique<runtime::Ranks>(
      *env, std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  group->require_same(role + " settings", fmt::format("{}|{}|{}|{}|{}|{}", role, hparams_hash(h),
                                                      a.device, a.dtype, a.dataset, a.behaviour));
}

void NodeRanks::finish() {
  if (local) local->wait();
}

}  // namespace bistro
