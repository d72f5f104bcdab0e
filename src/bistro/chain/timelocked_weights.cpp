#include "bistro/chain/timelocked_weights.hpp"

#include "bistro/chain/commit_reveal.hpp"

#include <algorithm>

#include "bistro/core/error.hpp"
#include "bistro/drand/timelock.hpp"
#include "bistro/substrate/scale.hpp"

namespace bistro::chain {
namespace {

constexpr uint64_t kMaxTempo = 50'400;  // subtensor's bound on an owner-set tempo

bool epoch_fires(const EpochSchedule& s, uint64_t block) {
  if (s.tempo == 0) return false;
  if (s.pending_epoch_at > 0 && block >= s.pending_epoch_at) return true;
  if (s.blocks_since_last_step > kMaxTempo) return true;
  return block - std::min(block, s.last_epoch_block) >= s.tempo;
}

// The epoch the reveal step reads in `block`: it runs before the block's epoch, and counts the
// epoch that fires in this block already.
uint64_t reveal_epoch_at(const EpochSchedule& s, uint64_t block) {
  return s.subnet_epoch_index + (epoch_fires(s, block) ? 1 : 0);
}

// The schedule after `block`'s epoch step.
EpochSchedule step(EpochSchedule s, uint64_t block) {
  ++s.blocks_since_last_step;
  s.current_block = block;
  if (epoch_fires(s, block)) {
    s.last_epoch_block = block;
    s.pending_epoch_at = 0;
    ++s.subnet_epoch_index;
    s.blocks_since_last_step = 0;
  }
  return s;
}

}  // namespace

std::string timelocked_weights_payload(const PublicKey& hotkey, const std::vector<uint16_t>& uids,
                                       const std::vector<uint16_t>& values, uint64_t version_key,
                                       int version) {
  check(version == 3 || version == 4, "timelocked weights: commit-reveal version {} (3 or 4)",
        version);
  scale::Writer w;
  if (version == 4) w.bytes({reinterpret_cast<const char*>(hotkey.data()), hotkey.size()});
  return w.u16s(uids).u16s(values).u64(version_key).take();
}

uint64_t first_reveal_block(const EpochSchedule& head, uint64_t reveal_period) {
  check(head.tempo != 0, "subnet tempo is 0: it runs no epochs, so nothing is ever revealed");
  const uint64_t included = head.current_block + 1;  // the commit lands in the next block
  const uint64_t target = reveal_epoch_at(head, included) + reveal_period;
  EpochSchedule s = head;
  const uint64_t budget = (reveal_period + 1) * kMaxTempo;
  for (uint64_t b = included; b <= included + budget; ++b) {
    if (reveal_epoch_at(s, b) == target) return b;
    s = step(s, b);
  }
  fail("no reveal block within {} blocks of block {} (tempo {})", budget, included, head.tempo);
}

uint64_t first_reveal_block_before_423(uint64_t block, uint16_t netuid, uint16_t tempo,
                                       uint64_t reveal_period) {
  // Epoch e starts at block e (tempo + 1) - (netuid + 1) (commit_reveal.hpp's epoch_index).
  const uint64_t epoch = epoch_index(netuid, tempo, block) + reveal_period;
  const uint64_t first = epoch * (static_cast<uint64_t>(tempo) + 1),
                 shift = static_cast<uint64_t>(netuid) + 1;
  return first > shift ? first - shift : 0;
}

uint64_t reveal_round(uint64_t reveal_block, uint64_t current_block, double seconds_per_block,
                      double now_unix) {
  const uint64_t target = reveal_block + kPulseIngestBlocks;
  const double ahead =
      static_cast<double>(target > current_block ? target - current_block : 0) * seconds_per_block;
  return drand::quicknet_round_at(now_unix + ahead);
}

}  // namespace bistro::chain
