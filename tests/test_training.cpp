#include "bistro/train/trainer.hpp"

#include <gtest/gtest.h>

#include "bistro/core/error.hpp"
#include "bistro/train/checkpoint.hpp"
#include "bistro/train/text_batches.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {
using test::TempDir;

std::vector<Batch> fixed_batches(int n) {
  TextBatches data(bundled_text(), 4, 64, 99);
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(data.next());
  return out;
}

TrainOptions options() {
  TrainOptions o;
  o.schedule = {.lr = 3e-3, .warmup_steps = 2, .total_steps = 8, .min_lr_ratio = 0.1};
  return o;
}

Trainer fresh_trainer() {
  Llama m(preset("tiny"));
  m->init_weights(42);
  return Trainer(m, options());
}

TEST(Training, LossDecreasesOnText) {
  auto batches = fixed_batches(1);
  auto t = fresh_trainer();
  const double first = t.step({batches[0]}).loss;
  double last = first;
  for (int i = 0; i < 7; ++i) last = t.step({batches[0]}).loss;
  EXPECT_LT(last, first - 0.5);
  EXPECT_NEAR(first, std::log(8192.0), 0.3);  // untrained: near uniform over the vocabulary
}

// bf16 autocast from the same weights and batch as fp32: matrix products keep 8 bits of mantissa
// (~0.4% per product), so the loss agrees within 1%, every parameter's gradient within a cosine of
// 0.99, and after 8 steps the loss within 2%. The parameters and AdamW's state stay fp32.
TEST(Training, ABf16StepTracksTheFp32Step) {
  auto batches = fixed_batches(1);
  struct Run {
    std::vector<double> losses;
    std::vector<torch::Tensor> grads;
    Trainer trainer;
  };
  auto run = [&](bool bf16) {
    Run r{{}, {}, fresh_trainer()};
    r.trainer.model()->set_bf16(bf16);
    for (int i = 0; i < 8; ++i) {
      r.losses.push_back(r.trainer.step({batches[0]}).loss);
      if (i == 0)
        for (auto& [name, p] : r.trainer.model()->ordered_parameters())
          r.grads.push_back(p.grad().clone());
    }
    return r;
  };
  const auto fp32 = run(false), bf16 = run(true);
  EXPECT_NE(fp32.losses[0], bf16.losses[0]);  // autocast really ran in bf16
  EXPECT_NEAR(bf16.losses[0], fp32.losses[0], 0.01 * fp32.losses[0]);
  EXPECT_NEAR(bf16.losses.back(), fp32.losses.back(), 0.02 * fp32.losses.back());
  EXPECT_LT(bf16.losses.back(), bf16.losses[0] - 0.5);
  for (size_t i = 0; i < fp32.grads.size(); ++i) {
    const double cos = torch::cosine_similarity(fp32.grads[i].flatten(), bf16.grads[i].flatten(), 0)
                           .item<double>();
    EXPECT_GT(cos, 0.99) << "gradient #" << i;
  }
  Llama& m = const_cast<Trainer&>(bf16.trainer).model();
  for (auto& [name, p] : m->ordered_parameters())
    EXPECT_EQ(p.scalar_type(), torch::kFloat32) << name;
  torch::NoGradGuard no_grad;
  EXPECT_EQ(m->logits(batches[0].inputs).scalar_type(), torch::kBFloat16);
  m->set_bf16(false);
  EXPECT_EQ(m->logits(batches[0].inputs).scalar_type(), torch::kFloat32);
}

