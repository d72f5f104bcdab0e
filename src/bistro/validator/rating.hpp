// A miner's standing with this validator: its rating (an EMA of its window scores), trust, recent
// evidence, readings and held pay, and the weights the ratings give (docs/protocol.md, "The
// gauntlet", rules 7-10). Torch-free and pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bistro/validator/observation.hpp"
#include "bistro/validator/params.hpp"

namespace bistro {

struct Rating {
  double rating = 0;     // EMA of the window scores
  uint64_t windows = 0;  // windows seen
  // Its last measured update passed both tests (and nothing it sent since was rejected): its
  // updates may enter a record before they are measured.
  bool trusted = false;
  // The window + 1 in which its update was last measured or rejected (0: never): what the
  // scoring budget's order reads (measurement_order).
  uint64_t seen = 0;
  // Its measured updates failed or its uploads were rejected this many times in a row (0 after a
  // pass): a miner that keeps failing is measured less and less often.
  uint32_t failures = 0;
  // Its recent measured windows' own-page evidence (GauntletParams::evidence_decay): the decayed
  // sum of the capped t statistics, and of their weights squared.
  double evidence_sum = 0, evidence_weight = 0;
  // Its paid measured window scores (passes whose update was not left out as a tied copy): the
  // sums of the scores and of their weights, each reading weighted by rating_ema per later
  // reading. What an unmeasured window pays (unmeasured_pay).
  double reading_sum = 0, reading_weight = 0;
  // A new miner's pay while it waits for its first conclusive measurement (docs/protocol.md,
  // rule 8): the windows its valid update went unmeasured, or was measured inconclusive, before
  // then. Meanwhile its rating moves with the prior's expected score (1, the median passing
  // update's) and its weight is held back (paid to GauntletParams::burn_uid): under a scoring
  // budget the miners measured first would otherwise share every window's pay among a few. A
  // pass that is paid keeps the rating and owes the waited windows as back pay; a failure that
  // is not inconclusive, or a rejected upload, forfeits both.
  uint32_t waited = 0;
  // Windows of back pay still owed, and this window's share of it (0-1): while the miner is
  // trusted, each window pays its rating (1 + paying_back) times over until none is owed.
  double back_pay = 0, paying_back = 0;
};
// Whether a miner's pay is held back: it was never measured nor rejected, or its measurements so
// far were inconclusive (Rating::waited).
bool awaits_first_measurement(const Rating& r);
// What an unmeasured window pays a miner: nothing untrusted or with no paid reading; else
// (reading_sum + pay_prior) / (reading_weight + pay_prior), the shrunk mean of its readings.
double unmeasured_pay(const Rating& r, const GauntletParams& p);
// Whether the hotkey's miner is trusted (unknown hotkeys are not).
bool is_trusted(const std::map<std::string, Rating>& ratings, const std::string& hotkey);
// Weights from ratings, proportional (uid -> weight, summing to 1; all zero when no rating is
// positive): a miner paying back (Rating::paying_back) weighs rating x (1 + paying_back); a miner
// awaiting its first measurement weighs nothing, and its rating goes to p.burn_uid (with -1,
// nowhere).
std::map<uint16_t, double> rating_weights(const std::vector<Observation>& obs,
                                          const std::map<std::string, Rating>& ratings,
                                          const GauntletParams& p);

}  // namespace bistro
