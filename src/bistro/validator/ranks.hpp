// A validator on several ranks (runtime/distributed.hpp), one hotkey and one uid. Rank 0 is the
// validator: it alone talks to the chain and the buckets, judges, publishes and sets weights. The
// other ranks hold only a copy of the window's theta_w on their own device and lend their forward
// passes to its WindowScorer (scoring.hpp): each measurement's micro-batches are spread over the
// ranks, micro-batch i on rank i mod N, and every row's loss is gathered back to rank 0. A row's
// loss does not depend on the rank that computed it (the same theta, the same update applied with
// the same fp32 rounding, the same micro-batch), so the observations, and with them the verdicts,
// are those of one rank; a measurement takes about 1/N of the time.
//
// Each update's step (Delta) is sent once per window: the other ranks keep the last
// kDeltaCache of them, so a reference serving several measurements is not sent again.
//
// If a rank dies or times out, rank 0 logs it once and measures alone from then on (the
// measurement in flight is redone on rank 0); the other ranks exit when rank 0 stops.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bistro/model/llama.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro::runtime {
class Ranks;
}

namespace bistro {

struct Delta;

enum class ScoreOp : int64_t { Stop = 0, Ping, Theta, Losses };

class ScoringRanks {
 public:
  // `ranks` outlives this. Rank 0 says Stop to the other ranks when destroyed.
  explicit ScoringRanks(runtime::Ranks& ranks);
  ~ScoringRanks();
  ScoringRanks(const ScoringRanks&) = delete;
  ScoringRanks& operator=(const ScoringRanks&) = delete;

  // Rank 0, while the group holds: more than one rank and none lost.
  bool active() const { return active_; }
  int size() const { return active_ ? size_ : 1; }

  static constexpr size_t kDeltaCache = 8;

  // Rank 0: the other ranks' theta takes these parameters' values (a window's theta_w). Returns
  // its generation: losses() asked for an older one are computed on rank 0 alone.
  uint64_t set_theta(const std::vector<torch::Tensor>& params);
  // Rank 0: sequence_losses(m, batches), m holding theta `generation` with delta number
  // `delta_id` applied (-1: none; `delta` gives it, built only when the other ranks lack it), the
  // batches spread over the ranks; the other ranks apply the delta to their theta and restore it
  // after. Computed on rank 0 alone when inactive, for another generation, or when the group
  // fails.
  std::vector<double> losses(Llama& m, uint64_t generation, int64_t delta_id,
                             const std::function<Delta()>& delta,
                             const std::vector<Batch>& batches);
  // Rank 0: drops the group if it no longer answers (call it at least once per group timeout
  // while idle: the other ranks wait that long for the next operation).
  void check_alive();
  void stop();
  // Rank 0: the micro-batches the other ranks have computed so far.
  uint64_t shared_batches() const { return shared_; }
  // Rank 0: the update steps sent to the other ranks so far.
  uint64_t deltas_sent() const { return deltas_sent_; }
  std::function<void(const std::string&)> log;

  // The other ranks: serve rank 0 with `theta` (this rank's model, on its device) until Stop.
  void follow(Llama& theta);

 private:
  void drop(const std::string& why);

  runtime::Ranks& ranks_;
  int size_ = 1;
  bool active_ = false;
  uint64_t shared_ = 0, deltas_sent_ = 0;
  uint64_t generation_ = 0;
  std::vector<int64_t> sent_;  // the delta ids the other ranks hold, oldest first
};

}  // namespace bistro
