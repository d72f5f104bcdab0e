// `--ranks N` on one host, torchrun's single-host case without torchrun: this process spawns ranks
// 1..N-1 as copies of itself (/proc/self/exe with the same arguments) and becomes rank 0. Each
// copy gets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, which
// this process sets for itself too, so that rank_env() reads the same group everywhere. A copy
// dies with its parent (PR_SET_PDEATHSIG): no orphaned rank outlives a killed node.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "bistro/runtime/distributed.hpp"

namespace bistro::runtime {

class LocalRanks {
 public:
  explicit LocalRanks(int n);
  // Kills the copies still running.
  ~LocalRanks();
  LocalRanks(const LocalRanks&) = delete;
  LocalRanks& operator=(const LocalRanks&) = delete;
  // Waits for every copy; an Error names the first rank that failed and how.
  void wait();

 private:
  std::vector<int> pids_;  // rank k at k - 1
};

// This process's place among its node's ranks: torchrun's environment (rank_env) or, with
// `requested` > 1 and none set, `requested` ranks spawned into `local`; nullopt for a node of
// one rank. Refused by name: `requested` below 1, or other than a WORLD_SIZE that is set.
std::optional<RankEnv> launch_ranks(int requested, std::unique_ptr<LocalRanks>& local);

}  // namespace bistro::runtime
