// The judgement of one window: verdicts, pay, ratings and the record's updates from the window's
// observations and the ratings before it. Torch-free and pure: the validator and `bistro
// experiment attack` call the same function.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bistro/compress/update.hpp"
#include "bistro/validator/observation.hpp"
#include "bistro/validator/params.hpp"
#include "bistro/validator/rating.hpp"
#include "bistro/validator/verdict.hpp"

namespace bistro {

// Scores window `window`, updates the ratings (keyed by hotkey: a replaced uid starts from zero)
// and picks the record's updates. Pure: the same observations and ratings give the same result.
//   measured    the tests; pay only with evidence; the rating moves; trusted = passed; the
//               window's evidence joins the rating's
//   unmeasured  admitted when trusted; the rating moves with unmeasured_pay (the validator's
//               budget is not the miner's fault); a miner never measured waits for its first
//               conclusive measurement (Rating::waited): its rating moves with the prior's
//               score, 1, and is held back (rating_weights) until a paid pass, which owes it
//               back pay, or a failure that is not inconclusive, which forfeits it
//   rejected    pay 0, the rating moves, trust and past evidence are lost; missing: pay 0,
//               trust stands
//   tie groups  at most one update of a group enters: of those measured that passed, the
//               strongest own-page evidence; with none, the trusted unmeasured member with
//               the best rating (ties: the first upload) on its trust. A group is paid once:
//               its other members' window scores are 0
// A measured or rejected update sets the rating's `seen` to window + 1 and its failures; a
// failure whose combined evidence is inconclusive (z above kRetryZ, and no harm) counts as the
// first, so the miner is measured again at once (measurement_due).
//   helpful     a measured update that failed the evidence test alone but lowers the random loss
//               significantly (evidence_alpha) and by at least half the median drop of the
//               passers and the helpful: admitted unpaid, after the paid and trusted ones, at
//               most as many as they are (at least one); no tie group's member
// Does not lean on honest miners being the majority: the pay's reference is the median margin of
// the updates that passed the evidence test, however few. The record takes the admitted updates,
// the measured passers best d_random first, then the unmeasured ones best rating first, then the
// helpful ones best d_random first, at most record_peers.
std::vector<Judgement> judge_window(const std::vector<Observation>& obs,
                                    std::map<std::string, Rating>& ratings, const GauntletParams& p,
                                    uint64_t window);

// The admitted updates (judge_window's verdicts over `obs`), the measured passers best d_random
// first (ties: lower uid), then the unmeasured ones, then the helpful unpaid ones best first, with
// their decoded forms from `updates` (by uid): what the record's guarded outer step takes.
std::vector<PeerUpdate> admitted_best_first(const std::vector<Judgement>& verdicts,
                                            const std::vector<Observation>& obs,
                                            const std::map<uint16_t, Update>& updates);

}  // namespace bistro
