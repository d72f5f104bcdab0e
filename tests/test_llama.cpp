#include "bistro/model/llama.hpp"

#include <gtest/gtest.h>

#include "bistro/core/error.hpp"
#include "bistro/model/ops.hpp"
#include "bistro/model/safetensors.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/trainer.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {
using test::rel_error;
using test::TempDir;

TEST(Llama, InitIsDeterministicAndSeedDependent) {
  Llama a(preset("tiny")), b(preset("tiny")), c(preset("tiny"));
  a->init_weights(42);
  b->init_weights(42);
  c->init_weights(43);
  const auto pa = a->ordered_parameters(), pb = b->ordered_parameters(),
             pc = c->ordered_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
    if (pa[i].first.ends_with("norm.weight")) {
      EXPECT_TRUE(torch::all(pa[i].second == 1).item<bool>()) << pa[i].first;
    } else {
      EXPECT_FALSE(torch::equal(pa[i].second, pc[i].second)) << pa[i].first;
    }
  }
  // normal(0, 0.02) statistics on the embedding table.
  const auto& emb = pa[0].second;
  EXPECT_NEAR(emb.mean().item<double>(), 0.0, 1e-3);
  EXPECT_NEAR(emb.std().item<double>(), 0.02, 2e-4);
}

// Pinned values (docs/protocol.md), computed by an independent Python transcription of the
// specification: every node, on every platform, starts from these bits.
constexpr float kPinned0 = 0.015742173418402672f, kPinned1 = -0.004400478210300207f,
                kPinned2 = 0.010517585091292858f, kPinned3 = -0.03894681856036186f;
TEST(Llama, InitMatchesPinnedVector) {
  Llama m(preset("tiny"));
  m->init_weights(42);
  const auto emb = m->ordered_parameters()[0].second.flatten();
  const float expected[4] = {kPinned0, kPinned1, kPinned2, kPinned3};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(emb[i].item<float>(), expected[i]) << i;
}

