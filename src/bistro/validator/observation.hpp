// One expected miner's window as the judge takes it (its status, losses and evidence), and the
// evidence test's null pooled over windows. Torch-free.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bistro/validator/evidence.hpp"

namespace bistro {

// One expected miner's window, as the judge takes it.
struct Observation {
  uint16_t uid = 0;
  std::string hotkey;
  std::string status = "missing";  // "ok" when it passed the checks and was scored
  double d_own = 0, d_random = 0;  // loss drops (positive = better), valid when status is ok
  // The drop on its own pages made by another miner's update (scoring.hpp); NAN: none, and the
  // margin is read against d_random instead.
  double d_cross = NAN;
  // A tied copy (check_uploads: equal upload times, this is the higher uid) of `twin`'s update:
  // measured on its own pages like any other. Of a tie group at most one update enters the
  // record, the one with the strongest own-page evidence (the one that trained on its pages).
  bool duplicate = false;
  uint16_t twin = 0;
  // Status "ok" but not measured this window (outside the scoring budget, or left for after the
  // record): it enters the record only if its miner is trusted, and its rating moves with its
  // last measured score.
  bool measured = true;
  // Per-sequence evidence: on random pages, the loss before minus after; the own-page margin
  // (own_margin_evidence: what the update does to its own pages beyond what its references,
  // scaled to its strength, do). n 0: not measured per sequence, and the judge reads the means'
  // signs alone.
  Evidence random{}, own_margin{};
  // What the references do on the random pages (NAN: no reference): it sets the strength ratio,
  // so an update that is merely stronger or weaker in general (trained on other pages, or for
  // fewer steps) shows no margin on its own pages from that alone.
  double d_random_ref = NAN;
  // The evidence test's null on these very pages: the first reference's own-page margin read
  // against the second's (own_margin_evidence, the first as the update), neither trained on
  // them (n 0: fewer than two references). Not judged: over a window's updates its t shows how
  // often the test passes an update with no own-page work on real pages, where sequences of one
  // page are not independent (docs/benchmarks.md).
  Evidence placebo{};
  // own_margin's mean, from the means: d_own - d_random without a reference, else
  // d_own - k d_cross (k = strength_ratio), else the difference in differences.
  double margin() const;
};
// The evidence test's null, pooled over windows: the validator's placebo reads
// (Observation::placebo: one reference against the other on a miner's pages, neither trained on
// them) as multiples of Student's t's spread, x = t / student_t_sd(dof), capped at +-10.
// Sequences of one page are not independent and an update's strength differs from page to page,
// so on real pages these spread 1.6-2.4x as wide as the test assumes. factor() is the root mean
// square of x (at least 1) once `min_reads` are pooled, else 1; each window decays the pool by
// `decay`, so it follows the model as it trains. Persisted in the validator's state.json.
inline constexpr double kNullDecay = 0.9;  // per window
struct NullSpread {
  double sum_sq = 0, reads = 0;
  void add(const std::vector<Observation>& obs, double decay);
  double factor(double min_reads) const;
};

}  // namespace bistro
