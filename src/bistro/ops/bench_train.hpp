// `bistro bench train`: training throughput of one preset, in tokens/s and achieved matmul
// GFLOP/s, beside the machine's sgemm peak measured in the same run.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct TrainBenchOptions {
  std::string preset = "small";
  int64_t batch = 8;
  int64_t seq_len = 256;
  int64_t steps = 10;  // timed
  int64_t warmup = 2;  // untimed
  int threads = 0;     // 0: all cores
  std::string device = "cpu";
  std::string dtype = "fp32";  // or bf16 (autocast)
  double peak_tflops = 0;      // the chip's spec peak in dtype (> 0: report MFU against it)
  bool fused = true;
  bool measure_peak = true;
  std::string profile_path;  // if set, profile one extra step to this Chrome trace file
};

struct TrainBenchResult {
  double tokens_per_s = 0;
  double step_ms = 0;
  double flops_per_token = 0;  // 6 x matmul params + 12 x layers x hidden x seq
  double gflops = 0;
  double sgemm_gflops = 0;  // best of several 4096^3 matmuls in the benchmark's dtype
  double mfu = 0;           // gflops / (peak_tflops * 1000), when a peak was given
  int threads = 0;
};

// Matmul FLOPs per trained token (forward + backward).
double train_flops_per_token(const std::string& preset, int64_t seq_len);

TrainBenchResult run_train_bench(const TrainBenchOptions& options);
// The best of three n^3 products (n = 4096 on a CPU, 8192 on a GPU) in fp32 or bf16, GFLOP/s.
double measure_sgemm_gflops(const std::string& device, bool bf16 = false);

}  // namespace bistro
