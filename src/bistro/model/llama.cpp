#include "bistro/model/llama.hpp"

#include <cmath>

#include "bistro/core/rng.hpp"
#include "bistro/model/ops.hpp"
#include "bistro/runtime/torch_compat.hpp"

namespace bistro {

LlamaImpl::LlamaImpl(const LlamaConfig& config) : config_(config) {
  config_.validate();
  // libtorch forbids dots in parameter names; the Hugging Face name lives in ordered_parameters().
  auto add = [&](const ParameterSpec& spec) {
    std::string key = spec.name;
    std::replace(key.begin(), key.end(), '.', '_');
    return register_parameter(key, torch::zeros(spec.shape, torch::kFloat32));
  };
  const auto specs = parameter_specs(config_);
  size_t i = 0;
  embed_ = add(specs[i++]);
  layers_.resize(config_.num_hidden_layers);
  for (auto& L : layers_) {
    L.wq = add(specs[i++]);
    L.wk = add(specs[i++]);
    L.wv = add(specs[i++]);
    L.wo = add(specs[i++]);
    L.w_gate = add(specs[i++]);
    L.w_up = add(specs[i++]);
    L.w_down = add(specs[i++]);
    L.attn_norm = add(specs[i++]);
    L.mlp_norm = add(specs[i++]);
  }
  norm_ = add(specs[i++]);
  lm_head_ = add(specs[i++]);
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaImpl::ordered_parameters() const {
  const auto specs = parameter_specs(config_);
  std::vector<torch::Tensor> tensors = {embed_};
  for (const auto& L : layers_) {
    for (const auto& t :
         {L.wq, L.wk, L.wv, L.wo, L.w_gate, L.w_up, L.w_down, L.attn_norm, L.mlp_norm})
      tensors.push_back(t);
  }
  tensors.push_back(norm_);
  tensors.push_back(lm_head_);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < specs.size(); ++i) out.emplace_back(specs[i].name, tensors[i]);
  return out;
}

void LlamaImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : ordered_parameters()) {
    const bool is_norm =
        name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    if (is_norm) {
      p.fill_(1.0);
      continue;
    }
    auto cpu = torch::empty(p.sizes(), torch::kFloat32);
    float* out = cpu.data_ptr<float>();
    const uint64_t key = rng::derive(seed, name);
    const double std = config_.initializer_range;
    // Element i depends only on (key, i), so any chunking gives the same bits.
    at::parallel_for(0, cpu.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
      rng::fill_normal(out + begin, static_cast<size_t>(end - begin), key,
                       static_cast<uint64_t>(begin), 0.0, std);
    });
    p.copy_(cpu);
  }
}

