// bistro against the real transformers (tests/reference/hf_interop.py in the repo's .venv, made
// by scripts/setup): its checkpoints load in LlamaForCausalLM with the same logits and loss, a
// checkpoint transformers saves loads in bistro the same way, and AutoTokenizer reads the
// tokenizer a checkpoint carries with bistro's ids.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bistro/core/files.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/data/local_dataset.hpp"
#include "bistro/data/pages.hpp"
#include "bistro/data/tokenizer.hpp"
#include "bistro/model/hf_tokenizer.hpp"
#include "bistro/model/safetensors.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/evaluate.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

// Runs hf_interop.py under the venv's Python; the test fails (never skips) without it.
void interop(const std::string& args) {
  // BISTRO_HF_PYTHON: another interpreter with transformers (bench/device_check.sh on a GPU
  // machine).
  const char* env = std::getenv("BISTRO_HF_PYTHON");
  const auto python =
      env ? fs::path(env) : fs::path(test::source_dir()) / ".venv" / "bin" / "python";
  ASSERT_TRUE(fs::exists(python)) << python << " is missing: run scripts/setup";
  const std::string cmd = fmt::format("{} {}/tests/reference/hf_interop.py {}", python.string(),
                                      test::source_dir(), args);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

torch::Tensor read_tensor(const fs::path& file, const std::string& name) {
  safetensors::File f(file);
  const auto* t = f.view().find(name);
  EXPECT_NE(t, nullptr) << file << " has no " << name;
  if (!t) return {};
  auto bytes = f.view().data(*t);
  return torch::from_blob(const_cast<std::byte*>(bytes.data()), t->shape, torch::kFloat32).clone();
}

// transformers' logits and loss for `ids` on the checkpoint in dir, against bistro's model.
void expect_same_outputs(Llama& model, const fs::path& dir, const TempDir& tmp) {
  torch::manual_seed(11);
  const auto& c = model->config();
  auto ids = torch::randint(c.vocab_size, {2, 48}, torch::kInt64);
  safetensors::write(tmp / "ids.safetensors",
                     {{"input_ids", safetensors::DType::I64, {2, 48}, ids.data_ptr()}});
  interop(fmt::format("logits {} {} {}", dir.string(), (tmp / "ids.safetensors").string(),
                      (tmp / "hf.safetensors").string()));
  torch::NoGradGuard no_grad;
  const auto logits = model->logits(ids).cpu();
  const auto hf = read_tensor(tmp / "hf.safetensors", "logits");
  ASSERT_EQ(logits.sizes(), hf.sizes());
  const double diff = (logits - hf).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << "max |logit difference| against transformers";
  // transformers' causal-LM loss shifts the labels: bistro's loss on ids[:, :-1] -> ids[:, 1:].
  using torch::indexing::Slice;
  const double loss =
      model->loss(ids.index({Slice(), Slice(0, -1)}), ids.index({Slice(), Slice(1)}))
          .item<double>();
  EXPECT_NEAR(loss, read_tensor(tmp / "hf.safetensors", "loss").item<double>(), 1e-4);
}

// A small model shaped like bistro-1b: grouped KV heads (4 query heads per KV head), SwiGLU.
LlamaConfig one_b_shaped() {
  auto c = preset("bistro-1b");
  c.hidden_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.intermediate_size = 344;
  c.vocab_size = 8192;
  return c;
}

class BistroInTransformers : public ::testing::TestWithParam<std::string> {};

TEST_P(BistroInTransformers, SameLogitsAndLoss) {
  TempDir tmp("hf_out_" + GetParam());
  Llama model(GetParam() == "tiny" ? preset("tiny") : one_b_shaped());
  model->init_weights(21);
  save_checkpoint(tmp / "ck", model, default_tokenizer_path());
  // bistro's side on the device under test (bench/device_check.sh sets BISTRO_TEST_DEVICE=cuda).
  const char* device = std::getenv("BISTRO_TEST_DEVICE");
  model->to(parse_device(device ? device : "cpu"));
  expect_same_outputs(model, tmp / "ck", tmp);
}
INSTANTIATE_TEST_SUITE_P(Configs, BistroInTransformers, ::testing::Values("tiny", "gqa"));

TEST(TransformersInBistro, ACheckpointTransformersSavesLoadsWithTheSameOutputs) {
  TempDir tmp("hf_in");
  const nlohmann::json config = {{"vocab_size", 1000},
                                 {"hidden_size", 96},
                                 {"intermediate_size", 256},
                                 {"num_hidden_layers", 2},
                                 {"num_attention_heads", 6},
                                 {"num_key_value_heads", 2},
                                 {"max_position_embeddings", 256},
                                 {"rms_norm_eps", 1e-5},
                                 {"rope_theta", 50000.0}};
  write_file_atomic(tmp / "config.json", config.dump());
  interop(fmt::format("init {} {} 5", (tmp / "ck").string(), (tmp / "config.json").string()));
  auto model = load_model(tmp / "ck", torch::kCPU);  // what `bistro train --init` loads
  EXPECT_EQ(model->config().num_key_value_heads, 2);
  EXPECT_EQ(model->config().rope_theta, 50000.0);
  expect_same_outputs(model, tmp / "ck", tmp);
}

TEST(TokenizerTravels, AutoTokenizerGivesBistrosIdsOnHeldOutText) {
  TempDir tmp("hf_tok");
  Llama model(preset("tiny"));
  model->init_weights(1);
  save_checkpoint(tmp / "ck", model, default_tokenizer_path());
  const Tokenizer ours = checkpoint_tokenizer(tmp / "ck", model->config().vocab_size);
  // The validator's held-out pages of the bundled corpus, and the edge cases of SentencePiece's
  // whitespace handling and of special-token strings inside a text.
  build_default_corpus(default_corpus_dir(), {}, false);
  LocalDataset ds(default_corpus_dir());
  const auto configs = ds.configs();
  std::vector<std::string> texts = {" leading space",          "  two",
                                    "tabs\tand\nnewlines\n\n", "digits 12345 ünïcödé 漢字 😀",
                                    "<s> and </s> as text",    ""};
  for (const auto& p : pages(42, 4, configs))
    for (auto& row : ds.rows(p.config, p.offset, 8)) texts.push_back(row);
  ASSERT_GT(texts.size(), 20u);
  write_file_atomic(tmp / "texts.json", nlohmann::json(texts).dump());
  interop(fmt::format("tokenize {} {} {}", (tmp / "ck").string(), (tmp / "texts.json").string(),
                      (tmp / "ids.json").string()));
  const auto got = nlohmann::json::parse(read_file(tmp / "ids.json"));
  EXPECT_EQ(got["fast_class"], "LlamaTokenizerFast");
  EXPECT_EQ(got["slow_class"], "LlamaTokenizer");
  size_t tokens = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = ours.encode(texts[i]);
    tokens += want.size();
    EXPECT_EQ(got["fast"][i].get<std::vector<int32_t>>(), want) << "fast, text " << i;
    EXPECT_EQ(got["slow"][i].get<std::vector<int32_t>>(), want) << "slow, text " << i;
  }
  EXPECT_GT(tokens, 1000u);
  // With special tokens transformers adds the BOS, as bistro starts each document.
  auto with_bos = ours.encode(texts[0]);
  with_bos.insert(with_bos.begin(), ours.bos_id());
  EXPECT_EQ(got["fast_with_special"].get<std::vector<int32_t>>(), with_bos);
  EXPECT_EQ(got["fast_vocab"].get<int32_t>(), ours.vocab_size());
}

}  // namespace
}  // namespace bistro

