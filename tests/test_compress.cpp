#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/model/safetensors.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {

// The chunked DCT against the O(n^2) definition, in double.
TEST(Dct, MatchesTheDirectSum) {
  torch::manual_seed(1);
  auto x = torch::randn({6, 10});
  const ChunkPlan p = chunk_plan({6, 10}, 5);  // blocks of 3 x 5
  ASSERT_EQ(p.n1, 3);
  ASSERT_EQ(p.n2, 5);
  auto c = dct_chunks(x, p);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{4, 15}));
  auto X = x.accessor<float, 2>();
  auto C = c.accessor<float, 2>();
  for (int by = 0; by < 2; ++by) {
    for (int bx = 0; bx < 2; ++bx) {
      for (int u = 0; u < 3; ++u) {
        for (int v = 0; v < 5; ++v) {
          double s = 0;
          for (int a = 0; a < 3; ++a) {
            for (int b = 0; b < 5; ++b) {
              s += (u == 0 ? std::sqrt(1.0 / 3) : std::sqrt(2.0 / 3)) *
                   std::cos(std::numbers::pi * (2 * a + 1) * u / 6.0) *
                   (v == 0 ? std::sqrt(1.0 / 5) : std::sqrt(2.0 / 5)) *
                   std::cos(std::numbers::pi * (2 * b + 1) * v / 10.0) * X[by * 3 + a][bx * 5 + b];
            }
          }
          EXPECT_NEAR(C[by * 2 + bx][u * 5 + v], s, 1e-5);
        }
      }
    }
  }
}

TEST(Dct, InverseRestoresTheTensor) {
  torch::manual_seed(2);
  for (auto shape : {std::vector<int64_t>{128, 344}, {512}, {67}, {8, 3, 4}}) {
    auto x = torch::randn(shape);
    const auto p = chunk_plan(shape);
    EXPECT_LT(test::rel_error(idct_chunks(dct_chunks(x, p), p, shape), x), 1e-6);
  }
}

TEST(Dct, TopKTakesLargestMagnitudesTiesToLowerIndex) {
  auto c = torch::tensor({{0.5f, -3.0f, 3.0f, 1.0f, -3.0f, 0.1f}});
  std::vector<int32_t> idx;
  std::vector<float> val;
  top_k_rows(c, 2, idx, val);
  EXPECT_EQ(idx, (std::vector<int32_t>{1, 2}));  // three |3|s: the two lowest indices
  EXPECT_EQ(val, (std::vector<float>{-3.0f, 3.0f}));
  top_k_rows(c, 4, idx, val);
  EXPECT_EQ(idx, (std::vector<int32_t>{1, 2, 3, 4}));
}

TEST(Demo, ErrorFeedbackKeepsExactlyWhatWasNotSent) {
  torch::manual_seed(3);
  auto w = torch::randn({64, 96}, torch::requires_grad());
  w.mutable_grad() = torch::randn({64, 96});
  DemoCompressor comp({{"w", w}}, {.beta = 0.9, .k = 8});
  const auto u = comp.encode(0.5);
  const auto p = chunk_plan({64, 96});
  auto sent = idct_chunks(densify(u.tensors[0], p.size()), p, {64, 96});
  // Before error feedback m was 0.9 * 0 + 0.5 * g.
  EXPECT_LT(test::rel_error(comp.momentum(0) + sent, 0.5 * w.grad()), 1e-5);
  EXPECT_EQ(u.tensors[0].k, 8);
  EXPECT_EQ(u.tensors[0].rows, p.chunks());
  // A second step: m = 0.9 * (what was left) + 0.5 * g2, and again sent + kept = m.
  const auto left = comp.momentum(0);
  w.mutable_grad() = torch::randn({64, 96});
  const auto u2 = comp.encode(0.5);
  auto sent2 = idct_chunks(densify(u2.tensors[0], p.size()), p, {64, 96});
  EXPECT_LT(test::rel_error(comp.momentum(0) + sent2, 0.9 * left + 0.5 * w.grad()), 1e-5);
}

std::vector<Update> three_updates() {
  std::vector<Update> out;
  for (int i = 0; i < 3; ++i) {
    torch::manual_seed(10 + i);
    auto w = torch::randn({32, 48}, torch::requires_grad());
    auto b = torch::randn({48}, torch::requires_grad());
    w.mutable_grad() = torch::randn({32, 48});
    b.mutable_grad() = torch::randn({48});
    DemoCompressor c({{"w", w}, {"b", b}}, {.k = 16});
    out.push_back(c.encode(0.1));
  }
  return out;
}

TEST(Demo, MergeIsIndependentOfPeerOrder) {
  const auto ups = three_updates();
  auto run = [&](std::vector<int> order) {
    auto w = torch::ones({32, 48}), b = torch::ones({48});
    std::vector<PeerUpdate> peers;
    for (int i : order) peers.push_back({static_cast<uint64_t>(i + 7), &ups[i]});
    demo_merge({w, b}, peers, 0.01, 0.1);
    return std::make_pair(w, b);
  };
  const auto a = run({0, 1, 2}), b = run({2, 0, 1}), c = run({1, 2, 0});
  EXPECT_TRUE(torch::equal(a.first, b.first));
  EXPECT_TRUE(torch::equal(a.first, c.first));
  EXPECT_TRUE(torch::equal(a.second, b.second));
  EXPECT_FALSE(torch::equal(a.first, torch::ones({32, 48})));
}

