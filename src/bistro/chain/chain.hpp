// Chain: everything a neuron needs from a Bittensor subnet, behind one interface, so miners and
// validators run unchanged on the embedded LocalChain (SQLite, one machine) and on the real network
// (a subtensor client). Like LevelDB's Env: small, synchronous, and each call either happens
// completely or throws ChainError naming the chain's own error.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bistro/chain/commit_reveal.hpp"
#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::chain {

// A call the chain refused. name() is subtensor's error name (e.g. "SettingWeightsTooFast").
class ChainError : public Error {
 public:
  ChainError(std::string name, const std::string& detail)
      : Error(name + ": " + detail), name_(std::move(name)) {}
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// A subnet's hyperparameters, with subtensor's names and defaults (values for a new subnet).
struct Hyperparameters {
  uint16_t tempo = 360;
  uint64_t immunity_period = 5000;
  uint64_t activity_cutoff = 5000;
  uint16_t max_uids = 256;
  uint16_t max_validators = 64;
  uint16_t min_allowed_weights = 1;
  uint16_t max_weight_limit = 65535;
  uint64_t weights_rate_limit = 100;
  uint64_t weights_version_key = 0;
  uint16_t kappa = 32767;
  uint16_t bonds_penalty = 65535;
  uint64_t bonds_moving_average = 900000;
  bool yuma3 = true;
  bool liquid_alpha = false;
  uint16_t alpha_low = 45875;
  uint16_t alpha_high = 58982;
  int32_t alpha_sigmoid_steepness = 1000;
  uint64_t stake_threshold = 0;
  bool commit_reveal = false;
  uint64_t reveal_period = 1;  // RevealPeriodEpochs: a commit is revealed that many epochs later
  uint64_t emission_per_block =
      1'000'000'000;  // rao; an epoch distributes (tempo + 1) blocks' worth
};

struct Neuron {
  uint16_t uid = 0;
  std::string hotkey, coldkey;  // SS58
  uint64_t stake = 0;           // rao
  uint64_t last_update = 0, block_at_registration = 0;
  bool validator_permit = false, active = true;
  // u16 proportions of 65535, as the chain stores them.
  uint16_t incentive = 0, dividends = 0, consensus = 0, trust = 0, validator_trust = 0;
  uint64_t emission = 0;  // rao, last epoch
};

struct Metagraph {
  uint16_t netuid = 0;
  uint64_t block = 0;
  std::vector<Neuron> neurons;  // indexed by uid
  std::optional<uint16_t> uid_of(const std::string& hotkey) const;
};

using BlockHash = std::array<uint8_t, 32>;

class Chain {
 public:
  virtual ~Chain() = default;

  virtual uint64_t block() = 0;
  // Seconds between blocks (Bittensor's 12 unless the chain says otherwise): how a neuron turns a
  // deadline block into time left.
  virtual double seconds_per_block() { return 12.0; }
  // Seconds from now until the chain reaches `block` (negative once it has): when a deadline
  // falls. By default from block() and seconds_per_block(), counting from the middle of the
  // current block; the backends that know block times say exactly.
  virtual double seconds_until(uint64_t block);
  // The hash of a block at or before the current one.
  virtual BlockHash block_hash(uint64_t block) = 0;
  virtual Hyperparameters hyperparameters(uint16_t netuid) = 0;
  virtual Metagraph metagraph(uint16_t netuid) = 0;
  // Every uid's last weights as the chain stores them: (destination uid, u16 value) pairs, one
  // row per uid (empty where none are set).
  virtual std::vector<std::vector<std::pair<uint16_t, uint16_t>>> weights(uint16_t netuid) = 0;

