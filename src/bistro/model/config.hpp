// LlamaConfig: the model's shape, with the field names of Hugging Face's LlamaConfig so that
// config.json round-trips with transformers unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bistro {

struct LlamaConfig {
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double initializer_range = 0.02;  // std of the normal init, as in Hugging Face
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t kv_dim() const { return head_dim() * num_key_value_heads; }

  // Throws bistro::Error naming the first inconsistency (zero sizes, heads not dividing the hidden
  // size, KV heads not dividing heads, odd head dim for rotary, eps or theta not positive).
  void validate() const;

  // Every parameter: embeddings, layers, final norm and the untied LM head.
  int64_t parameter_count() const;
  // Parameters outside the token embedding table (the LM head counts: it is a real matmul).
  int64_t matmul_parameter_count() const;

  // Hugging Face config.json (LlamaForCausalLM). from_json validates.
  std::string to_json() const;
  static LlamaConfig from_json(std::string_view json, std::string_view origin);

  bool operator==(const LlamaConfig&) const = default;
};

// Named presets: "tiny" (tests), "small" (~25M, CPU runs), "bistro-1b" (BISTRO's own, ~1.2B).
LlamaConfig preset(std::string_view name);
std::vector<std::string> preset_names();

// The names and shapes of every parameter, in Hugging Face naming and in a fixed canonical order
// (embed_tokens, layers 0..L-1, norm, lm_head).
struct ParameterSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<ParameterSpec> parameter_specs(const LlamaConfig& config);

}  // namespace bistro
