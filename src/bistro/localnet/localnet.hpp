// `bistro localnet`: a whole subnet on one machine with no network. Creates a local chain, file
// (or S3) buckets and wallets, registers K miners and one staked validator, runs each as its own
// process (this same binary) on the embedded corpus and the tiny model, shows a live view per
// window (the master's held-out loss; each miner's loss, score, weight, incentive and emission
// from Yuma and, under protocol v2, whether its parameter hash equals the master's) and writes a
// report directory: metrics.jsonl, metrics.csv, summary.json and report.html with plots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bistro {

struct LocalnetOptions {
  int miners = 3;
  uint64_t windows = 24;
  std::string dir;        // default $BISTRO_HOME/localnet/run-<time>
  double block_time = 0;  // seconds per block; 0: calibrated so H inner steps fill ~95% of a window
  std::string hparams_file;
  int lazy = 0;                     // the last `lazy` honest slots never train
  int garbage = 0;                  // ... and `garbage` upload random bytes
  std::vector<std::string> cheats;  // "KIND:N": N more miners of a cheating kind (cheats.hpp)
  bool kill_validator = false;
  bool kill_lead = false;  // with --validators >= 2: SIGKILL the lead mid-run, back 3 windows later
  bool kill_follower = false;  // the same for validator-1, a follower
  bool kill_miner = false;     // SIGKILL miner-0 mid-run, restart it two windows later (catch-up)
  bool baseline = false;       // then train one AdamW model on the union of the miners' pages
  int threads = 1;
  int miner_ranks = 1;      // data-parallel ranks per honest miner (--ranks; gloo on this host)
  int validator_ranks = 1;  // ... and per honest validator
  // Validators (v2): the first leads, the others follow its records and judge on their own.
  // stakes: each one's stake in TAO (default 1000, 600, 300, 150, ...: the first leads).
  int validators = 1;
  std::vector<double> stakes;
  // More validators of dishonest kinds (cheats.hpp: self-weight, weight-copier) or slow ones
  // (honest, a window behind), after the honest ones; their stakes continue `stakes`.
  std::vector<std::string> validator_cheats;
  // The lead (the highest-staked validator) of a dishonest kind (cheats.hpp: admit-all, censor,
  // stall).
  std::string dishonest_lead;
  bool commit_reveal = false;  // the subnet's commit_reveal_weights_enabled (reveal period 1)
  std::string device = "cpu", dtype = "fp32";  // every neuron's --device and --dtype
  std::string scoring = "loss-delta";
  std::string bucket_url;  // s3://PREFIX: S3 buckets PREFIX-<name> (must exist) instead of files
  // 0: the run starts at the first window after start-up (2 or 3). Else the new chain is moved
  // on so that it starts at this window: the miners' pages are a function of the window and the
  // uid (docs/protocol.md, "Pages"), so runs that start at the same window share their draw.
  uint64_t first_window = 0;
};

int run_localnet(const LocalnetOptions& options);

}  // namespace bistro
