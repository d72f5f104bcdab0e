#include "bistro/train/checkpoint.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/model/safetensors.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {
namespace st = safetensors;
using test::TempDir;

void expect_error(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    FAIL() << "no error; expected: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, RoundTripsWeightsAndConfig) {
  TempDir dir("ck_roundtrip");
  Llama a(preset("tiny"));
  a->init_weights(5);
  save_checkpoint(dir / "ck", a, {});
  EXPECT_TRUE(std::filesystem::exists(dir / "ck" / "config.json"));
  auto b = load_model(dir / "ck", torch::kCPU);
  EXPECT_EQ(b->config(), a->config());
  const auto pa = a->ordered_parameters(), pb = b->ordered_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second));
  // Saving again replaces the directory as a whole and leaves no temporaries behind.
  a->init_weights(6);
  save_checkpoint(dir / "ck", a, {});
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
  auto c = load_model(dir / "ck", torch::kCPU);
  EXPECT_TRUE(torch::equal(c->ordered_parameters()[0].second, a->ordered_parameters()[0].second));
}

TEST(Checkpoint, LoadsHalfPrecisionWeights) {
  // Hugging Face checkpoints are often bf16 or fp16: they load and widen to fp32.
  TempDir dir("ck_bf16");
  Llama a(preset("tiny"));
  a->init_weights(5);
  std::vector<torch::Tensor> keep;
  std::vector<st::TensorRef> refs;
  for (const auto& [name, p] : a->ordered_parameters()) {
    keep.push_back(p.to(torch::kBFloat16).contiguous());
    refs.push_back({name, st::DType::BF16, p.sizes().vec(), keep.back().data_ptr()});
  }
  st::write(dir / "w.safetensors", refs);
  Llama b(preset("tiny"));
  load_weights(b, dir / "w.safetensors");
  EXPECT_TRUE(torch::equal(b->ordered_parameters()[3].second, keep[3].to(torch::kFloat32)));
}

class BadWeights : public ::testing::Test {
 protected:
  void write_variant(const std::function<void(std::vector<st::TensorRef>&)>& edit) {
    Llama a(preset("tiny"));
    a->init_weights(1);
    std::vector<st::TensorRef> refs;
    for (const auto& [name, p] : a->ordered_parameters()) {
      keep_.push_back(p.detach().contiguous());
      refs.push_back({name, st::DType::F32, p.sizes().vec(), keep_.back().data_ptr()});
    }
    edit(refs);
    st::write(dir_ / "w.safetensors", refs);
  }
  void expect_load_error(const std::string& fragment) {
    Llama m(preset("tiny"));
    expect_error([&] { load_weights(m, dir_ / "w.safetensors"); }, fragment);
  }
  TempDir dir_{"ck_bad"};
  std::vector<torch::Tensor> keep_;
};

TEST_F(BadWeights, MissingTensor) {
  write_variant([](auto& refs) { refs.pop_back(); });
  expect_load_error("tensor 'lm_head.weight' is missing");
}

TEST_F(BadWeights, ExtraTensor) {
  static float x = 1;
  write_variant([](auto& refs) { refs.push_back({"model.extra", st::DType::F32, {1}, &x}); });
  expect_load_error("unexpected tensor 'model.extra'");
}

TEST_F(BadWeights, WrongShape) {
  write_variant([](auto& refs) { refs[1].shape = {64, 256}; });
  expect_load_error("has shape [64, 256] but the model needs [128, 128]");
}

TEST_F(BadWeights, NonFloatDtype) {
  write_variant([](auto& refs) { refs.back().dtype = st::DType::I32; });
  expect_load_error("dtype I32 is not a floating-point weight type");
}

TEST_F(BadWeights, TruncatedFile) {
  write_variant([](auto&) {});
  const auto bytes = read_file(dir_ / "w.safetensors");
  write_file_atomic(dir_ / "w.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_load_error("out of range");
}

long proc_status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

TEST(Checkpoint, LoadingNeedsAboutOneCopyOfTheWeights) {
  TempDir dir("ck_memory");
  auto c = preset("tiny");
  c.vocab_size = 50'000;  // ~100 MB of fp32 weights, no tensor above a quarter of them
  c.intermediate_size = 8192;
  const double weight_mb = c.parameter_count() * 4.0 / 1024 / 1024;
  {
    Llama m(c);
    save_checkpoint(dir / "ck", m, {});
  }
  {
    std::ofstream reset("/proc/self/clear_refs");
    reset << "5";  // resets the peak-RSS mark (VmHWM)
  }
  const long before_kb = proc_status_kb("VmRSS");
  ASSERT_GT(before_kb, 0);
  auto m = load_model(dir / "ck", torch::kCPU);
  const double peak_growth_mb = (proc_status_kb("VmHWM") - before_kb) / 1024.0;
  // One copy in the model plus at most one tensor's pages from the map; two copies would fail.
  EXPECT_LT(peak_growth_mb, 1.5 * weight_mb) << "weights " << weight_mb << " MB";
  EXPECT_GT(peak_growth_mb, 0.5 * weight_mb);  // the measurement sees the load at all
}

TEST(Checkpoint, MissingPiecesAreNamed) {
  TempDir dir("ck_missing");
  expect_error([&] { load_model(dir / "nope", torch::kCPU); }, "config.json is missing");
  write_file_atomic(dir / "config.json", preset("tiny").to_json());
  expect_error([&] { load_model(dir.path(), torch::kCPU); }, "model.safetensors is missing");
  write_file_atomic(dir / "config.json", "{\"hidden_size\": 1}");
  expect_error([&] { load_model(dir.path(), torch::kCPU); }, "missing field num_hidden_layers");
}

}  // namespace
}  // namespace bistro
