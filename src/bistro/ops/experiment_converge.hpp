// `bistro experiment converge`: M simulated miners training one model on their own pages with the
// same token budget, under each way of sharing work:
//   allreduce  - uncompressed: AdamW on the mean of all miners' gradients (the baseline);
//   dct-topk   - DeMo: each miner sends top-k DCT momentum, everyone merges (sign-SGD);
//   slice      - BISTRO: each miner takes a local AdamW step, then every slice position takes the
//                mean of the miners' values.
// Loss is measured on held-out global pages every few steps and written as CSV.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct ConvergeOptions {
  std::string preset = "tiny";
  int miners = 4;
  int64_t steps = 100;
  int64_t batch = 8, seq_len = 128;
  double adamw_lr = 2e-3;
  double demo_lr = 3e-3;
  double demo_beta = 0.999;
  int64_t dct_k = 32;
  int dct_value_bits = 32;  // 8 or 2: values pass through the wire's quantisation
  // > 0: DeMo sends the momentum at k positions per chunk drawn from the window's seed, the same
  // for every miner (no indices on the wire), instead of its own top k.
  int64_t shared_k = 0;
  int64_t k_embed = 0;
  int64_t chunk_cap = 64;
  int64_t slice_compression = 300;
  int64_t eval_every = 10;
  std::string methods = "allreduce,dct-topk,slice";
  std::string csv_path;
  int threads = 0;
};

void run_converge_experiment(const ConvergeOptions& options);

}  // namespace bistro