TEST(Demo, MergeAveragesPerIndexThenSigns) {
  const auto ups = three_updates();
  auto w = torch::zeros({32, 48}), b = torch::zeros({48});
  demo_merge({w, b}, {{1, &ups[0]}, {2, &ups[1]}}, 0.5, 0.0);
  const auto p = chunk_plan({32, 48});
  auto d0 = densify(ups[0].tensors[0], p.size()), d1 = densify(ups[1].tensors[0], p.size());
  auto n = (d0 != 0).to(torch::kFloat32) + (d1 != 0).to(torch::kFloat32);
  auto mean = (d0 + d1) / n.clamp_min(1);
  auto expected = -0.5 * idct_chunks(mean, p, {32, 48}).sign();
  EXPECT_TRUE(torch::allclose(w, expected));
  // Duplicate uids are refused.
  EXPECT_THROW(demo_merge({w, b}, {{1, &ups[0]}, {1, &ups[1]}}, 0.5, 0.0), Error);
  // An index outside the chunk or a short tensor is refused before the kernel writes through it,
  // and the parameters are untouched.
  const auto before = w.clone();
  auto bad = ups[1];
  bad.tensors[0].idx[3] = static_cast<int32_t>(p.size());
  EXPECT_THROW(demo_merge({w, b}, {{1, &ups[0]}, {2, &bad}}, 0.5, 0.0), Error);
  bad = ups[1];
  bad.tensors[0].val.pop_back();
  EXPECT_THROW(demo_merge({w, b}, {{1, &ups[0]}, {2, &bad}}, 0.5, 0.0), Error);
  EXPECT_TRUE(torch::equal(w, before));
}

TEST(Slices, MergeTakesTheMeanAtTheWindowsPositions) {
  const uint8_t hash[4] = {1, 2, 3, 4};
  const uint64_t key = slice_key(3, hash);
  auto a = torch::full({300, 10}, 2.0f), b = torch::full({300, 10}, 4.0f);
  const auto ua = slice_encode({{"w", a}}, key, 100), ub = slice_encode({{"w", b}}, key, 100);
  auto target = torch::zeros({300, 10});
  slice_merge({{"w", target}}, {{2, &ub}, {1, &ua}}, key, 100);
  const auto pos = slice_positions(key, "w", 3000, 100);
  EXPECT_EQ(target.sum().item<float>(), 3.0f * pos.size());
  for (int64_t p : pos) EXPECT_EQ(target.view({-1})[p].item<float>(), 3.0f);
}

// An independent PyTorch implementation agrees on indices and values.
TEST(Demo, MatchesThePyTorchReference) {
  test::TempDir dir("dct_ref");
  torch::manual_seed(4);
  std::vector<std::pair<std::string, torch::Tensor>> xs = {
      {"m", torch::randn({128, 344})}, {"v", torch::randn({512})}, {"p", torch::randn({67, 5})}};
  std::vector<safetensors::TensorRef> refs;
  for (auto& [name, x] : xs) {
    refs.push_back({name, safetensors::DType::F32, x.sizes().vec(), x.data_ptr()});
  }
  safetensors::write(dir / "in.safetensors", refs);
  const std::string cmd = "/usr/bin/python3 " + test::source_dir() +
                          "/tests/reference/dct_ref.py " + (dir / "in.safetensors").string() + " " +
                          (dir / "out.safetensors").string() + " --k 32 --cap 64";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  safetensors::File ref(dir / "out.safetensors");
  for (auto& [name, x] : xs) {
    const auto p = chunk_plan(x.sizes().vec());
    std::vector<int32_t> idx;
    std::vector<float> val;
    top_k_rows(dct_chunks(x, p), clamp_k(32, p), idx, val);
    const auto* ri = ref.view().find(name + ".idx");
    const auto* rv = ref.view().find(name + ".val");
    ASSERT_TRUE(ri && rv) << name;
    std::vector<int32_t> ref_idx(ri->numel());
    std::vector<float> ref_val(rv->numel());
    std::memcpy(ref_idx.data(), ref.view().data(*ri).data(), ref_idx.size() * 4);
    std::memcpy(ref_val.data(), ref.view().data(*rv).data(), ref_val.size() * 4);
    EXPECT_EQ(idx, ref_idx) << name;
    ASSERT_EQ(val.size(), ref_val.size());
    for (size_t i = 0; i < val.size(); ++i) EXPECT_NEAR(val[i], ref_val[i], 1e-5) << name << i;
  }
}

// A DeMo miner resumes with its momentum: save, load into a fresh compressor, same state.
TEST(Demo, MomentumSurvivesSaveAndLoad) {
  test::TempDir dir("demo_state");
  torch::manual_seed(5);
  auto w = torch::randn({96, 80}), b = torch::randn({80});
  DemoCompressor a({{"w", w}, {"b", b}}, {.k = 8});
  for (int step = 0; step < 3; ++step) {
    w.mutable_grad() = torch::randn({96, 80});
    b.mutable_grad() = torch::randn({80});
    a.encode(1e-2);
  }
  a.save(dir / "m.safetensors");
  DemoCompressor c({{"w", w}, {"b", b}}, {.k = 8});
  EXPECT_FALSE(c.load(dir / "missing.safetensors"));
  ASSERT_TRUE(c.load(dir / "m.safetensors"));
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(torch::equal(c.momentum(i), a.momentum(i)));
  EXPECT_GT(a.momentum(0).abs().sum().item<double>(), 0.0);
  DemoCompressor other({{"w", w}, {"b", b}}, {.k = 8, .chunk_cap = 16});  // other chunking
  EXPECT_THROW(other.load(dir / "m.safetensors"), Error);
}

}  // namespace
}  // namespace bistro
