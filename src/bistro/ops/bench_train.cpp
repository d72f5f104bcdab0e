#include "bistro/ops/bench_train.hpp"

#include <torch/torch.h>
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define BISTRO_HAVE_RECORD_PROFILE 1
#endif

#include <chrono>

#include "bistro/model/config.hpp"
#include "bistro/model/ops.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/train/trainer.hpp"

namespace bistro {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}
void sync(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}
}  // namespace

double train_flops_per_token(const std::string& preset_name, int64_t seq_len) {
  const auto c = preset(preset_name);
  return 6.0 * static_cast<double>(c.matmul_parameter_count()) +
         12.0 * static_cast<double>(c.num_hidden_layers * c.hidden_size * seq_len);
}

double measure_sgemm_gflops(const std::string& device_text, bool bf16) {
  const auto device = parse_device(device_text);
  const int64_t n = device.is_cpu() ? 4096 : 8192;
  auto opts =
      torch::TensorOptions().dtype(bf16 ? torch::kBFloat16 : torch::kFloat32).device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  auto c = torch::mm(a, b);  // warm up
  sync(device);
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    sync(device);
    best = std::max(best, 2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return best;
}

TrainBenchResult run_train_bench(const TrainBenchOptions& o) {
  init_runtime(o.threads);
  const auto compute = parse_compute(o.device, o.dtype);
  const auto device = compute.device;
  ops::set_fused(o.fused);
  TrainBenchResult r;
  r.threads = torch::get_num_threads();
  const auto config = preset(o.preset);
  Llama model(config);
  model->init_weights(42);
  model->to(device);
  model->set_bf16(compute.bf16);
  TrainOptions topt;
  topt.schedule.lr = 1e-4;
  Trainer trainer(model, topt);
  // Random tokens: throughput does not depend on the text.
  auto gen_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::manual_seed(0);
  Batch b{torch::randint(config.vocab_size, {o.batch, o.seq_len}, gen_opts),
          torch::randint(config.vocab_size, {o.batch, o.seq_len}, gen_opts)};
  for (int64_t i = 0; i < o.warmup; ++i) trainer.step({b});
  sync(device);
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < o.steps; ++i) trainer.step({b});
  sync(device);
  const double secs = seconds_since(t0);
  if (!o.profile_path.empty()) {
#ifdef BISTRO_HAVE_RECORD_PROFILE
    // A separate profiled step: the profiler's own cost stays out of the timing above.
    torch::autograd::profiler::RecordProfile guard(o.profile_path);
    trainer.step({b});
#else
    fmt::print(stderr, "--profile: this libtorch has no legacy profiler; skipped\n");
#endif
  }
  const double tokens = static_cast<double>(o.steps * o.batch * o.seq_len);
  r.step_ms = secs / o.steps * 1e3;
  r.tokens_per_s = tokens / secs;
  r.flops_per_token = train_flops_per_token(o.preset, o.seq_len);
  r.gflops = r.tokens_per_s * r.flops_per_token / 1e9;
  if (o.measure_peak) r.sgemm_gflops = measure_sgemm_gflops(o.device, compute.bf16);
  if (o.peak_tflops > 0) r.mfu = r.gflops / (o.peak_tflops * 1e3);
  return r;
}

}  // namespace bistro