torch::Tensor LlamaImpl::final_hidden(const torch::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2, "input_ids must be [batch, seq]");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  TORCH_CHECK(T <= config_.max_position_embeddings, "sequence length ", T,
              " exceeds max_position_embeddings ", config_.max_position_embeddings);
  const int64_t H = config_.hidden_size, nh = config_.num_attention_heads,
                kvh = config_.num_key_value_heads, hd = config_.head_dim(), rep = nh / kvh;
  if (!cos_.defined() || cos_.size(0) != T || cos_.device() != embed_.device()) {
    std::tie(cos_, sin_) = ops::rotary_tables(T, hd, config_.rope_theta, embed_.device());
    // Queries carry the 1/sqrt(head_dim) score scale in their tables: free, where scaling the
    // scores or queries would cost a pass over memory.
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    q_cos_ = cos_ * scale;
    q_sin_ = sin_ * scale;
  }
  // libtorch 2.x's fused attention where it is at hand; else causal attention in two query
  // chunks: the first half of the positions only needs the first half of the keys, which saves a
  // quarter of the attention matmuls.
  const bool fused_attention = ops::fused() && compat::has_fused_attention();
  const int64_t chunks = (T % 2 == 0 && T >= 64) ? 2 : 1, span = T / chunks;

  auto x = torch::embedding(embed_, input_ids);  // [B, T, H]
  for (const auto& L : layers_) {
    // Q, K and V come from one GEMM over the concatenated weights (likewise gate and up below):
    // one large matmul runs closer to the machine's peak than three narrow ones.
    auto h = ops::rms_norm(x, L.attn_norm, config_.rms_norm_eps);
    auto qkv = torch::matmul(h, torch::cat({L.wq, L.wk, L.wv}).t());  // [B, T, H + 2 KV]
    if (fused_attention) {
      // Heads in Hugging Face's order ([B, nh, T, hd]; head h reads KV head h / rep).
      auto q = ops::rotary(qkv.narrow(-1, 0, H).view({B, T, nh, 1, hd}), q_cos_, q_sin_)
                   .view({B, nh, T, hd});
      auto k = ops::rotary(qkv.narrow(-1, H, kvh * hd).view({B, T, kvh, 1, hd}), cos_, sin_)
                   .view({B, kvh, T, hd});
      auto v = qkv.narrow(-1, H + kvh * hd, kvh * hd).view({B, T, kvh, hd}).transpose(1, 2);
      auto att = compat::fused_causal_attention(q, k, v).transpose(1, 2).reshape({B, T, H});
      x = x + torch::matmul(att, L.wo.t());
      x = mlp(x, L);
      continue;
    }
    // Query head h uses KV head h / rep. Rotary writes queries as [B, kvh, T, rep, hd], so that
    // one matmul per KV head serves all of its query heads (row = t * rep + r) without
    // materialising repeated keys and values, and rows of one position range are contiguous.
    auto q = ops::rotary(qkv.narrow(-1, 0, H).view({B, T, kvh, rep, hd}), q_cos_, q_sin_)
                 .view({B, kvh, T * rep, hd});
    auto k = ops::rotary(qkv.narrow(-1, H, kvh * hd).view({B, T, kvh, 1, hd}), cos_, sin_)
                 .view({B, kvh, T, hd});
    auto v = qkv.narrow(-1, H + kvh * hd, kvh * hd).view({B, T, kvh, hd}).transpose(1, 2);
    std::vector<torch::Tensor> outs;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t keys = (c + 1) * span;  // positions [c*span, (c+1)*span) see keys [0, keys)
      auto qc = q.narrow(2, c * span * rep, span * rep);
      auto scores = torch::matmul(qc, k.narrow(2, 0, keys).transpose(-2, -1));
      auto probs = ops::causal_softmax(scores, rep, c * span);
      outs.push_back(torch::matmul(probs, v.narrow(2, 0, keys)));  // [B, kvh, span*rep, hd]
    }
    auto o = chunks == 1 ? outs[0] : torch::cat(outs, 2);  // [B, kvh, T*rep, hd]
    auto att = o.view({B, kvh, T, rep, hd}).permute({0, 2, 1, 3, 4}).reshape({B, T, H});
    x = x + torch::matmul(att, L.wo.t());
    x = mlp(x, L);
  }
  return ops::rms_norm(x, norm_, config_.rms_norm_eps);
}

torch::Tensor LlamaImpl::mlp(const torch::Tensor& x, const Layer& L) {
  auto h = ops::rms_norm(x, L.mlp_norm, config_.rms_norm_eps);
  auto gate_up = torch::matmul(h, torch::cat({L.w_gate, L.w_up}).t());  // [B, T, 2I]
  return x + torch::matmul(ops::swiglu(gate_up), L.w_down.t());
}

torch::Tensor LlamaImpl::logits(const torch::Tensor& input_ids) {
  const auto device = embed_.device();
  compat::AutocastGuard autocast(device.type(), bf16_ ? torch::kBFloat16 : torch::kFloat32);
  return torch::matmul(final_hidden(input_ids.to(device)), lm_head_.t());
}

torch::Tensor LlamaImpl::loss(const torch::Tensor& input_ids, const torch::Tensor& targets) {
  // The loss in fp32 whatever the logits' dtype (as Hugging Face upcasts them).
  auto lg = logits(input_ids).to(torch::kFloat32);
  return ops::cross_entropy(lg.view({-1, config_.vocab_size}),
                            targets.to(embed_.device()).reshape({-1}));
}

torch::Tensor LlamaImpl::loss_sum(const torch::Tensor& input_ids, const torch::Tensor& targets) {
  const auto flat = targets.to(embed_.device()).reshape({-1});
  const auto count = (flat != -100).sum();
  return loss(input_ids, flat) * count;
}

}  // namespace bistro
