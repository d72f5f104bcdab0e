// `bistro experiment attack`: a simulated protocol v2 subnet under attack, in one process. uid 0
// is the validator; the other uids are miners, honest or one of the cheating kinds of cheats.hpp
// (by default 30% of them, every kind in turn). Each window every training miner runs the real
// inner loop and error-feedback encoder on its pages; every update goes through the real wire
// format (signed, then decoded and checked as a peer's file); the validator runs the real
// gauntlet (gauntlet.hpp: deadlines, copies, scoring, ratings, the record) and outer step; the
// weights go through the real Yuma Consensus epoch. The same run without the cheaters (their uids
// absent) is the clean reference. Printed and written (--summary, one JSON object): per kind the
// mean incentive per uid, its share and its ratio to the honest mean; copiers against the miners
// they copy; honest pay spread; the master's held-out loss against the clean run; the validator's
// time per window.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct AttackOptions {
  int uids = 256;             // including the validator's
  double cheat_share = 0.3;   // of the miners
  std::string kinds = "all";  // comma list of cheating kinds, or "all"
  uint64_t windows = 20;
  int64_t inner_steps = 2;  // H (the neurons' default is 12; the simulation trains 200+ miners)
  int64_t batch_rows = 4;
  int threads = 2;          // miners trained (and updates scored) at once
  size_t score_budget = 0;  // updates the validator measures a window (0: all)
  uint64_t seed = 7;
  bool clean = true;    // also run without the cheaters
  std::string summary;  // append the summary JSON here
  bool check = false;   // exit non-zero unless every goal holds (the ctest)
};

int run_attack_experiment(const AttackOptions& o);

}  // namespace bistro
