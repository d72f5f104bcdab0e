// The protocol v2 miner's parts (miner.cpp runs the window, waiting.cpp the wait for the
// record): its saved state, one window's working state and the miner itself. Internal to
// miner/; miner.hpp is the role's interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/miner/ranks.hpp"
#include "bistro/miner/window_batches.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/node.hpp"
#include "bistro/protocol/peers.hpp"
#include "bistro/runtime/distributed.hpp"

namespace bistro {

// What a restarted miner needs: theta at the start of its last window, its own AdamW and
// error-feedback state. `state.json` is written last and names the hash of the theta file, so a
// kill between the writes is detected (and the master's checkpoint used instead).
struct MinerState {
  std::filesystem::path dir;
  // theta_w and AdamW's moments in one checkpoint directory (the local weights are not kept:
  // every window starts them from theta), the error feedback beside it, state.json last.
  void save(uint64_t window, uint64_t first, Llama& shared, Trainer& trainer,
            const ErrorFeedback& ef) const;
  // The window the run began at (--windows counts from it), when a state says so.
  std::optional<uint64_t> first() const;
  // The window theta is at, or nullopt when there is no usable state.
  std::optional<uint64_t> load(Llama& shared, Trainer& trainer, ErrorFeedback& ef,
                               const std::function<void(const std::string&)>& log) const;
};

// One window's working state, from its sync to its report.
struct MinerWindow {
  uint64_t w = 0, deadline = 0;
  Timer timer;
  uint64_t requests_before = 0;
  std::unique_ptr<WindowBatches> batches;
  int64_t used = 0;  // micro-batch slots consumed (a slot is a micro-batch on every rank)
  InnerLoopResult inner;
  int64_t waiting_steps = 0;  // of inner.steps, taken while record(w-1) was not out
  int64_t dropped_steps = 0;  // waiting steps from window w-1's end given up (not in the record)
  bool lead_chosen = false;   // the lead of w-1 decided (train_while_waiting)
  bool holds_own = false;     // the published record(w-1) holds this miner's update
  std::chrono::steady_clock::time_point started;
  double time_left = 0;
  std::string theta_hash, bytes;
};
class LocoMiner : Node {
 public:
  // `group`: this node's ranks (runtime/distributed.hpp); this process is rank 0.
  LocoMiner(const NeuronArgs& a, const NeuronHparams& h, runtime::Ranks& group);
  int run();

 private:
  uint64_t pages_key(uint64_t window) const;
  std::vector<Batch> load(uint64_t window);
  // The cheats that feed on a peer: the update of window w of --copy-uid (default: the lowest
  // other miner's uid), polled until it appears or the chain reaches `until`.
  std::optional<Update> peer_update(uint64_t w, uint64_t until);
  // Where the run starts and ends: from the state, or from the master's checkpoint.
  uint64_t start();
  // The next step plus the encode and upload must fit before the deadline.
  bool in_time(const MinerWindow& x, double per_step) const;
  // This rank's micro-batch of slot i (window_batches.hpp, ranks.hpp).
  const Batch& batch(MinerWindow& x, int64_t i);
  // theta into the trainer's model, on every rank (`full`: AdamW's state too).
  void start_local(bool full);
  // While record(w-1) is not final, takes window w's first inner steps from the lead's
  // published record, or before it is out from the end of window w-1's steps, and moves them
  // onto theta_w when the final record lands; false when it did not come before the deadline.
  bool train_while_waiting(MinerWindow& x);
  // Record(w-1) as the lead published it, applied to a copy of theta_{w-1}: local_ moves there
  // (with the progress made from `start`, when it holds the steps' start) and `start` becomes
  // it. NotOut while the lead published none; Refused when it is bad or fails the check.
  enum class Published { NotOut, TrainedOn, Refused };
  Published move_to_published(MinerWindow& x, std::vector<torch::Tensor>& start);
  // Whether the final record(u) holds this miner's update (false when it cannot be read).
  bool final_holds_own(uint64_t u);
  void train(MinerWindow& x);
  std::string encode(MinerWindow& x);
  void report(MinerWindow& x);
  void window(uint64_t w);

  const NeuronHparams& h_;
  Behaviour kind_;
  LlamaConfig config_;
  Llama shared_;  // theta: the model every node holds
  Trainer trainer_;
  std::unique_ptr<ErrorFeedback> ef_;
  std::vector<torch::Tensor> theta_, local_;
  MinerState state_;
  std::optional<uint64_t> at_;  // the window theta is at
  std::unique_ptr<ModelSync> sync_;
  std::unique_ptr<NeuronData> data_;
  std::future<std::vector<Batch>> prefetch_;
  uint64_t prefetched_ = 0, first_ = 0;
  bool trains_ = false;
  MinerRanks ranks_;
  bool ranks_synced_ = false;         // the other ranks hold AdamW's state
  std::optional<uint64_t> local_at_;  // the window whose inner steps local_ ends
};

}  // namespace bistro
