#include "bistro/runtime/torch_compat.hpp"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "bistro/core/error.hpp"

namespace bistro::compat {

std::string torch_version() {
  const bool cuda = torch::cuda::is_available();
  return fmt::format("{}.{}.{} ({})", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH,
                     cuda ? "CUDA available" : "CPU");
}

namespace {
bool enabled(c10::DeviceType d) {
#if BISTRO_TORCH2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}
c10::ScalarType dtype_of(c10::DeviceType d) {
#if BISTRO_TORCH2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype()
                                   : at::autocast::get_autocast_gpu_dtype();
#endif
}
void set(c10::DeviceType d, bool on, c10::ScalarType dtype) {
#if BISTRO_TORCH2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(d, on);
  at::autocast::set_autocast_dtype(d, dtype);
#else
  if (d == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(on);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(on);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
}
}  // namespace

AutocastGuard::AutocastGuard(c10::DeviceType device, c10::ScalarType dtype) : device_(device) {
  if (dtype == c10::kFloat) return;
  check(device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA,
        "autocast: no autocast for device type {}", c10::DeviceTypeName(device));
  active_ = true;
  was_enabled_ = enabled(device);
  was_dtype_ = dtype_of(device);
  set(device, true, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The casts of the weights are cached for the outermost region only, as Python's autocast does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set(device_, was_enabled_, was_dtype_);
}

bool has_fused_attention() {
#if BISTRO_TORCH2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1)
  return true;
#else
  return false;
#endif
}

torch::Tensor fused_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v) {
#if BISTRO_TORCH2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1)
  // One dtype for the three (under autocast, rotary's fp32 tables may have promoted q and k).
  const auto dt = v.scalar_type();
  auto qq = q.to(dt), kk = k.to(dt), vv = v;
  const int64_t rep = q.size(1) / k.size(1);
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5
  return at::scaled_dot_product_attention(qq, kk, vv, {}, 0.0, /*is_causal=*/true, /*scale=*/1.0,
                                          /*enable_gqa=*/rep > 1);
#else
  if (rep > 1) kk = kk.repeat_interleave(rep, 1), vv = vv.repeat_interleave(rep, 1);
  return at::scaled_dot_product_attention(qq, kk, vv, {}, 0.0, /*is_causal=*/true, /*scale=*/1.0);
#endif
#else
  (void)q, (void)k, (void)v;
  fail("fused attention needs libtorch 2.1 or later (this is {})", torch_version());
#endif
}

}  // namespace bistro::compat
