// What each update does to the loss, alone and per sequence: the validator's measurements for the
// gauntlet (gauntlet.hpp), shared with `bistro experiment attack`.
#pragma once

#include <map>
#include <set>

#include "bistro/compress/update.hpp"
#include "bistro/model/llama.hpp"
#include "bistro/train/trainer.hpp"
#include "bistro/validator/gauntlet.hpp"

namespace bistro {

class ScoringRanks;

// Each row's mean next-token loss (over its counted targets), the batches' rows in order; a row
// with no counted target is 0. A non-finite loss comes back as +inf.
std::vector<double> sequence_losses(Llama& model, const std::vector<Batch>& batches);

// The values apply_alone() overwrote: per parameter, floats (CPU) or a tensor (index ops).
struct SavedValues {
  std::vector<std::vector<float>> cpu;
  std::vector<torch::Tensor> device;
};
// theta -= alpha * scale_p * u on the update's coordinates of each parameter p (the outer step
// with this one peer, clipped by scale), in fp32 as the outer step rounds; the overwritten values
// come back for restore_alone(). Parameters off the CPU are written with index ops on their
// device (index_ops forces that path, for tests: both give the same bits).
SavedValues apply_alone(const std::vector<torch::Tensor>& params, const Update& u, double alpha,
                        const std::vector<double>& scale, bool index_ops = false);
void restore_alone(const std::vector<torch::Tensor>& params, const Update& u,
                   const SavedValues& saved);

// apply_alone's step as index writes, to send to another rank (ranks.hpp): per parameter, the
// flat positions of the update's values (int32) and alpha * scale_p * its values in fp32 (CPU
// tensors).
struct Delta {
  std::vector<torch::Tensor> at, values;
};
Delta delta_of(const std::vector<torch::Tensor>& params, const Update& u, double alpha,
               const std::vector<double>& scale);
// theta -= delta, with the bits apply_alone writes; restore_delta puts the saved values back.
SavedValues apply_delta(const std::vector<torch::Tensor>& params, const Delta& d);
void restore_delta(const std::vector<torch::Tensor>& params, const Delta& d,
                   const SavedValues& saved);

// theta's loss with a sparseloco update applied alone (theta -= alpha * scale_p * u on the
// update's coordinates of each parameter p: the outer step with this one peer, clipped by
// scale), one value per batch set; theta is restored bit for bit. A non-finite loss comes back
// as +inf.
std::vector<double> losses_with(Llama& theta, const Update& u, double alpha,
                                const std::vector<double>& scale,
                                const std::vector<const std::vector<Batch>*>& sets);

struct ScoreInput {
  uint16_t uid = 0;
  const Update* update = nullptr;
  std::vector<Batch> own;  // micro-batches of the miner's own pages for this window
};

// Scores one window's updates against theta_w, which is fixed while the window is open: one at a
// time as they land (the validator, during the window) or all at once (experiment attack). Per
// update, per sequence, with theta restored bit for bit after each measurement:
//   own pages   the loss before, after the update, and after each of up to two references
//               (other strong updates: d_random at least half the median positive d_random), so
//               the own-page margin is paired per sequence and page difficulty cancels
//   random      the loss after the update, against the window's base (one pass, shared)
// Updates are clipped per parameter, as the record would take them, to the clip norms: set_clip's,
// else the lower median of the updates measured so far (a scaled-up update cannot buy a larger
// effect, nor hide behind one). The updates must outlive the scorer.
class WindowScorer {
 public:
  // Keeps its own copy of theta: the caller's model may move on (the validator publishes the
  // record and scores what is left of the window afterwards). With `ranks` (rank 0 of a
  // validator's ranks, outliving this), the other ranks take that copy and share every
  // measurement's forward passes (ranks.hpp); threads then stay at one.
  WindowScorer(Llama& theta, const LlamaConfig& config, std::vector<Batch> random, double alpha,
               ScoringRanks* ranks = nullptr);

  void set_clip(std::vector<double> norms) { clip_ = std::move(norms); }
  // Measures one update; then, for references, it serves the earlier updates that have fewer
  // than two, and the two latest strong earlier updates serve it (the work left for the close is
  // then only the last arrivals' and any reference that turns out rejected).
  void add(uint16_t uid, const Update* u, std::vector<Batch> own);
  // Measures many at once on `threads` copies of theta (no incremental references: observe()
  // computes them).
  void add_all(std::vector<ScoreInput> in, int threads);
  // Fills the observations of status "ok" whose uid was added: d_own, d_random, d_cross and the
  // per-sequence evidence. Updates in `not_references` (rejected or tied copies) serve as no one's
  // reference; missing references are computed here.
  void observe(std::vector<Observation>& obs, const std::set<uint16_t>& not_references,
               int threads = 1);

