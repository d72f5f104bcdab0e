// A miner on several ranks (runtime/distributed.hpp), one hotkey and one uid. Rank 0 is the miner:
// it alone talks to the chain and the buckets, syncs theta, encodes and uploads. Before each
// operation on its trainer it tells the other ranks to do the same on theirs; they hold only a
// trainer and the data, and follow until told to stop. Their gradients are summed every step
// (Trainer::set_ranks), so every rank keeps the same parameters and AdamW state.
//
// Each micro-batch slot of a window is a micro-batch on every rank (window_batches.hpp,
// stream_index): an N-rank miner takes N micro-batches per inner step, N times the tokens; its
// first steps go over the pages of (window, uid) that the validator rebuilds, as many steps as a
// one-rank miner gives them, and later steps over N fresh micro-batches each.
//
// If a rank dies or times out, rank 0 logs it once and goes on alone (the window in flight is
// lost, as any failed window is); the other ranks exit when rank 0 does.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "bistro/train/trainer.hpp"

namespace bistro::runtime {
class Ranks;
}

namespace bistro {

enum class RankOp : int64_t { Stop = 0, Ping, SetParams, Step };

class MinerRanks {
 public:
  // `ranks` and `trainer` outlive this; the trainer is set to sum over `ranks`.
  MinerRanks(runtime::Ranks& ranks, Trainer& trainer);

  int rank() const;
  int size() const;
  // The stream index of micro-batch slot `slot` on this rank, `own` being the window's own
  // micro-batches (window_batches.hpp, stream_index).
  int64_t index(int64_t slot, int64_t own) const;
  // Rank 0, while the group holds: more than one rank and none lost.
  bool active() const { return active_; }

  // Rank 0: tells the other ranks to do `op` (a no-op when inactive). SetParams sends the
  // parameters of the trainer's model, and with `full` its AdamW moments and step count too.
  // Returns false, having logged through `log`, when the group failed: rank 0 then trains alone.
  // `key`: the window's pages key (window_batches.hpp).
  bool tell(RankOp op, uint64_t key = 0, int64_t slot = 0, bool full = false);
  // Rank 0, after a failed operation: drops the group if it no longer answers.
  void check_alive();
  std::function<void(const std::string&)> log;

  // The other ranks: follow rank 0 until it says Stop. `batch(key, slot)` gives this rank's
  // micro-batch of slot `slot` in the stream of pages `key`.
  void follow(const std::function<const Batch&(uint64_t, int64_t)>& batch);

 private:
  void drop(const std::string& why);
  std::vector<torch::Tensor> shared_state(bool full);

  runtime::Ranks& ranks_;
  Trainer& trainer_;
  bool active_ = false;
};

}  // namespace bistro
