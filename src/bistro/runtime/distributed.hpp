// Data-parallel ranks of one bistro node on libtorch's c10d: a TCPStore rendezvous at
// MASTER_ADDR:MASTER_PORT (served by rank 0) and a gloo process group (CPU tensors) over it. A node
// is one hotkey and one uid whatever its number of ranks; its ranks run the same computation on
// different micro-batches and sum their gradients every step (DDP semantics), so every rank holds
// the same parameters and optimizer state.
//
// Launching is torchrun's convention: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in
// the environment (rank_env). `--ranks N` on one host spawns ranks 1..N-1 of the same command
// (launch.hpp) and is rank 0 itself.
//
// Every collective and the rendezvous are bounded by the group's timeout: an unreachable
// MASTER_ADDR or a rank that died is an Error naming it, never a hang. Builds whose libtorch lacks
// c10d's gloo (a PyTorch wheel ships no gloo headers) refuse to form a group of more than one rank.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace bistro::runtime {

struct RankEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// This process's place from torchrun's variables; nullopt when neither RANK nor WORLD_SIZE is set
// (a single-rank node). An Error names the variable that is missing, not a number, or
// inconsistent (RANK outside [0, WORLD_SIZE), a port outside 1-65535).
std::optional<RankEnv> rank_env();

// One GPU a rank: local rank k takes cuda:k. Refused by name where this host has no GPU k.
void require_rank_gpu(const RankEnv& e);

// Whether this build can form groups of more than one rank.
bool distributed_available();

class Ranks {
 public:
  // A group of one: every collective is a no-op.
  Ranks();
  // Joins the group described by `env`, waiting at most `timeout` for every rank to arrive; the
  // same timeout bounds each collective afterwards.
  Ranks(const RankEnv& env, std::chrono::milliseconds timeout);
  ~Ranks();
  Ranks(const Ranks&) = delete;
  Ranks& operator=(const Ranks&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Sums `tensors` over the ranks, in place (one flattened buffer per dtype).
  void sum(std::vector<at::Tensor>& tensors);
  // Rank `root`'s values into every rank's `tensors`, in place.
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  // Every rank must hold the same `value` for `what` (a config's hash, say); otherwise every rank
  // throws an Error naming the first rank that differs from rank 0.
  void require_same(const std::string& what, const std::string& value);
  // Bytes summed and seconds spent in sum() so far (the benchmark reads them).
  double bytes_summed() const { return bytes_; }
  double seconds_summing() const { return seconds_; }

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0, size_ = 1;
  double bytes_ = 0, seconds_ = 0;
  uint64_t round_ = 0;  // require_same calls so far: their store keys
};

}  // namespace bistro::runtime
