// The localnet's live view: one table per window the validator finishes (the master's held-out
// loss; each miner's loss, window score, rating, weight, incentive and emission from Yuma and,
// under protocol v2, whether the theta it trained from hashes as the master's), printed as it
// happens. Each window's validator line gains the chain's view of every miner, for the report.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bistro/chain/chain.hpp"
#include "bistro/localnet/supervisor.hpp"

namespace bistro::localnet {

class LiveTable {
 public:
  LiveTable(std::filesystem::path state_dir, bool loco)
      : state_dir_(std::move(state_dir)), loco_(loco) {}
  // Prints window `line`'s table; returns the line with "chain" (per uid: name, kind, loss,
  // incentive, emission, dividends, theta), "validator_dividends" and, with several validators,
  // "validators" (per validator: name, uid, stake, role, vtrust, dividends, theta, weights)
  // added.
  nlohmann::json add(nlohmann::json line, const chain::Metagraph& m,
                     const std::vector<Proc>& procs);
  // Miner windows whose theta hash was compared with the master's, and how many agreed.
  uint64_t compared() const { return compared_; }
  uint64_t agree() const { return agree_; }

 private:
  // "same", "DIFFER" or "-" (not comparable) for a node's hash of theta_w; `count`: a miner's,
  // counted in compared() and agree().
  std::string sync(uint64_t w, const std::string& hash, bool count = true);
  // The validators' rows (printed only when there are several).
  nlohmann::json validators(uint64_t w, const chain::Metagraph& m, const std::vector<Proc>& procs);
  // A process's metrics lines by window, read as its file grows; each kept as what the table
  // needs (loss, params_hash, role, and the weights by uid).
  const std::map<uint64_t, nlohmann::json>& lines_of(const std::string& name);
  std::filesystem::path state_dir_;
  bool loco_;
  std::map<std::string, JsonlTail> tails_;
  std::map<std::string, std::map<uint64_t, nlohmann::json>> lines_;
  // The master's hash of theta_w, from its lines (base_hash of line u is theta_u, params_hash
  // theta_{u+1}).
  std::map<uint64_t, std::string> master_hash_;
  uint64_t agree_ = 0, compared_ = 0;
};

}  // namespace bistro::localnet
