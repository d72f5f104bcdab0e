// The validator's scoring budget: which miners' updates a window measures when it cannot measure
// them all (docs/protocol.md, "The gauntlet", rule 11). Torch-free and pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bistro/validator/rating.hpp"

namespace bistro {

// The window from which a miner is due to be measured again (smaller: sooner), from its rating
// (nullptr: never rated):
//   never seen                     0, after the miners that failed once
//   failed once                    0, first: an honest miner's false failure costs it its pay
//                                  until it is measured again, so it is measured again at once
//                                  (a rejected upload counts as two failures: the checks see
//                                  every upload without the budget)
//   trusted (no failure)           seen: the least recently measured first
//   failed f >= 2 times in a row   seen + min(2^(f-1), 16): a cheat costs the budget less and
//                                  less, yet one that turned honest is measured again
// docs/protocol.md, "The gauntlet", rule 11.
struct MeasurementDue {
  uint64_t window = 0;
  int rank = 0;  // among equal windows: failed once (0), never seen (1), the rest (2)
};
MeasurementDue measurement_due(const Rating* r);
// Every miner, the most due first: by measurement_due, ties by a hash of (window, uid) so that no
// uid is always first among equals. A pure function of the ratings and the window.
std::vector<uint16_t> measurement_order(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                        const std::map<std::string, Rating>& ratings,
                                        uint64_t window);
// The miners whose updates this window's budget measures, in ascending uid order: all when budget
// is 0 or covers them, else the first `budget` of measurement_order. With every miner honest,
// each is measured at least once every ceil(miners / budget) windows.
std::vector<uint16_t> scoring_sample(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                     const std::map<std::string, Rating>& ratings, size_t budget,
                                     uint64_t window);

}  // namespace bistro
