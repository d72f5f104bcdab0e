// LocalChain: the embedded chain for one machine. State lives in one SQLite file (WAL mode) that
// every miner and validator process opens, so they share one subnet without a network. Blocks
// advance with wall-clock time at the configured block time; block hashes are a pure function of
// the genesis hash and the block number; registration, stake, weights (with subtensor's rules,
// hash commit-reveal included), commitments and Yuma epochs behave as on subtensor. Each call is
// one SQLite transaction: it happens completely or not at all.
//
// Epochs: before any call, pending epoch blocks up to the current block are run, inside an
// exclusive transaction that records the last block processed, so each epoch runs exactly once no
// matter how many processes observe its boundary.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>

#include "bistro/chain/chain.hpp"

struct sqlite3;

namespace bistro::chain {

struct LocalChainOptions {
  uint64_t block_time_ms = 12'000;  // Bittensor's 12 s; tests and demos use far less
  uint64_t genesis_seed = 0;        // the genesis hash is derived from it
};

// One stored epoch's results (for reports and tests).
struct EpochRecord {
  uint64_t block = 0;
  std::vector<uint16_t> incentive, dividends;
  std::vector<uint64_t> emission;
};

class LocalChain final : public Chain {
 public:
  // Creates a new chain file; fails if one exists at `path`.
  static void create(const std::filesystem::path& path, const LocalChainOptions& options = {});
  // Opens an existing chain file; fails with a clear error for a missing or corrupt file.
  explicit LocalChain(const std::filesystem::path& path);
  ~LocalChain() override;
  LocalChain(const LocalChain&) = delete;
  LocalChain& operator=(const LocalChain&) = delete;

  uint64_t block() override;
  double seconds_per_block() override { return static_cast<double>(block_time_ms()) / 1000.0; }
  // Exact: block b begins at genesis + b x block_time.
  double seconds_until(uint64_t block) override;
  BlockHash block_hash(uint64_t block) override;
  Hyperparameters hyperparameters(uint16_t netuid) override;
  Metagraph metagraph(uint16_t netuid) override;
  uint16_t register_neuron(uint16_t netuid, const Signer& coldkey,
                           const std::string& hotkey) override;
  std::vector<std::vector<std::pair<uint16_t, uint16_t>>> weights(uint16_t netuid) override;
  void set_weights(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                   const std::vector<uint16_t>& values, uint64_t version_key) override;
  void commit_weights(uint16_t netuid, const Signer& hotkey, const std::string& hash) override;
  void reveal_weights(uint16_t netuid, const Signer& hotkey, const std::vector<uint16_t>& uids,
                      const std::vector<uint16_t>& values, const std::vector<uint16_t>& salt,
                      uint64_t version_key) override;
  void set_commitment(uint16_t netuid, const Signer& hotkey, const std::string& data) override;
  std::map<std::string, std::string> commitments(uint16_t netuid) override;

  // Local-chain administration (the subnet owner's and sudo's powers on a real chain).
  void create_subnet(uint16_t netuid, const Hyperparameters& h);
  void set_hyperparameters(uint16_t netuid, const Hyperparameters& h);
  std::vector<uint16_t> subnets();
  // Adds `amount` rao of stake to `hotkey` (SS58) from `coldkey` (SS58).
  void add_stake(const std::string& hotkey, const std::string& coldkey, uint64_t amount);
  // Moves the clock forward by `blocks` (tests and demos; every process sees it).
  void advance(uint64_t blocks);
  uint64_t block_time_ms();
  // Epoch results, oldest first, for blocks >= since.
  std::vector<EpochRecord> epochs(uint16_t netuid, uint64_t since = 0);
  const std::filesystem::path& path() const { return path_; }

 private:
  void sync(uint16_t netuid);  // runs pending epochs; caller holds the write transaction
  uint64_t now_block();
  void require_subnet(uint16_t netuid);
  // set_weights' checks and store (caller holds the write transaction); a reveal is not rate
  // limited and leaves last_update at its commit.
  void store_weights(uint16_t netuid, const std::string& hotkey, const std::vector<uint16_t>& uids,
                     const std::vector<uint16_t>& values, uint64_t version_key, bool revealed);
  // A hotkey's weight commits on a subnet, split by expiry, with the call's block and name
  // (CommitRevealDisabled when the subnet has no commit-reveal); caller holds the transaction.
  struct StoredCommit {
    int64_t seq;
    std::string hash;
    uint64_t block;
  };
  struct Commits {
    Hyperparameters h;
    uint64_t now = 0;
    std::string what;
    std::vector<StoredCommit> live, expired;  // oldest first
  };
  Commits commits_of(uint16_t netuid, const std::string& hotkey, const char* call);
  void drop_commits(uint16_t netuid, const std::string& hotkey, int64_t through_seq);
  // <chain file>.reveals: each hotkey's unrevealed commits (commit_reveal.hpp).
  std::filesystem::path reveals_dir() override;

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // one connection, used by one thread at a time
};

}  // namespace bistro::chain
