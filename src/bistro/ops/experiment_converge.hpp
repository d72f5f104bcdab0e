// `bistro experiment converge`: M simulated miners training one model on their own pages with the
// same token budget (every method sees the same batches: miner i's page at inner step s), under
// each way of sharing work:
//   ddp        - uncompressed data parallel: AdamW on the mean of all miners' gradients, one
//                optimizer step per inner step (the same global batch and step count);
//   diloco     - H local AdamW steps per window, dense pseudo-gradients averaged, outer SGD with
//                Nesterov momentum (DiLoCo: lr 0.7, momentum 0.9);
//   sparseloco - H local AdamW steps per window, error feedback, chunked top-k with 2-bit values,
//                the protocol's outer step (median-norm clip, mean over senders, alpha);
//                --outer-delay 1 applies window w's aggregate one window later, as the neurons do;
//   dct-topk   - DeMo: each miner sends top-k DCT momentum of every gradient, everyone merges;
//   slice      - BISTRO: each miner takes a local AdamW step, then every slice position takes the
//                mean of the miners' values.
// Loss is measured on held-out global pages every few inner steps and written as CSV; a summary
// (final loss, bytes per miner per window, effective compression) goes to --summary.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct ConvergeOptions {
  std::string preset = "tiny";
  int miners = 4;
  int64_t steps = 100;       // inner steps per miner (DDP: optimizer steps)
  int64_t inner_steps = 10;  // H: inner steps per window (diloco, sparseloco)
  int64_t batch = 8, seq_len = 128;
  double adamw_lr = 2e-3;
  int64_t warmup = 10;
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
  int64_t loco_k = 64;      // sparseloco: entries per 64 x 64 chunk
  double loco_beta = 0.95;  // sparseloco: error-feedback decay
  double outer_lr = 1.0;    // sparseloco: alpha
  int loco_value_bits = 2;  // sparseloco: 2 or 32
  int outer_delay = 0;      // sparseloco: windows between an update and its outer step
  double diloco_lr = 0.7, diloco_momentum = 0.9;
  int64_t eval_every = 10;
  std::string methods = "ddp,diloco,sparseloco";
  std::string csv_path;
  std::string summary_path;  // appends one JSON line per method
  int threads = 0;
  std::string device = "cpu", dtype = "fp32";
};

void run_converge_experiment(const ConvergeOptions& options);

}  // namespace bistro
