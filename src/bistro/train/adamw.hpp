// AdamW with decoupled weight decay, the update torch.optim.AdamW makes:
//   p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// On contiguous fp32 CPU tensors all of it is one fused pass over memory; elsewhere stock ops.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace bistro {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(std::vector<torch::Tensor> params, AdamWOptions options);

  // One update with learning rate `lr` from the gradients currently in params' .grad().
  void step(double lr);
  void zero_grad();

  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  const std::vector<torch::Tensor>& params() const { return params_; }
  std::vector<torch::Tensor>& exp_avg() { return m_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }
  const std::vector<torch::Tensor>& exp_avg() const { return m_; }
  const std::vector<torch::Tensor>& exp_avg_sq() const { return v_; }

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  AdamWOptions opt_;
  int64_t steps_ = 0;
};

// Scales all gradients so their global L2 norm is at most max_norm (torch's clip_grad_norm_);
// returns the norm before clipping.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace bistro
