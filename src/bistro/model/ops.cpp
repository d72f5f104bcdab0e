#include "bistro/model/ops.hpp"

#include <atomic>

namespace bistro::ops {
namespace {
std::atomic<bool> g_fused{true};

bool fusable(std::initializer_list<const torch::Tensor*> ts) {
  if (!g_fused.load(std::memory_order_relaxed)) return false;
  for (const auto* t : ts) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32) return false;
  }
  return true;
}

torch::Tensor rms_norm_composite(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return w * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

torch::Tensor causal_mask(int64_t T, const torch::TensorOptions& opts) {
  return torch::full({T, T}, -std::numeric_limits<float>::infinity(), opts).triu(1);
}
}  // namespace

void set_fused(bool enabled) {
  g_fused = enabled;
}
bool fused() {
  return g_fused;
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return rms_norm_composite(x, weight, eps);
}

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
  return torch::silu(gate) * up;
}

torch::Tensor rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

torch::Tensor causal_softmax(const torch::Tensor& scores) {
  const int64_t T = scores.size(-1), R = scores.size(-2);
  TORCH_CHECK(R % T == 0, "causal_softmax: rows must be a multiple of the key length");
  auto sizes = scores.sizes().vec();
  std::vector<int64_t> grouped(sizes.begin(), sizes.end() - 2);
  grouped.insert(grouped.end(), {R / T, T, T});
  auto masked = scores.view(grouped) + causal_mask(T, scores.options());
  return torch::softmax(masked, -1).view(sizes);
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().ignore_index(-100));
}

std::pair<torch::Tensor, torch::Tensor> rotary_tables(int64_t seq_len, int64_t head_dim,
                                                      double theta, c10::Device device) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  auto inv_freq = 1.0 / torch::pow(theta, torch::arange(0, head_dim, 2, f32) / head_dim);
  auto t = torch::arange(seq_len, f32);
  auto freqs = torch::outer(t, inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

}  // namespace bistro::ops
