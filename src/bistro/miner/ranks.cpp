#include "bistro/miner/ranks.hpp"

#include <fmt/format.h>

#include "bistro/core/error.hpp"
#include "bistro/miner/window_batches.hpp"
#include "bistro/runtime/distributed.hpp"

namespace bistro {

MinerRanks::MinerRanks(runtime::Ranks& ranks, Trainer& trainer)
    : ranks_(ranks), trainer_(trainer), active_(ranks.size() > 1) {
  trainer_.set_ranks(&ranks_);
}

int MinerRanks::rank() const {
  return ranks_.rank();
}
int MinerRanks::size() const {
  return active_ || ranks_.rank() != 0 ? ranks_.size() : 1;
}
int64_t MinerRanks::index(int64_t slot, int64_t own) const {
  return stream_index(slot, rank(), size(), own);
}

std::vector<torch::Tensor> MinerRanks::shared_state(bool full) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : trainer_.model()->ordered_parameters()) out.push_back(p);
  if (full) {
    auto& o = trainer_.optimizer();
    out.insert(out.end(), o.exp_avg().begin(), o.exp_avg().end());
    out.insert(out.end(), o.exp_avg_sq().begin(), o.exp_avg_sq().end());
  }
  return out;
}

void MinerRanks::drop(const std::string& why) {
  active_ = false;
  trainer_.set_ranks(nullptr);
  if (log) log(fmt::format("the miner's ranks failed ({}); continuing on rank 0 alone", why));
}

bool MinerRanks::tell(RankOp op, uint64_t key, int64_t slot, bool full) {
  if (!active_) return false;
  try {
    std::vector<torch::Tensor> cmd{
        torch::tensor({static_cast<int64_t>(op), static_cast<int64_t>(key), slot, int64_t{0},
                       static_cast<int64_t>(full), trainer_.optimizer().steps()},
                      torch::kInt64)};
    ranks_.broadcast(cmd);
    if (op == RankOp::SetParams) {
      auto state = shared_state(full);
      ranks_.broadcast(state);
    }
    return true;
  } catch (const std::exception& e) {
    drop(e.what());
    return false;
  }
}

void MinerRanks::check_alive() {
  if (active_) tell(RankOp::Ping);
}

void MinerRanks::follow(const std::function<const Batch&(uint64_t, int64_t)>& batch) {
  check(ranks_.rank() != 0, "rank 0 leads; it does not follow");
  for (;;) {
    std::vector<torch::Tensor> cmd{torch::zeros({6}, torch::kInt64)};
    ranks_.broadcast(cmd);
    const auto c = cmd[0];
    const auto op = static_cast<RankOp>(c[0].item<int64_t>());
    const auto key = static_cast<uint64_t>(c[1].item<int64_t>());  // the bits, as sent
    const int64_t slot = c[2].item<int64_t>();
    switch (op) {
      case RankOp::Stop:
        return;
      case RankOp::Ping:
        break;
      case RankOp::SetParams: {
        const bool full = c[4].item<int64_t>() != 0;
        auto state = shared_state(full);
        ranks_.broadcast(state);
        if (full) trainer_.optimizer().set_steps(c[5].item<int64_t>());
        break;
      }
      case RankOp::Step:
        trainer_.step({batch(key, slot)});
        break;
      default:
        fail("rank {}: unknown operation {} from rank 0", rank(), c[0].item<int64_t>());
    }
  }
}

}  // namespace bistro
