// How subtensor counts a subnet's epochs, which its commit-reveal keys off: a reveal is accepted
// only in epoch commit_epoch + reveal_period, and a timelocked commit is revealed by the chain in
// that epoch's first block. Two rules, by runtime:
// - before spec 423, a pure function of the block: epoch = (block + netuid + 1) / (tempo + 1);
// - from spec 423, a counter (SubnetEpochIndex) that the chain advances when an epoch fires:
//   at PendingEpochAt, when BlocksSinceLastStep passes the largest tempo, or tempo blocks after
//   LastEpochBlock. A commit or reveal in a block where an epoch fires belongs to the new epoch
//   (the chain's "look-ahead"), and each hash commit stores the epoch it was made in.
#pragma once

#include <cstdint>

namespace bistro::chain {

// The rule before spec 423: the epoch index of `block` on `netuid`.
uint64_t epoch_index(uint16_t netuid, uint16_t tempo, uint64_t block);

// The chain's epoch bookkeeping for a subnet (spec 423 on), read at `current_block`.
struct EpochSchedule {
  uint64_t last_epoch_block = 0, pending_epoch_at = 0, subnet_epoch_index = 0;
  uint16_t tempo = 0;
  uint64_t blocks_since_last_step = 0, current_block = 0;
};
// Whether an epoch fires in `block` (subtensor's should_run_epoch on this bookkeeping).
bool epoch_fires(const EpochSchedule& s, uint64_t block);
// The epoch a commit or reveal included in `block` belongs to: SubnetEpochIndex, plus one if an
// epoch fires in that block. Meant for blocks up to the next epoch (`s` is not stepped).
uint64_t epoch_at(const EpochSchedule& s, uint64_t block);

// The first block in which the chain reveals a timelocked commit sent now (included in the next
// block): the first block whose epoch, as the reveal step reads it before the block's epoch runs,
// is the commit's epoch + reveal_period. Throws Error for tempo 0 (no epochs) or when none comes
// within reveal_period + 1 largest tempos.
uint64_t first_reveal_block(const EpochSchedule& s, uint64_t reveal_period);
// The same on runtimes before spec 423: the reveal epoch's first block.
uint64_t first_reveal_block_before_423(uint64_t current_block, uint16_t netuid, uint16_t tempo,
                                       uint64_t reveal_period);

// Runtimes with commit_crv3_weights (version 3, before spec 315) reveal a timelocked commit only
// in a block where the epoch fires (under the older rule, the last block of an epoch: (block +
// netuid + 1) % (tempo + 1) == tempo), that of epoch commit_epoch + reveal_period - 1, the commit's
// epoch counting one that fires in its own block. The block of that reveal for a commit included
// in block `included`.
uint64_t crv3_reveal_block(uint64_t included, uint16_t netuid, uint16_t tempo,
                           uint64_t reveal_period);

// Where a hash commit stands for a reveal that lands in a block of epoch `reveal_epoch`.
enum class RevealTiming {
  Unknown,   // the chain's bookkeeping could not be read: try, and let the chain say
  NotFound,  // the chain holds no commit with this hash (expired and pruned, or never landed)
  TooEarly,  // before commit_epoch + reveal_period
  Due,       // exactly commit_epoch + reveal_period: the only epoch the chain accepts
  Expired,   // after it: the chain would refuse it (ExpiredWeightCommit)
};
RevealTiming reveal_timing(uint64_t reveal_epoch, uint64_t commit_epoch, uint64_t reveal_period);

}  // namespace bistro::chain