  double base_random() const { return base_random_; }
  const std::vector<double>& base_sequences() const { return base_; }
  const std::vector<Batch>& random() const { return random_; }
  // An update measured on the random pages only, to serve as a reference (observe() reads its
  // effect on the measured updates' own pages): an update measured alone has a margin to read
  // only against another update. It is not measured (has() is false) until add() measures it.
  void add_reference(uint16_t uid, const Update* u);

  bool has(uint16_t uid) const { return index_.count(uid) > 0; }
  size_t size() const { return index_.size(); }  // updates measured
  bool is_reference(uint16_t uid) const { return reference_only_.count(uid) > 0; }
  // The strong updates (references included) outside `excluded`: with one, that update has no
  // reference to read its margin against.
  size_t strong_count(const std::set<uint16_t>& excluded) const { return strong(excluded).size(); }
  // Per-parameter lower-median norms of the updates measured (empty: none): the next window's
  // clip, before its own updates are in.
  std::vector<double> median_norms() const;
  // Micro-batches forwarded so far: the scorer's cost (x batch_rows x seq_len tokens).
  uint64_t forward_batches() const { return forwards_; }

 private:
  struct Entry {
    uint16_t uid;
    const Update* update;
    std::vector<Batch> own;
    std::vector<double> norms, scale, before, after_own, after_random;
    std::map<size_t, std::vector<double>> cross;  // reference entry -> own-page losses after it
  };
  void measure(Llama& m, Entry& e);
  std::vector<double> cross_losses(Llama& m, const Entry& of, const Entry& ref);
  // sequence_losses(m, batches), m holding theta with `applied`'s update (null: none) applied:
  // spread over the ranks when m is the scorer's own theta and there are ranks.
  std::vector<double> losses(Llama& m, const Entry* applied, const std::vector<Batch>& batches);
  double d_random(const Entry& e) const;
  std::vector<size_t> strong(const std::set<uint16_t>& excluded) const;
  bool reference_only(size_t entry) const;
  // A new entry, clipped to set_clip's norms or the median of those measured so far: its index.
  size_t new_entry(uint16_t uid, const Update* u, std::vector<Batch> own);
  std::vector<Llama>& models(int threads);

  Llama theta_;
  LlamaConfig config_;
  std::vector<Batch> random_;
  double alpha_;
  std::vector<double> base_;  // per sequence on random_
  double base_random_ = 0;
  std::vector<double> clip_;
  std::vector<Entry> entries_;                 // in the order added
  std::map<uint16_t, size_t> index_;           // measured: uid -> entry
  std::map<uint16_t, size_t> reference_only_;  // add_reference's: uid -> entry
  std::vector<Llama> copies_;                  // theta and its copies for threads
  ScoringRanks* ranks_ = nullptr;
  uint64_t generation_ = 0;  // the ranks' theta this scorer set
  uint64_t forwards_ = 0;
};

// The guard's test: theta's per-sequence loss on `random` is not finite, or rises over `base` by
// significantly more than `guard` of the base mean (a one-sided paired test at harm_alpha).
bool rises_past_guard(Llama& theta, const std::vector<Batch>& random,
                      const std::vector<double>& base, double guard, double harm_alpha);
// Whether the guard refuses the outer step of `peers` (any order) on theta; theta is restored.
// A follower asks it before naming an update a record left out: the lead's guard may have cut it.
bool guard_refuses(Llama& theta, std::vector<PeerUpdate> peers, double alpha,
                   const std::vector<Batch>& random, const std::vector<double>& base, double guard,
                   double harm_alpha);
// The record's outer step behind the guard. `best_first`: the admitted updates, best d_random
// first. theta = outer_step(theta, the first k of them in ascending uid order, alpha) for k = all,
// then half, a quarter, ... down to one, until the per-sequence loss on `random` (against `base`,
// theta's own there) does not rise by significantly more than `guard` of the base loss (a
// one-sided paired test at harm_alpha); with none passing theta is left alone. When all of them
// fail, the halves are taken in the order of each update's own mean loss on `random` (applied
// alone), best first, not in best_first's. Returns the uids kept (ascending; the order the record
// lists and every node applies them in).
std::vector<uint64_t> guarded_outer_step(Llama& theta, const std::vector<PeerUpdate>& best_first,
                                         double alpha, const std::vector<Batch>& random,
                                         const std::vector<double>& base, double guard,
                                         double harm_alpha);

}  // namespace bistro
