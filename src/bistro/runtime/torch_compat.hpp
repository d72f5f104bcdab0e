// What differs between the libtorches bistro builds against: Debian's 1.13 (CPU) and an official
// 2.x (PyTorch's wheel, CPU and CUDA). Every line that only one of them compiles lives here or in
// torch_compat.cpp, behind BISTRO_TORCH2.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define BISTRO_TORCH2 (TORCH_VERSION_MAJOR >= 2)

// c10::Allocator::allocate is const in 1.x and not in 2.x.
#if BISTRO_TORCH2
#define BISTRO_ALLOCATE_CONST
#else
#define BISTRO_ALLOCATE_CONST const
#endif

namespace bistro::compat {

// "1.13.0 (CPU)", "2.11.0 (CUDA 13.0)": the libtorch this binary was built against.
std::string torch_version();

// Autocast to `dtype` on `device` for the guard's lifetime (Python's torch.autocast): matrix
// products run in bf16, reductions and the parameters stay fp32. A no-op for fp32. Nests.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kFloat;
};

// Whether this libtorch has a fused causal scaled-dot-product attention (2.1 and later).
bool has_fused_attention();
// softmax(q k^T + causal mask) v with q already scaled: q [B, heads, T, D], k and v
// [B, kv_heads, T, D] (query head h reads KV head h / (heads / kv_heads)). Only where
// has_fused_attention().
torch::Tensor fused_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v);

}  // namespace bistro::compat
