// SubtensorChain: the Chain interface on a real Bittensor node (finney, test, a local subtensor),
// over JSON-RPC. Reads are storage queries decoded with the runtime's own metadata; writes are
// signed v4 extrinsics built from the metadata's call indices and extension list, submitted and
// followed until a block includes them, with a dispatch failure reported as the pallet's error
// name (e.g. SettingWeightsTooFast). Secrets never leave the Signer and are never logged.
//
// The metagraph comes from NeuronInfoRuntimeApi.get_neurons_lite when the runtime's metadata (v15)
// lists it, else from storage. Subnets with commit-reveal get timelocked commits where the
// runtime's CommitRevealWeightsVersion asks for them (timelocked_weights.hpp), else hash-based
// commits (commit_weights now, reveal_weights at a later set_weights in the epoch the chain
// expects; unrevealed commits are kept under $BISTRO_HOME/reveals, commit_reveal.hpp). Not
// supported: subscriptions (bistro polls for new blocks over its WebSocket or HTTP connection).
#pragma once

#include <memory>

#include "bistro/chain/chain.hpp"
#include "bistro/substrate/metadata.hpp"
#include "bistro/substrate/rpc.hpp"

namespace bistro::chain {

struct SubtensorOptions {
  substrate::RpcOptions rpc;
  double inclusion_timeout_s = 120;  // how long to follow a submitted extrinsic
  double poll_s = 1.0;               // how often to look for new blocks while following
  uint64_t era_period = 64;
  // Where unrevealed weight commits are kept (commit_reveal.hpp): nullopt,
  // $BISTRO_HOME/reveals/<genesis hash>; an empty path, in memory only.
  std::optional<std::filesystem::path> reveals_dir;
};

class SubtensorChain final : public Chain {
 public:
  explicit SubtensorChain(const std::string& network, SubtensorOptions options = {});

  uint64_t block() override;
  BlockHash block_hash(uint64_t block) override;
  // From the chain's own clock (Timestamp.Now): the mean block time over the last 20 blocks
  // (re-read every minute; 12 s until there are two blocks to compare). Deadlines are counted
  // with it from the head (Chain::seconds_until): a node's wall clock is not compared with the
  // chain's timestamps, which a test chain may set freely.
  double seconds_per_block() override;
  Hyperparameters hyperparameters(uint16_t netuid) override;
  Metagraph metagraph(uint16_t netuid) override;
  std::vector<std::vector<std::pair<uint16_t, uint16_t>>> weights(uint16_t netuid) override;
  uint16_t register_neuron(uint16_t netuid, const Signer& coldkey,
                           const std::string& hotkey) override;
  void set_weights(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                   const std::vector<uint16_t>& values, uint64_t version_key) override;
  void commit_weights(uint16_t netuid, const Signer& hotkey, const std::string& hash) override;
  void reveal_weights(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                      const std::vector<uint16_t>& values, const std::vector<uint16_t>& salt,
                      uint64_t version_key) override;
  // From WeightCommits (the commit's epoch from spec 423, its block before) and the subnet's
  // epoch count; Unknown where the runtime keeps no WeightCommits list.
  RevealTiming reveal_timing(uint16_t netuid, const PublicKey& hotkey,
                             const std::string& commit_hash) override;
  // Mechanism mecid exists when MechanismCountCurrent[netuid] (1 on runtimes without it) is
  // above it; a mechanism other than 0 sends the mechanism variants of the weights calls.
  void select_mechanism(uint16_t netuid, uint8_t mecid) override;
  void set_commitment(uint16_t netuid, const Signer& hotkey, const std::string& data) override;
  std::map<std::string, std::string> commitments(uint16_t netuid) override;

  const substrate::Metadata& metadata() const { return metadata_; }

 private:
  // The value of a storage entry (its default when unset), decoded to JSON.
  nlohmann::json read(std::string_view pallet, std::string_view item,
                      const std::vector<std::string>& encoded_keys = {});
  std::string key(std::string_view pallet, std::string_view item,
                  const std::vector<std::string>& encoded_keys) const;
  std::vector<nlohmann::json> read_many(std::string_view pallet, std::string_view item,
                                        const std::vector<std::vector<std::string>>& keys);
  // Signs, submits and follows `call`; throws ChainError with the runtime's error name.
  void submit(const std::string& call, const Signer& signer, const std::string& what);
  void require_subnet(uint16_t netuid);
  // Calls a runtime API the metadata lists and decodes its result; nullopt if the runtime has none.
  std::optional<nlohmann::json> runtime_api(std::string_view api, std::string_view method,
                                            const std::string& args);
  std::filesystem::path reveals_dir() override;
  // set_weights on a subnet whose commit-reveal is timelocked (version 3 or 4):
  // timelocked_weights.hpp says how the round is chosen.
  void commit_timelocked(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                         const std::vector<uint16_t>& values, uint64_t version_key,
                         const Hyperparameters& h, uint64_t version);

  // The subnet's epoch bookkeeping at `head` (spec 423 on); nullopt on runtimes without it.
  std::optional<EpochSchedule> epoch_schedule(uint16_t netuid, uint16_t tempo, uint64_t head);
  // Timestamp.Now at a block, in ms (nullopt: the runtime has none there).
  std::optional<uint64_t> timestamp_ms(uint64_t block);
  double spb_ = 0;                                  // measured seconds per block (0: not yet)
  std::chrono::steady_clock::time_point spb_read_;  // when

  substrate::RpcClient rpc_;
  SubtensorOptions options_;
  substrate::Metadata metadata_;
  std::string genesis_;
  uint32_t spec_version_ = 0, tx_version_ = 0;
};

// The largest timelocked commit the chain takes (its BoundedVec).
inline constexpr size_t kMaxTimelockedCommitBytes = 5000;

}  // namespace bistro::chain
