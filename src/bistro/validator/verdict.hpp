// The judge's two tests on one measured update (docs/protocol.md, "The gauntlet", rule 6): harm
// on random pages at harm_alpha, and own-page work over the miner's recent windows at
// evidence_alpha (trust_alpha once trusted). Torch-free and pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bistro/validator/observation.hpp"
#include "bistro/validator/params.hpp"
#include "bistro/validator/rating.hpp"

namespace bistro {

// A failed measurement whose combined evidence z (calibrated) is above this is inconclusive,
// not evidence against work: the miner is measured again at once instead of backing off. A miner
// with no own-page work reads z > 1 in about 18% of its measurements (Student's t, 7 dof), so
// cheats cost the budget about a fifth more measurements; an honest miner whose margin reads
// 1.5-2.5 calibrated standard errors a window (weak pages, few rows) accumulates evidence
// instead of waiting 2, 4, 8 windows between readings (one was never paid in 20 windows).
inline constexpr double kRetryZ = 1.0;
struct Judgement {
  uint16_t uid = 0;
  double score = 0;       // this window's score, >= 0
  bool passed = false;    // measured, and passed both tests
  bool admitted = false;  // enters the record
  bool unpaid = false;    // admitted without evidence, for its help on random pages alone
  std::string reason;     // why not, when it does not; why unpaid, when it enters unpaid
};
// The two tests on a measured observation: "" when it passes, else why not. The evidence test
// reads `past`, the miner's rating before this window (nullptr: none), for its recent windows'
// evidence (combined_evidence) and runs at trust_alpha for a trusted miner, else at
// evidence_alpha.
std::string test_update(const Observation& o, const GauntletParams& p,
                        const Rating* past = nullptr);
// The Stouffer z of `past`'s recent evidence and this window's (o.own_margin.t(), capped), and
// the rating's two sums with this window folded in.
struct Combined {
  double z = 0, sum = 0, weight = 0;
};
Combined combined_evidence(const Observation& o, const GauntletParams& p, const Rating* past);
// Whether an observation's losses are all finite (a NaN or infinite d_cross: a reference that
// made the loss non-finite), the first thing either test asks.
bool losses_finite(const Observation& o);
// Whether an observation's own-page evidence joins the miner's recent windows' (measured on two
// sequences or more, with a finite own-page loss).
bool has_evidence(const Observation& o);
// test_update, with the trust and the combined evidence already read.
std::string test_with(const Observation& o, const GauntletParams& p, bool trusted,
                      const Combined& c);
// A failed measurement that is not evidence against work: the miner's evidence (z, calibrated)
// short of the bar but above kRetryZ, and no harm.
bool inconclusive(const Observation& o, const Combined& c, const GauntletParams& p);
// A window's evidence, read once against the ratings before the window: each measured update's
// tests ("" passes) and each observation's combined evidence.
struct WindowEvidence {
  std::vector<std::string> tests;
  std::vector<Combined> combined;
  std::map<uint16_t, size_t> index;  // uid -> observation
};
WindowEvidence read_evidence(const std::vector<Observation>& obs,
                             const std::map<std::string, Rating>& ratings, const GauntletParams& p);

}  // namespace bistro
