// What each update does to the loss, alone: the validator's measurements for the gauntlet
// (gauntlet.hpp), shared with `bistro experiment attack`.
#pragma once

#include "bistro/compress/update.hpp"
#include "bistro/model/llama.hpp"
#include "bistro/neurons/gauntlet.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {

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
// Measures a window's updates into the observations of the same uid (status "ok" ones):
//   d_own    loss drop on its own pages;   d_random  on the random pages (the same for all)
//   d_cross  the mean drop on its own pages made by the next two updates in uid order (a ring)
//            among the references (d_random at least half the median positive d_random): the
//            paired reference the own-page margin is read against (page difficulty cancels);
//            NAN when there is no other reference
// `threads` > 1 scores on that many copies of theta at once. Returns theta's loss on `random`.
double score_window(Llama& theta, const LlamaConfig& config, const std::vector<ScoreInput>& in,
                    const std::vector<Batch>& random, double alpha, int threads,
                    std::vector<Observation>& obs);

// The record's outer step behind the guard. `best_first`: the admitted updates, best d_random
// first. theta = outer_step(theta, the first k of them in ascending uid order, alpha) for k = all,
// then half, a quarter, ... down to one, until the loss on `random` is at most
// base_random * (1 + guard); with none passing theta is left alone. Returns the uids kept
// (ascending; the order the record lists and every node applies them in).
std::vector<uint64_t> guarded_outer_step(Llama& theta, const std::vector<PeerUpdate>& best_first,
                                         double alpha, const std::vector<Batch>& random,
                                         double base_random, double guard);

}  // namespace bistro
