#include "bistro/model/config.hpp"

#include <gtest/gtest.h>

#include "bistro/core/error.hpp"

namespace bistro {

TEST(Config, Bistro1bHasTheParameterCountFromFacts) {
  const auto c = preset("bistro-1b");
  EXPECT_EQ(c.parameter_count(), 1'204'881'408);
  EXPECT_EQ(c.head_dim(), 256);
}

TEST(Config, PresetSizes) {
  EXPECT_GT(preset("tiny").parameter_count(), 1'000'000);
  EXPECT_LT(preset("tiny").parameter_count(), 5'000'000);
  EXPECT_NEAR(preset("small").parameter_count(), 25e6, 2e6);
}

TEST(Config, UnknownPresetNamesItAndTheKnownOnes) {
  try {
    preset("huge");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model preset 'huge'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("bistro-1b"), std::string::npos);
  }
}

TEST(Config, JsonRoundTrips) {
  for (const auto& name : preset_names()) {
    const auto c = preset(name);
    EXPECT_EQ(LlamaConfig::from_json(c.to_json(), "test"), c) << name;
  }
}

TEST(Config, ReadsAHuggingFaceConfig) {
  // The shape of a transformers LlamaConfig.to_json_string(), trimmed.
  const char* hf = R"({
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 2048, "model_type": "llama",
    "num_attention_heads": 8, "num_hidden_layers": 16, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 10000.0,
    "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.40.0",
    "use_cache": true, "vocab_size": 32000})";
  EXPECT_EQ(LlamaConfig::from_json(hf, "hf"), preset("bistro-1b"));
}

void expect_invalid(LlamaConfig c, const std::string& fragment) {
  try {
    c.validate();
    FAIL() << "accepted a config that should fail with: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Config, RejectsInconsistentConfigs) {
  auto c = preset("tiny");
  auto bad = c;
  bad.num_attention_heads = 3;
  expect_invalid(bad, "num_attention_heads (3) does not divide hidden_size (128)");
  bad = c;
  bad.num_key_value_heads = 3;
  expect_invalid(bad, "num_key_value_heads (3) does not divide num_attention_heads (4)");
  bad = c;
  bad.hidden_size = 0;
  expect_invalid(bad, "hidden_size must be positive");
  bad = c;
  bad.vocab_size = -5;
  expect_invalid(bad, "vocab_size must be positive");
  bad = c;
  bad.rms_norm_eps = 0;
  expect_invalid(bad, "rms_norm_eps must be positive");
}

TEST(Config, RejectsBadJson) {
  EXPECT_THROW(LlamaConfig::from_json("{", "x.json"), Error);
  EXPECT_THROW(LlamaConfig::from_json("[]", "x.json"), Error);
  EXPECT_THROW(LlamaConfig::from_json(R"({"hidden_size": 64})", "x.json"), Error);
  auto j = preset("tiny").to_json();
  auto pos = j.find("\"hidden_size\": 128");
  ASSERT_NE(pos, std::string::npos);
  j.replace(pos, 18, "\"hidden_size\": \"128\"");
  try {
    LlamaConfig::from_json(j, "x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "x.json: field hidden_size must be an integer");
  }
}

}  // namespace bistro
