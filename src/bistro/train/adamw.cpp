#include "bistro/train/adamw.hpp"

#include <cmath>

namespace bistro {
namespace {
// One pass over memory for the whole update, with the same float operations in the same order as
// torch's single-tensor AdamW. The buffers are distinct, and this file is compiled with
// -fno-math-errno, so the loop vectorises (sqrt included).
struct FusedStep {
  float decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size;
  void run(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
           int64_t n) const {
    for (int64_t j = 0; j < n; ++j) {
      const float gj = g[j];
      const float mj = m[j] * b1 + gj * one_minus_b1;
      const float vj = v[j] * b2 + gj * gj * one_minus_b2;
      m[j] = mj;
      v[j] = vj;
      p[j] = p[j] * decay - step_size * (mj / (std::sqrt(vj) / bc2_sqrt + eps));
    }
  }
};
}  // namespace

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions options)
    : params_(std::move(params)), opt_(options) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_) {
    // Dropping the gradient (instead of zeroing it) lets backward hand over its fresh buffer
    // without a memset and an accumulation pass.
    p.mutable_grad() = torch::Tensor();
  }
}

void AdamW::step(double lr) {
  RECORD_FUNCTION("bistro::AdamW::step", std::vector<c10::IValue>());  // shows in profiles
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps;
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(steps_)));
  const double step_size = lr / bc1;
  const double decay = 1.0 - lr * opt_.weight_decay;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto& g = p.grad();
    if (!g.defined()) continue;
    auto& m = m_[i];
    auto& v = v_[i];
    const bool fused = p.device().is_cpu() && p.scalar_type() == torch::kFloat32 &&
                       p.is_contiguous() && g.is_contiguous() && g.scalar_type() == torch::kFloat32;
    if (fused) {
      const FusedStep k{static_cast<float>(decay),    static_cast<float>(b1),
                        static_cast<float>(1.0 - b1), static_cast<float>(b2),
                        static_cast<float>(1.0 - b2), static_cast<float>(bc2_sqrt),
                        static_cast<float>(eps),      static_cast<float>(step_size)};
      float* P = p.data_ptr<float>();
      const float* G = g.data_ptr<float>();
      float* M = m.data_ptr<float>();
      float* V = v.data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
        k.run(P + begin, G + begin, M + begin, V + begin, end - begin);
      });
    } else {
      p.mul_(decay);
      m.mul_(b1).add_(g, 1.0 - b1);
      v.mul_(b2).addcmul_(g, g, 1.0 - b2);
      auto denom = (v.sqrt() / bc2_sqrt).add_(eps);
      p.addcdiv_(m, denom, -step_size);
    }
  }
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm(2).item<double>();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(coef);
    }
  }
  return total;
}

}  // namespace bistro
