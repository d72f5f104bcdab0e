// The LLaMA decoder: token embedding, RMSNorm, rotary attention with grouped-query heads, SwiGLU
// MLP, untied LM head. Parameter names are Hugging Face's (model.layers.N.self_attn.q_proj.weight),
// so named_parameters() is the checkpoint's table of contents.
#pragma once

#include <torch/torch.h>

#include "bistro/model/config.hpp"

namespace bistro {

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const LlamaConfig& config);

  // input_ids [B, T] int64 (on any device: they are moved to the model's) -> logits
  // [B, T, vocab], fp32 or, under bf16 autocast, bf16.
  torch::Tensor logits(const torch::Tensor& input_ids);
  // Mean next-token cross-entropy; targets [B, T] int64 are already the next tokens, with -100
  // where no loss is taken (padding).
  torch::Tensor loss(const torch::Tensor& input_ids, const torch::Tensor& targets);
  // Sum (not mean) of the same cross-entropy and the number of counted targets: lets micro-batches
  // accumulate an exact token mean.
  torch::Tensor loss_sum(const torch::Tensor& input_ids, const torch::Tensor& targets);

  // Deterministic init, bit-identical everywhere for one (seed, config): every weight matrix and
  // the embedding draws normal(0, initializer_range) from the portable RNG keyed by
  // derive(seed, parameter name); norm weights are ones. docs/protocol.md specifies it.
  void init_weights(uint64_t seed);

  // bf16: every forward runs under autocast to bf16 on the model's device (matrix products in
  // bf16; parameters, norms' statistics, softmax's and the loss's reductions in fp32). Default
  // fp32. The parameters stay fp32 either way, so the outer step and the hash do not change.
  void set_bf16(bool on) { bf16_ = on; }
  bool bf16() const { return bf16_; }

  const LlamaConfig& config() const { return config_; }
  // Parameters in parameter_specs() order.
  std::vector<std::pair<std::string, torch::Tensor>> ordered_parameters() const;

 private:
  torch::Tensor final_hidden(const torch::Tensor& input_ids);

  struct Layer {
    torch::Tensor wq, wk, wv, wo, w_gate, w_up, w_down, attn_norm, mlp_norm;
  };
  // x + SwiGLU-MLP(RMSNorm(x)).
  torch::Tensor mlp(const torch::Tensor& x, const Layer& L);
  LlamaConfig config_;
  torch::Tensor embed_, norm_, lm_head_;
  std::vector<Layer> layers_;
  torch::Tensor cos_, sin_, q_cos_, q_sin_;  // rotary tables, cached per (length, device)
  bool bf16_ = false;
};
TORCH_MODULE(Llama);

}  // namespace bistro
