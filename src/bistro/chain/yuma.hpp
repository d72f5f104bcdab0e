// Yuma Consensus: one epoch of a subnet, as subtensor's (sparse) epoch computes it, in the chain's
// own fixed-point arithmetic, so a local chain's incentive and dividends equal the real chain's for
// the same state. A pure function: state in, results out; the caller stores them.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace bistro::chain {

// A sparse row as the chain stores it: (uid, value) pairs in the order they were set. Explicit zero
// entries are kept: subtensor keeps them, and with Yuma3 they decide which bonds survive.
using SparseRow = std::vector<std::pair<uint16_t, uint16_t>>;

struct EpochParams {
  uint64_t block = 0;  // the block the epoch runs in
  uint64_t tempo = 360;
  uint64_t activity_cutoff = 5000;
  uint16_t max_validators = 64;
  uint16_t kappa = 32767;                  // consensus majority, u16 proportion
  uint16_t bonds_penalty = 65535;          // u16 proportion: 0 bonds follow W, 1 follow clipped W
  uint64_t bonds_moving_average = 900000;  // per million: EMA alpha = 1 - this / 1e6
  bool yuma3 = true;
  bool liquid_alpha = false;
  uint16_t alpha_low = 45875;  // u16 proportions
  uint16_t alpha_high = 58982;
  int32_t alpha_sigmoid_steepness = 1000;
  uint64_t stake_threshold = 0;            // stake below this counts as zero
  uint64_t last_mechanism_step_block = 0;  // the previous epoch's block (0: none yet)
  uint64_t emission = 1'000'000'000;       // rao distributed by this epoch
  std::optional<uint16_t> owner_uid;  // the subnet owner's uid keeps its self-weight and permit
};

// Per-uid state going in; all vectors have one entry per uid.
struct EpochState {
  std::vector<uint64_t> stake;
  std::vector<uint64_t> last_update;
  std::vector<uint64_t> block_at_registration;
  std::vector<bool> validator_permit;  // from the previous epoch
  std::vector<SparseRow> weights;      // row i: weights set by uid i (u16, max-upscaled)
  std::vector<SparseRow> bonds;        // row i: bonds of uid i (u16)
};

struct EpochResult {
  std::vector<bool> active;
  std::vector<bool> validator_permit;  // new permits
  std::vector<uint16_t> stake_weight, consensus, incentive, dividends, trust, validator_trust;
  std::vector<uint64_t> emission;  // combined, rao
  std::vector<uint64_t> server_emission, validator_emission;
  // New bond rows: stored where the uid keeps a permit, cleared where it lost one, else unchanged.
  std::vector<std::optional<SparseRow>> bonds;
};

// Runs one epoch. Rows or uids beyond the state's size are ignored, as the chain ignores them.
EpochResult run_epoch(const EpochParams& params, const EpochState& state);

// The epoch schedule subtensor used before 2026: an epoch runs in block b when
// (b + netuid + 1) % (tempo + 1) == 0.
bool is_epoch_block(uint64_t block, uint16_t netuid, uint64_t tempo);

}  // namespace bistro::chain