  // Registers `hotkey` (SS58) under the signing coldkey; returns its uid. Registering a hotkey
  // that is already registered returns its uid unchanged.
  virtual uint16_t register_neuron(uint16_t netuid, const Signer& coldkey,
                                   const std::string& hotkey) = 0;
  // A validator's weights, signed by its hotkey; values are u16 (max-upscaled). subtensor's
  // set_weights; on a subnet with commit_reveal_weights_enabled, commit_weights of these weights
  // after reveal_weights of the earlier commits that are due (commit_reveal_weights below).
  virtual void set_weights(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                           const std::vector<uint16_t>& values, uint64_t version_key) = 0;
  // Hash-based commit-reveal, subtensor's calls and rules: `hash` is weights_commit_hash(...)
  // (32 bytes); a reveal is accepted only in the commit's epoch + reveal_period and
  // sets the weights then. Refusals by subtensor's names: CommitRevealDisabled,
  // HotKeyNotRegisteredInSubNet, CommittingWeightsTooFast, TooManyUnrevealedCommits (10),
  // NoWeightsCommitFound, RevealTooEarly, ExpiredWeightCommit, InvalidRevealCommitHashNotMatch.
  virtual void commit_weights(uint16_t netuid, const Signer& hotkey, const std::string& hash) = 0;
  virtual void reveal_weights(uint16_t netuid, const Signer& hotkey,
                              const std::vector<uint16_t>& uids,
                              const std::vector<uint16_t>& values,
                              const std::vector<uint16_t>& salt, uint64_t version_key) = 0;
  // Where the hotkey's hash commit `commit_hash` on the selected mechanism stands for a reveal
  // sent now (included in the next block), by the chain's own bookkeeping: the commit's stored
  // epoch or block and the subnet's epoch count (epochs.hpp). Unknown where the chain keeps none
  // that this client reads; then the reveal is sent and the chain's answer decides.
  virtual RevealTiming reveal_timing(uint16_t netuid, const PublicKey& hotkey,
                                     const std::string& commit_hash) {
    (void)netuid, (void)hotkey, (void)commit_hash;
    return RevealTiming::Unknown;
  }
  // The mechanism (subtensor's sub-subnets, spec 320 on) that this client's weights calls
  // address from now on: set_weights, commit/reveal_weights and weights() act on `mecid` of the
  // subnet, whose weights live at storage index netuid + 4096 * mecid. Refused as
  // MechanismDoesNotExist where the subnet has no such mechanism (every subnet has mechanism 0;
  // the local chain has no other).
  virtual void select_mechanism(uint16_t netuid, uint8_t mecid);
  uint8_t mechanism() const { return mechanism_; }
  // The storage index of the selected mechanism's weights on `netuid` (commit hashes use it).
  uint16_t weights_index(uint16_t netuid) const {
    return static_cast<uint16_t>(netuid + kMechanismStride * mechanism_);
  }
  static constexpr uint16_t kMechanismStride = 4096;  // subtensor's GLOBAL_MAX_SUBNET_COUNT

  // Commitments.set_commitment: up to 3 fields of 128 bytes each, here one string of <= 384 bytes.
  virtual void set_commitment(uint16_t netuid, const Signer& hotkey, const std::string& data) = 0;
  // Every commitment on the subnet, by hotkey (SS58).
  virtual std::map<std::string, std::string> commitments(uint16_t netuid) = 0;

 protected:
  uint8_t mechanism_ = 0;
  // set_weights on a commit-reveal subnet: one WeightsCommitter per hotkey, its unrevealed
  // commits kept in reveals_dir()/<hotkey>.json (an empty dir: in memory only).
  void commit_reveal_weights(uint16_t netuid, const Signer& hotkey,
                             const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                             uint64_t version_key);
  virtual std::filesystem::path reveals_dir() { return {}; }

 private:
  std::map<std::string, std::unique_ptr<WeightsCommitter>> committers_;
};

// The largest commitment set_commitment accepts.
inline constexpr size_t kMaxCommitmentBytes = 3 * 128;

}  // namespace bistro::chain

#include <nlohmann/json_fwd.hpp>

namespace bistro::chain {
// Hyperparameters as JSON with subtensor's names. from_json starts from `base` and rejects unknown
// names and out-of-range values, naming `origin`.
nlohmann::json to_json(const Hyperparameters& h);
Hyperparameters hyperparameters_from_json(const nlohmann::json& j, const std::string& origin,
                                          Hyperparameters base = {});
}  // namespace bistro::chain
