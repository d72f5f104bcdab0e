// Who leads after a failover (docs/protocol.md, "Who leads"). The lead is the publisher of the
// last final record; a validator above it in stake order takes the lead back at window u when
//   in sync   its statements counted as attestations of the final records of u-2 and u-3 (it is
//             up, holds theta, and judged two windows in a row), and
//   rested    it was not passed over (the lead of a window whose final record is another's:
//             killed, stalled, or its record refused; or censorship_pass) within its rest: 4
//             windows after the first time, doubling each time after that, at most 64.
// The highest such validator leads. The rest bounds what a returning validator that fails again
// costs: one failover per rest, each rest twice the last. Pure on its inputs; the pass-overs are
// what the node saw applying final records in order (a validator that restarts sees them again
// as it replays the records), so two nodes with the same history agree.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace bistro {

struct LeadCandidate {
  std::string hotkey;  // ss58
  std::string key;     // hex public key, as attestations name it
  bool permit = false;
};

struct PassedOver {
  uint64_t window = 0;  // the last window it was passed over at
  uint32_t times = 0;
  bool by_censorship = false;  // the last pass-over was censorship_pass's (its lead was up)
  // Whether decide_up has read the last pass-over (at most once per pass-over: the final
  // records it reads are old, and reading them every window cost I/O and evicted newer ones).
  bool up_decided = false;
};

// Windows a validator passed over `times` times waits after the last (4, 8, 16, 32, 64, 64...).
uint64_t lead_rest_windows(uint32_t times);
// A lead passed over at v while it was up (its statements are counted attestations of the final
// records of v, which took its turn, and of v+1: it judged and published nothing, or was too slow
// to lead) rests the longest rest at once: a staller must not take the lead back every few
// windows. A killed lead attests nothing while down (nor the dead windows it replays), so it
// keeps the short rests even when it is back within window v. Not for a censorship pass (its
// lead is up by definition, and an honest lead's evidence test can trip it: short rests).
PassedOver up_when_passed(PassedOver p);
// The verdict on the last pass-over, taken once: `up` (as above) gives the longest rest from then
// on (it stays: a validator once passed over while up waits 64 windows each time after), and
// either way the pass-over is decided. A pass-over by censorship_pass is never up.
PassedOver decide_up(PassedOver p, bool up);

// Records that the lead `hotkey` was passed over at window u (once per window).
void note_passed_over(std::map<std::string, PassedOver>& passed, const std::string& hotkey,
                      uint64_t u, bool by_censorship = false);

// The index in `order` (stake order) of the validator that takes the lead back at window u, or
// nullopt when the lead `lead` stays. `attested_2` and `attested_3`: the counted attesters (hex
// keys) of the final records of u-2 and u-3.
std::optional<size_t> returning_lead(const std::vector<LeadCandidate>& order,
                                     const std::string& lead, uint64_t u,
                                     const std::set<std::string>& attested_2,
                                     const std::set<std::string>& attested_3,
                                     const std::map<std::string, PassedOver>& passed);

// The censorship rule: a lead whose final records of windows u-2 and u-3 both left out one
// update's miner, each time named by attesters holding more than 1 - quorum of the active stake
// as admitted and measured as helpful (Finality::censored), is passed over at u, and the next
// validator after it in stake order leads (the first when it is the last). `publisher_2`,
// `publisher_3`: the hotkeys of those final records. Returns that validator's index, or nullopt
// when the rule does not apply. Why u-2 and u-3: every statement on them is out a window before
// (u-1's may still be coming), so every node reads the same ones; and censorship repeats where an
// honest lead's evidence test, wrong on one window, seldom is twice on the same miner.
std::optional<size_t> censorship_pass(const std::vector<LeadCandidate>& order,
                                      const std::string& lead, const std::string& publisher_2,
                                      const std::vector<uint16_t>& censored_2,
                                      const std::string& publisher_3,
                                      const std::vector<uint16_t>& censored_3);

}  // namespace bistro
