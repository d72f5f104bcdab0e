#include "bistro/chain/epochs.hpp"

#include <algorithm>

#include "bistro/core/error.hpp"

namespace bistro::chain {
namespace {

constexpr uint64_t kMaxTempo = 50'400;  // subtensor's bound on an owner-set tempo

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

uint64_t epoch_index(uint16_t netuid, uint16_t tempo, uint64_t block) {
  return (block + netuid + 1) / (static_cast<uint64_t>(tempo) + 1);
}

bool epoch_fires(const EpochSchedule& s, uint64_t block) {
  if (s.tempo == 0) return false;
  if (s.pending_epoch_at > 0 && block >= s.pending_epoch_at) return true;
  if (s.blocks_since_last_step > kMaxTempo) return true;
  return block - std::min(block, s.last_epoch_block) >= s.tempo;
}

uint64_t epoch_at(const EpochSchedule& s, uint64_t block) {
  return s.subnet_epoch_index + (epoch_fires(s, block) ? 1 : 0);
}

uint64_t first_reveal_block(const EpochSchedule& head, uint64_t reveal_period) {
  check(head.tempo != 0, "subnet tempo is 0: it runs no epochs, so nothing is ever revealed");
  const uint64_t included = head.current_block + 1;  // the commit lands in the next block
  const uint64_t target = epoch_at(head, included) + reveal_period;
  EpochSchedule s = head;
  const uint64_t budget = (reveal_period + 1) * kMaxTempo;
  for (uint64_t b = included; b <= included + budget; ++b) {
    if (epoch_at(s, b) == target) return b;
    s = step(s, b);
  }
  fail("no reveal block within {} blocks of block {} (tempo {})", budget, included, head.tempo);
}

uint64_t first_reveal_block_before_423(uint64_t block, uint16_t netuid, uint16_t tempo,
                                       uint64_t reveal_period) {
  // Epoch e starts at block e (tempo + 1) - (netuid + 1).
  const uint64_t epoch = epoch_index(netuid, tempo, block) + reveal_period;
  const uint64_t first = epoch * (static_cast<uint64_t>(tempo) + 1),
                 shift = static_cast<uint64_t>(netuid) + 1;
  return first > shift ? first - shift : 0;
}

uint64_t crv3_reveal_block(uint64_t included, uint16_t netuid, uint16_t tempo,
                           uint64_t reveal_period) {
  check(tempo != 0 && reveal_period != 0,
        "subnet tempo {} and reveal period {}: version 3 commits are never revealed", tempo,
        reveal_period);
  const uint64_t span = static_cast<uint64_t>(tempo) + 1, shift = static_cast<uint64_t>(netuid) + 1;
  const bool fires = (included + shift) % span == tempo;
  const uint64_t commit_epoch = epoch_index(netuid, tempo, included) + (fires ? 1 : 0);
  // The firing block of epoch e is the block before epoch e + 1's first, (e + 1) span - shift.
  return (commit_epoch + reveal_period) * span - shift - 1;
}

RevealTiming reveal_timing(uint64_t reveal_epoch, uint64_t commit_epoch, uint64_t reveal_period) {
  const uint64_t due = commit_epoch + reveal_period;
  return reveal_epoch < due    ? RevealTiming::TooEarly
         : reveal_epoch == due ? RevealTiming::Due
                               : RevealTiming::Expired;
}

}  // namespace bistro::chain