TEST(Training, AGradientGatheredOverTimeStepsAsOneStepOverItsMicroBatches) {
  // Gradients gathered one micro-batch at a time step as one step over them all.
  auto batches = fixed_batches(2);
  auto a = fresh_trainer(), b = fresh_trainer();
  const auto one = a.step({batches[0], batches[1]});
  b.accumulate(batches[0]);
  b.accumulate(batches[1]);
  EXPECT_EQ(b.accumulated(), 2);
  const auto gathered = b.step_accumulated();
  EXPECT_EQ(b.accumulated(), 0);
  EXPECT_NEAR(gathered.loss, one.loss, 1e-5);
  EXPECT_NEAR(gathered.grad_norm, one.grad_norm, 1e-4 * one.grad_norm);
  EXPECT_EQ(gathered.tokens, one.tokens);
  auto pa = a.model()->ordered_parameters(), pb = b.model()->ordered_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::allclose(pa[i].second, pb[i].second, 1e-5, 1e-6)) << pa[i].first;
  EXPECT_THROW(b.step_accumulated(), Error);  // nothing gathered
}

TEST(Training, SameSeedAndDataGiveBitIdenticalLosses) {
  auto batches = fixed_batches(6);
  auto run = [&] {
    auto t = fresh_trainer();
    std::vector<double> losses;
    for (const auto& b : batches) losses.push_back(t.step({b}).loss);
    return losses;
  };
  EXPECT_EQ(run(), run());
}

TEST(Training, ResumeEqualsNotStopping) {
  TempDir dir("resume");
  auto batches = fixed_batches(6);
  auto straight = fresh_trainer();
  std::vector<double> expected;
  for (const auto& b : batches) expected.push_back(straight.step({b}).loss);

  auto first = fresh_trainer();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first.step({batches[i]}).loss, expected[i]);
  first.save(dir / "ck", {});

  Llama other(preset("tiny"));
  other->init_weights(1234);  // different weights: resume must overwrite all of them
  Trainer resumed(other, options());
  resumed.resume(dir / "ck");
  EXPECT_EQ(resumed.steps(), 3);
  for (int i = 3; i < 6; ++i) EXPECT_EQ(resumed.step({batches[i]}).loss, expected[i]) << i;
}

TEST(Training, MicroBatchesAccumulateTheExactMean) {
  auto batches = fixed_batches(2);
  auto whole = fresh_trainer();
  auto split = fresh_trainer();
  Batch joined{torch::cat({batches[0].inputs, batches[1].inputs}),
               torch::cat({batches[0].targets, batches[1].targets})};
  const auto a = whole.step({joined});
  const auto b = split.step({batches[0], batches[1]});
  EXPECT_NEAR(a.loss, b.loss, 1e-5);
  EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4 * a.grad_norm);
  EXPECT_EQ(a.tokens, b.tokens);
}

TEST(Training, ClippingBoundsTheUpdate) {
  std::vector<torch::Tensor> ps = {torch::zeros({3}), torch::zeros({4})};
  ps[0].mutable_grad() = torch::full({3}, 3.0);
  ps[1].mutable_grad() = torch::full({4}, 4.0);
  const double norm = clip_grad_norm(ps, 1.0);
  EXPECT_NEAR(norm, std::sqrt(27.0 + 64.0), 1e-5);  // fp32 norms
  const double after = torch::cat({ps[0].grad(), ps[1].grad()}).norm().item<double>();
  EXPECT_NEAR(after, 1.0, 1e-5);
}

TEST(Training, FusedAdamWMatchesStockOps) {
  torch::manual_seed(1);
  auto p1 = torch::randn({1000}), p2 = p1.clone().as_strided({1000}, {1});
  auto g = torch::randn({1000});
  // A non-contiguous view forces the stock-op path on the second optimizer.
  auto base = torch::zeros({2000});
  auto p2nc = base.as_strided({1000}, {2});
  p2nc.copy_(p1);
  p1.mutable_grad() = g.clone();
  p2nc.mutable_grad() = g.clone();
  AdamW a({p1}, {}), b({p2nc}, {});
  for (int i = 0; i < 5; ++i) {
    a.step(1e-2);
    b.step(1e-2);
  }
  EXPECT_LT(test::rel_error(p1, p2nc), 1e-6);
  (void)p2;
}

}  // namespace
}  // namespace bistro
