// What the torch-side wrappers of the CPU kernels share: the kernels' parallel loop on torch's
// thread pool (the same threads and count as training), and a tensor as contiguous fp32 CPU memory.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace bistro {

inline void torch_parallel(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, n, 1, body);
}

inline torch::Tensor cpu_float(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace bistro
