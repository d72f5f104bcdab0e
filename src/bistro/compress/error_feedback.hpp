// The miner's half of SparseLoCo on torch tensors: one error-feedback buffer per parameter, folded
// with each window's pseudo-gradient and compressed to chunked top-k with 2-bit values
// (sparse_loco.hpp has the kernel and the rule). The buffer is the miner's own state: it is saved
// with the miner's checkpoint and restored on resume; no other node needs it.
#pragma once

#include <torch/torch.h>

#include <filesystem>

#include "bistro/compress/update.hpp"

namespace bistro {

struct ErrorFeedbackOptions {
  double beta = 0.95;  // e <- beta e + delta
  int64_t k = 64;      // entries per 64 x 64 chunk (1-D parameters send all)
  int64_t chunk_cap = 64;
  int value_bits = 2;   // 2 (four levels) or 32
  int index_bits = 12;  // wire packing: 12 or 32
};

class ErrorFeedback {
 public:
  ErrorFeedback(std::vector<std::pair<std::string, torch::Tensor>> params,
                ErrorFeedbackOptions options);

  // Folds delta (one tensor per parameter, start - end of the inner loop) into the buffers and
  // returns the update to send (codec "sparseloco"; window, uid and config hash left to the
  // caller); what it sends leaves the buffers. An empty delta only decays the buffers.
  Update encode(const std::vector<torch::Tensor>& delta);
  const torch::Tensor& buffer(size_t i) const { return e_.at(i); }
  // The buffers as a safetensors file ("e.<param>"), written atomically; load() returns false
  // when the file does not exist and refuses one made for another model.
  void save(const std::filesystem::path& file) const;
  bool load(const std::filesystem::path& file);
  const ErrorFeedbackOptions& options() const { return o_; }

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> e_;  // fp32 CPU, each parameter's shape
  ErrorFeedbackOptions o_;
};

}  // namespace bistro
