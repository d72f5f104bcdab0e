// `bistro localnet`: a whole subnet on one machine with no network. Creates a local chain, file
// buckets and wallets, registers K miners and one staked validator, runs each as its own process
// (this same binary) on the embedded corpus and the tiny model, shows a live view per window
// (master loss; each miner's loss, score, weight, incentive and emission from Yuma) and writes a
// report directory: metrics.jsonl, metrics.csv, summary.json and report.html with plots.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct LocalnetOptions {
  int miners = 3;
  uint64_t windows = 6;
  std::string dir;  // default $BISTRO_HOME/localnet/run-<time>
  double block_time = 1.0;
  std::string hparams_file;
  int lazy = 0;     // the last `lazy` honest slots never train
  int garbage = 0;  // ... and `garbage` upload random bytes
  bool kill_validator = false;
  int threads = 1;
  std::string scoring = "loss-delta";
  std::string bucket_url;  // s3://PREFIX: S3 buckets PREFIX-<name> (must exist) instead of files
};

int run_localnet(const LocalnetOptions& options);

}  // namespace bistro
