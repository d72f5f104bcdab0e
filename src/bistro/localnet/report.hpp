// The localnet's report directory: metrics.jsonl (the validator's lines with the chain's view),
// metrics.csv (one row per miner and window), summary.json (what the tests and benchmarks read)
// and report.html (plots: the master's loss, `bistro eval` of each published checkpoint, scores,
// ratings, weights and incentive).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "bistro/localnet/localnet.hpp"
#include "bistro/localnet/supervisor.hpp"
#include "bistro/protocol/neuron.hpp"

namespace bistro::localnet {

struct RunRecord {
  std::filesystem::path dir;
  const LocalnetOptions& options;
  const NeuronHparams& h;
  double block_time = 0;
  uint64_t start = 0;  // the first window
  std::vector<Proc> procs;
  std::vector<nlohmann::json> report;  // one validator line per window, with "chain" added
  bool validator_killed = false, miner_killed = false;
  uint64_t theta_agree = 0, theta_compared = 0;
};

// Writes dir/report and prints the run's summary; returns summary.json's object.
nlohmann::json write_report(const RunRecord& run);

}  // namespace bistro::localnet
