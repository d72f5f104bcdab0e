#include "bistro/model/config.hpp"

#include <nlohmann/json.hpp>

#include "bistro/core/error.hpp"

namespace bistro {
using nlohmann::json;

void LlamaConfig::validate() const {
  const std::pair<const char*, int64_t> sizes[] = {
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"intermediate_size", intermediate_size},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", max_position_embeddings},
  };
  for (auto [name, value] : sizes) {
    check(value > 0, "invalid model config: {} must be positive, got {}", name, value);
  }
  check(hidden_size % num_attention_heads == 0,
        "invalid model config: num_attention_heads ({}) does not divide hidden_size ({})",
        num_attention_heads, hidden_size);
  check(num_attention_heads % num_key_value_heads == 0,
        "invalid model config: num_key_value_heads ({}) does not divide num_attention_heads ({})",
        num_key_value_heads, num_attention_heads);
  check(head_dim() % 2 == 0, "invalid model config: head dim {} must be even for rotary embeddings",
        head_dim());
  check(rms_norm_eps > 0, "invalid model config: rms_norm_eps must be positive, got {}",
        rms_norm_eps);
  check(rope_theta > 0, "invalid model config: rope_theta must be positive, got {}", rope_theta);
  check(initializer_range > 0, "invalid model config: initializer_range must be positive, got {}",
        initializer_range);
}

int64_t LlamaConfig::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameter_specs(*this)) {
    int64_t numel = 1;
    for (int64_t d : p.shape) numel *= d;
    n += numel;
  }
  return n;
}

int64_t LlamaConfig::matmul_parameter_count() const {
  return parameter_count() - vocab_size * hidden_size;
}

std::vector<ParameterSpec> parameter_specs(const LlamaConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, KV = c.kv_dim();
  std::vector<ParameterSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, H}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    specs.push_back({p + "self_attn.q_proj.weight", {H, H}});
    specs.push_back({p + "self_attn.k_proj.weight", {KV, H}});
    specs.push_back({p + "self_attn.v_proj.weight", {KV, H}});
    specs.push_back({p + "self_attn.o_proj.weight", {H, H}});
    specs.push_back({p + "mlp.gate_proj.weight", {I, H}});
    specs.push_back({p + "mlp.up_proj.weight", {I, H}});
    specs.push_back({p + "mlp.down_proj.weight", {H, I}});
    specs.push_back({p + "input_layernorm.weight", {H}});
    specs.push_back({p + "post_attention_layernorm.weight", {H}});
  }
  specs.push_back({"model.norm.weight", {H}});
  specs.push_back({"lm_head.weight", {c.vocab_size, H}});
  return specs;
}

std::string LlamaConfig::to_json() const {
  json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_act", "silu"},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"intermediate_size", intermediate_size},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"initializer_range", initializer_range},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"torch_dtype", "float32"},
  };
  return j.dump(2) + "\n";
}

LlamaConfig LlamaConfig::from_json(std::string_view text, std::string_view origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", origin, e.what());
  }
  check(j.is_object(), "{}: a model config must be a JSON object", origin);
  LlamaConfig c;
  auto get_int = [&](const char* key, int64_t& out, bool required) {
    if (!j.contains(key)) {
      check(!required, "{}: missing field {}", origin, key);
      return;
    }
    check(j[key].is_number_integer(), "{}: field {} must be an integer", origin, key);
    out = j[key].get<int64_t>();
  };
  auto get_num = [&](const char* key, double& out) {
    if (!j.contains(key)) return;
    check(j[key].is_number(), "{}: field {} must be a number", origin, key);
    out = j[key].get<double>();
  };
  get_int("hidden_size", c.hidden_size, true);
  get_int("num_hidden_layers", c.num_hidden_layers, true);
  get_int("num_attention_heads", c.num_attention_heads, true);
  c.num_key_value_heads = c.num_attention_heads;  // Hugging Face's default
  get_int("num_key_value_heads", c.num_key_value_heads, false);
  get_int("intermediate_size", c.intermediate_size, true);
  get_int("vocab_size", c.vocab_size, true);
  get_int("max_position_embeddings", c.max_position_embeddings, true);
  get_int("bos_token_id", c.bos_token_id, false);
  get_int("eos_token_id", c.eos_token_id, false);
  get_num("rms_norm_eps", c.rms_norm_eps);
  get_num("rope_theta", c.rope_theta);
  get_num("initializer_range", c.initializer_range);
  if (j.contains("hidden_act")) {
    check(j["hidden_act"] == "silu", "{}: hidden_act {} is not supported (only silu)", origin,
          j["hidden_act"].dump());
  }
  if (j.contains("tie_word_embeddings")) {
    check(j["tie_word_embeddings"] == false, "{}: tied word embeddings are not supported", origin);
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    fail("{}: rope_scaling is not supported", origin);
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail("{}: {}", origin, e.what());
  }
  return c;
}

LlamaConfig preset(std::string_view name) {
  LlamaConfig c;
  if (name == "tiny") {
    // ~2.8M parameters: fast enough for every test.
    c.hidden_size = 128;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.intermediate_size = 352;
    c.vocab_size = 8192;
    c.max_position_embeddings = 256;
  } else if (name == "small") {
    // ~25.8M parameters: a real CPU training run.
    c.hidden_size = 512;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.intermediate_size = 1376;
    c.vocab_size = 8192;
    c.max_position_embeddings = 1024;
  } else if (name == "bistro-1b") {
    // BISTRO's own model: 1,204,881,408 parameters with the LLaMA-2 vocabulary.
    c.hidden_size = 2048;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 8;
    c.intermediate_size = 8192;
    c.vocab_size = 32000;
    c.max_position_embeddings = 2048;
  } else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown model preset '{}' (known: {})", name, known);
  }
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.validate();
  return c;
}

std::vector<std::string> preset_names() {
  return {"tiny", "small", "bistro-1b"};
}

}  // namespace bistro