TEST(Llama, ParameterNamesAreHuggingFaces) {
  Llama m(preset("tiny"));
  const auto p = m->ordered_parameters();
  EXPECT_EQ(p.front().first, "model.embed_tokens.weight");
  EXPECT_EQ(p[1].first, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(p.back().first, "lm_head.weight");
  int64_t n = 0;
  for (auto& [name, t] : p) n += t.numel();
  EXPECT_EQ(n, preset("tiny").parameter_count());
  EXPECT_EQ(m->parameters().size(), p.size());
}

TEST(Llama, IsCausal) {
  Llama m(preset("tiny"));
  m->init_weights(1);
  torch::NoGradGuard ng;
  // 64 positions: attention runs in two query chunks; change one token in each half.
  for (int64_t pos : {10, 40}) {
    auto ids = torch::randint(8192, {1, 64}, torch::kInt64);
    auto ids2 = ids.clone();
    ids2[0][pos] = (ids[0][pos].item<int64_t>() + 1) % 8192;
    auto a = m->logits(ids), b = m->logits(ids2);
    EXPECT_TRUE(torch::allclose(a.narrow(1, 0, pos), b.narrow(1, 0, pos))) << pos;
    EXPECT_FALSE(torch::allclose(a.narrow(1, pos, 64 - pos), b.narrow(1, pos, 64 - pos))) << pos;
  }
}

// The llm.c standard, tightened: bistro and an independent PyTorch model, loaded from the same
// safetensors file, agree on logits, loss, every gradient and 10 AdamW steps.
class Parity : public ::testing::TestWithParam<bool> {};

TEST_P(Parity, MatchesPyTorchReference) {
  ops::set_fused(GetParam());
  TempDir dir(GetParam() ? "parity_fused" : "parity_composite");
  auto config = preset("tiny");
  Llama model(config);
  model->init_weights(7);
  save_checkpoint(dir / "ck", model, {});

  torch::manual_seed(3);
  auto inputs = torch::randint(config.vocab_size, {2, 80}, torch::kInt64);
  auto targets = torch::randint(config.vocab_size, {2, 80}, torch::kInt64);
  targets.index_put_({1, torch::indexing::Slice(70, 80)}, -100);  // padding
  safetensors::write(dir / "batch.safetensors",
                     {{"inputs", safetensors::DType::I64, {2, 80}, inputs.data_ptr()},
                      {"targets", safetensors::DType::I64, {2, 80}, targets.data_ptr()}});

  const std::string cmd = fmt::format(
      "/usr/bin/python3 {}/tests/reference/llama_ref.py parity {} {} {} --steps 10 --lr 1e-3",
      test::source_dir(), (dir / "ck").string(), (dir / "batch.safetensors").string(),
      (dir / "ref.safetensors").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  safetensors::File ref_file(dir / "ref.safetensors");
  const auto& ref = ref_file.view();
  auto get = [&](const std::string& name) {
    const auto* t = ref.find(name);
    EXPECT_NE(t, nullptr) << name;
    auto bytes = ref.data(*t);
    auto dtype = t->dtype == safetensors::DType::F64 ? torch::kFloat64 : torch::kFloat32;
    return torch::from_blob(const_cast<std::byte*>(bytes.data()), t->shape, dtype).clone();
  };

  // Forward and backward on the batch.
  auto logits = model->logits(inputs);
  auto loss = model->loss(inputs, targets);
  loss.backward();
  const auto ref_logits = get("logits");
  EXPECT_LT(rel_error(logits, ref_logits), 1e-4);
  EXPECT_LT((logits - ref_logits).abs().max().item<double>(),
            1e-4 * ref_logits.abs().max().item<double>());
  const double ref_loss = get("loss").item<double>();
  EXPECT_LT(std::abs(loss.item<double>() - ref_loss) / ref_loss, 1e-4);
  for (const auto& [name, p] : model->ordered_parameters()) {
    EXPECT_LT(rel_error(p.grad(), get("grad." + name)), 1e-3) << name;
  }

  // Ten AdamW steps, clipping at 1.0, constant lr.
  TrainOptions opt;
  opt.schedule = {.lr = 1e-3, .warmup_steps = 0, .total_steps = 0};
  opt.grad_clip = 1.0;
  Trainer trainer(model, opt);
  const auto ref_losses = get("losses");
  for (int s = 0; s < 10; ++s) {
    const double l = trainer.step({{inputs, targets}}).loss;
    EXPECT_NEAR(l, ref_losses[s].item<double>(), 1e-4) << "step " << s;
  }
  ops::set_fused(true);
}

INSTANTIATE_TEST_SUITE_P(FusedAndComposite, Parity, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "fused" : "composite"; });

// The fused CPU kernels against the stock-op composites, values and gradients.
TEST(Ops, FusedMatchesComposite) {
  torch::manual_seed(11);
  auto run = [](bool fused) {
    ops::set_fused(fused);
    torch::manual_seed(5);
    auto x = torch::randn({3, 7, 32}, torch::requires_grad());
    auto w = (torch::rand({32}) + 0.5).requires_grad_();
    auto gu = torch::randn({3, 7, 80}, torch::requires_grad());
    auto q = torch::randn({2, 6, 3, 2, 16}, torch::requires_grad());  // [B, T, G, R, D]
    auto s = torch::randn({2, 3, 12, 6}, torch::requires_grad());
    auto s2 = torch::randn({2, 3, 8, 10}, torch::requires_grad());
    auto lg = torch::randn({10, 50}, torch::requires_grad());
    auto tg = torch::randint(50, {10}, torch::kInt64);
    tg[3] = -100;
    auto [cos, sin] = ops::rotary_tables(6, 16, 10000.0, torch::kCPU);
    std::vector<torch::Tensor> outs = {ops::rms_norm(x, w, 1e-6),     ops::swiglu(gu),
                                       ops::rotary(q, cos, sin),      ops::causal_softmax(s),
                                       ops::causal_softmax(s2, 2, 3), ops::cross_entropy(lg, tg)};
    torch::Tensor total = torch::zeros({});
    for (size_t i = 0; i < outs.size(); ++i) {
      total = total + (outs[i] * torch::randn_like(outs[i])).sum();
    }
    total.backward();
    std::vector<torch::Tensor> all = outs;
    for (auto* t : {&x, &w, &gu, &q, &s, &s2, &lg}) all.push_back(t->grad());
    ops::set_fused(true);
    return all;
  };
  const auto fused = run(true), composite = run(false);
  ASSERT_EQ(fused.size(), composite.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    EXPECT_LT(rel_error(fused[i], composite[i]), 1e-5) << "output/grad #" << i;
  }
}

}  // namespace
}  // namespace bistro
