// `bistro bench score`: the validator's measurement of one update (WindowScorer::add: its own pages
// before and after, the random pages after, the cross references), the way the validator measures
// an untrusted miner's update as it lands, on 1 or N ranks (validator/ranks.hpp). Random tokens and
// random top-k updates of the preset's shapes; the first update is not timed.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct ScoreBenchOptions {
  std::string preset = "tiny";
  int updates = 6;  // timed, after one untimed
  int threads = 1;
  int ranks = 1;  // --ranks: local ranks spawned (or torchrun's environment)
  std::string device = "cpu", dtype = "fp32";
};

// Rank 0 prints one line and returns 0; the other ranks serve it and return 0.
int run_score_bench(const ScoreBenchOptions& o);

}  // namespace bistro