namespace bistro {
namespace {

// `bistro eval`'s numbers against transformers' on the same tokens: the held-out perplexity, and
// every choice's log-likelihood in a multiple-choice task.
TEST(EvalMatchesTransformers, PerplexityAndChoiceLogLikelihoods) {
  TempDir tmp("hf_eval");
  Llama model(preset("tiny"));
  model->init_weights(9);
  save_checkpoint(tmp / "ck", model, default_tokenizer_path());
  const Tokenizer tok = checkpoint_tokenizer(tmp / "ck", model->config().vocab_size);
  build_default_corpus(default_corpus_dir(), {}, false);
  LocalDataset ds(default_corpus_dir());
  EvalOptions o;
  o.pages = 2;
  const auto held = eval_held_out(model, tok, ds, "default", o, {}, tmp / "b.safetensors");
  EXPECT_GT(held.tokens, 2000u);
  interop(fmt::format("perplexity {} {} {}", (tmp / "ck").string(),
                      (tmp / "b.safetensors").string(), (tmp / "ppl.json").string()));
  const auto hf = nlohmann::json::parse(read_file(tmp / "ppl.json"));
  EXPECT_EQ(hf["tokens"].get<uint64_t>(), held.tokens);
  EXPECT_NEAR(held.perplexity / hf["perplexity"].get<double>(), 1.0, 1e-4);

  const auto tasks = fs::path(test::source_dir()) / "tests" / "fixtures" / "mc_tasks.jsonl";
  const auto mc = eval_mc(model, tok, read_mc_tasks(tasks), "fixture");
  interop(fmt::format("choices {} {} {}", (tmp / "ck").string(), tasks.string(),
                      (tmp / "choices.json").string()));
  const auto want = nlohmann::json::parse(read_file(tmp / "choices.json"));
  ASSERT_EQ(want.size(), mc.logliks.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].size(), mc.logliks[i].size()) << "item " << i;
    for (size_t c = 0; c < want[i].size(); ++c)
      EXPECT_NEAR(mc.logliks[i][c], want[i][c].get<double>(), 1e-3) << "item " << i << " " << c;
  }
  EXPECT_EQ(mc.items, want.size());
}

}  // namespace
}  // namespace bistro
