// `bistro bench chain`: one Yuma epoch on a full subnet (256 uids, 64 validators, dense weights),
// and set_weights / set_commitment throughput on a LocalChain file with several processes writing
// at once.
#pragma once

#include <cstdint>
#include <filesystem>

namespace bistro {

struct ChainBenchResult {
  double epoch_ms_yuma3 = 0, epoch_ms_classic = 0, epoch_ms_liquid = 0;  // median of the runs
  double set_weights_per_s = 0, commitments_per_s = 0;                   // all processes together
  int processes = 0;
};

ChainBenchResult run_chain_bench(const std::filesystem::path& dir, int uids, int validators,
                                 int processes, double seconds);

}  // namespace bistro
