// Tie groups: uploads of one update stamped at the same time (a copy whose upload time ties its
// source's), of which at most one enters a record and is paid (docs/protocol.md, "The
// gauntlet", rule 3). Torch-free and pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bistro/validator/verdict.hpp"

namespace bistro {

// `sample` (ascending) with every upload of each tie group (Observation::duplicate, twin) that
// has a member in it, ascending: the group's one update enters the record under the uid with
// the strongest own-page evidence (judge_window), which is only read where all of them are
// measured. A sybil measured beside its unmeasured source entered records under its own uid.
// Ties come only from copies, so honest miners add nothing; a tie group costs the validator one
// measurement per member, within its judge budget.
std::vector<uint16_t> with_tie_groups(std::vector<uint16_t> sample,
                                      const std::vector<Observation>& obs);
// Tied copies form groups: each duplicate names a twin (check_uploads); the twins lead to the
// group's one upload that is nobody's duplicate. At most one update of a group enters (the same
// update never enters twice): of the measured ones that passed, the one with the strongest
// own-page evidence over its recent windows (the uid that trained on its own pages; a copy shows
// evidence only at the test's false-pass rate, or where its pages overlap its source's); with
// none, the trusted unmeasured member with the best rating, on its trust (a sybil's one false
// pass does not outrank its source's record; ties: the first upload). Returns, per member of a
// group, whether it is the one that may enter.
std::map<size_t, bool> tie_group_picks(const std::vector<Observation>& obs,
                                       const std::map<std::string, Rating>& ratings,
                                       const WindowEvidence& ev);

}  // namespace bistro
