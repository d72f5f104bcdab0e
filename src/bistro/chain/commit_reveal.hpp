// Hash-based commit-reveal of weights (subtensor's commit_weights / reveal_weights), as a
// validator runs it: each set of weights is committed as weights_commit_hash(...) under a fresh
// random salt and revealed by a later call once its reveal epoch has come. Weight copiers then see
// only weights at least `reveal_period` epochs old. The unrevealed commits (their weights and
// salts) live in a JSON file written atomically, so a restarted validator, or the next
// `bistro chain weights`, still reveals them. Timelocked commit-reveal (v3, drand) is not this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bistro/chain/epochs.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::chain {

class Chain;

// subtensor's get_commit_hash: BLAKE2b-256 of SCALE (account, netuid_index, uids, values, salt,
// version_key); 32 raw bytes. netuid_index is the netuid for mechanism 0, else netuid + 4096 *
// mecid (Chain::weights_index).
std::string weights_commit_hash(const PublicKey& account, uint16_t netuid,
                                const std::vector<uint16_t>& uids,
                                const std::vector<uint16_t>& values,
                                const std::vector<uint16_t>& salt, uint64_t version_key);

struct PendingReveal {
  uint16_t netuid = 0;
  uint8_t mecid = 0;   // the mechanism it was committed to
  std::string hotkey;  // SS58
  std::vector<uint16_t> uids, values, salt;
  uint64_t version_key = 0;
};

class WeightsCommitter {
 public:
  // `file`: where the unrevealed commits are kept (empty: in memory only).
  explicit WeightsCommitter(std::filesystem::path file = {});
  // Reveals the hotkey's earlier commits on `netuid` and the chain's selected mechanism, oldest
  // first, each only when Chain::reveal_timing says the chain takes it now (one too early stops
  // the round and is kept; one expired or gone is dropped unsent and reported through `log`;
  // where the timing is unknown the reveal is tried, and a RevealTooEarly keeps it, any other
  // refusal drops it), then commits `values` under a fresh salt. Returns how many were revealed.
  size_t submit(Chain& chain, uint16_t netuid, const Signer& hotkey,
                const std::vector<uint16_t>& uids, const std::vector<uint16_t>& values,
                uint64_t version_key, const std::function<void(const std::string&)>& log = {});
  const std::vector<PendingReveal>& pending() const { return pending_; }

 private:
  void save() const;
  std::filesystem::path file_;
  std::vector<PendingReveal> pending_;
};

}  // namespace bistro::chain
