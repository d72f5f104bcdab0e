// What every neuron process holds, set up in one place and in one order: its chain, its hotkey,
// the metrics endpoint, its uid (registered with --register), the bucket it commits on the chain
// ("" + URL for a miner, "master:" + URL for a validator) and its state directory. The miners and
// validators of both protocols derive from it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "bistro/core/metrics.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/storage/bucket.hpp"

namespace bistro {

class Node {
 protected:
  // role: "miner" or "validator". bucket_required: the error when --bucket is missing ("": the
  // bucket is optional, and bucket_ stays null without one).
  Node(const NeuronArgs& a, const std::string& role, const std::string& commit_prefix,
       const std::string& bucket_required);
  void log(int level, const std::string& m) const { neuron_log(level, a_.log_level, who_, m); }

  const NeuronArgs& a_;
  Compute compute_;  // --device and --dtype
  std::unique_ptr<chain::Chain> chain_;
  std::unique_ptr<Signer> hot_;
  std::string hotkey_, who_;
  Metrics metrics_;
  std::unique_ptr<MetricsServer> metrics_server_;
  uint16_t uid_ = 0;
  std::unique_ptr<Bucket> bucket_;
  std::filesystem::path state_dir_;
};

}  // namespace bistro
