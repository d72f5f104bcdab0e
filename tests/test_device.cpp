// The device paths against the CPU's. BISTRO_TEST_DEVICE names the device under test (default
// "cpu": then the same code runs on the CPU twice, which CI covers; bench/device_check.sh sets
// "cuda" on a GPU machine). What must be bit-exact between nodes (the outer step, the hash) is
// checked bit for bit; training is held to the CPU's within float tolerances.
#include <gtest/gtest.h>

#include <cstdlib>

#include "bistro/compress/error_feedback.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/runtime/runtime.hpp"
#include "bistro/train/trainer.hpp"
#include "bistro/validator/scoring.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {
using test::rel_error;

Compute device_under_test(bool bf16) {
  const char* d = std::getenv("BISTRO_TEST_DEVICE");
  return parse_compute(d ? d : "cpu", bf16 ? "bf16" : "fp32");
}

Llama tiny_on(const Compute& c) {
  Llama m(preset("tiny"));
  m->init_weights(7);
  m->to(c.device);
  m->set_bf16(c.bf16);
  return m;
}

Batch batch_of(int64_t seed) {
  torch::manual_seed(seed);
  auto ids = torch::randint(8192, {4, 65}, torch::kInt64);
  return {ids.narrow(1, 0, 64).contiguous(), ids.narrow(1, 1, 64).contiguous()};
}

TrainOptions cpu_options() {
  TrainOptions o;
  o.schedule.lr = 1e-3;
  return o;
}

// Three AdamW steps of the same tiny model from the same batches, on the device under test (in
// fp32 or bf16) and on the CPU in fp32; each step's losses are held within `tolerance` of each
// other. Returns the device's trainer.
Trainer train_beside_the_cpu(bool bf16, double tolerance, Trainer& cpu_trainer) {
  Trainer a(tiny_on(device_under_test(bf16)), cpu_options());
  for (int i = 0; i < 3; ++i) {
    const auto batch = batch_of(i);
    const double la = a.step({batch}).loss, lb = cpu_trainer.step({batch}).loss;
    EXPECT_NEAR(la, lb, tolerance * lb) << "step " << i;
  }
  return a;
}

// fp32 on the device follows the CPU within 1e-4, in loss and in weights.
TEST(Device, Fp32TrainingFollowsTheCpu) {
  Trainer b(tiny_on(Compute{}), cpu_options());
  Trainer a = train_beside_the_cpu(false, 1e-4, b);
  const auto pa = a.model()->ordered_parameters(), pb = b.model()->ordered_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_LT(rel_error(pa[i].second.cpu(), pb[i].second), 1e-4) << pa[i].first;
}

// bf16 autocast on the device: the loss within 1% of fp32 on the CPU, parameters still fp32.
TEST(Device, Bf16TrainingTracksFp32) {
  Trainer b(tiny_on(Compute{}), cpu_options());
  Trainer a = train_beside_the_cpu(true, 0.01, b);
  for (auto& [name, p] : a.model()->ordered_parameters())
    EXPECT_EQ(p.scalar_type(), torch::kFloat32) << name;
}

// The outer step of a theta held on the device lands on the same bits as on the CPU (it runs on
// CPU copies: docs/protocol.md, "Devices and precision"), and so does a scored update's
// apply-and-restore.
TEST(Device, OuterStepAndHashAreTheCpusBits) {
  const Compute dev = device_under_test(false), cpu;
  Llama on_dev = tiny_on(dev), on_cpu = tiny_on(cpu);
  const auto pd = parameter_tensors(on_dev), pc = parameter_tensors(on_cpu);
  ASSERT_EQ(params_hash(pd), params_hash(pc));
  std::vector<Update> ups;
  for (int m = 0; m < 3; ++m) {
    ErrorFeedback ef(on_cpu->ordered_parameters(), {.k = 16});
    std::vector<torch::Tensor> delta;
    torch::manual_seed(100 + m);
    for (const auto& p : pc) delta.push_back(torch::randn_like(p) * 1e-2);
    ups.push_back(ef.encode(delta));
  }
  std::vector<PeerUpdate> peers;
  for (int m = 0; m < 3; ++m) peers.push_back({static_cast<uint16_t>(m + 1), &ups[m]});
  outer_step(pd, peers, 0.8);
  outer_step(pc, peers, 0.8);
  EXPECT_EQ(params_hash(pd), params_hash(pc));
  const std::string before = params_hash(pd);
  const std::vector<double> ones(pd.size(), 1.0);
  auto saved_d = apply_alone(pd, ups[0], 0.8, ones);
  auto saved_c = apply_alone(pc, ups[0], 0.8, ones);
  EXPECT_EQ(params_hash(pd), params_hash(pc));
  restore_alone(pd, ups[0], saved_d);
  restore_alone(pc, ups[0], saved_c);
  EXPECT_EQ(params_hash(pd), before);
}

// A miner's pseudo-gradient: theta on the CPU, the trained weights on the device.
TEST(Device, PseudoGradientCrossesDevices) {
  const Compute dev = device_under_test(false), cpu;
  Llama start = tiny_on(cpu), now = tiny_on(dev);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : parameter_tensors(now)) p.add_(0.5);
  }
  const auto g = pseudo_gradient(parameter_tensors(start), parameter_tensors(now));
  for (const auto& t : g) {
    EXPECT_TRUE(t.device().is_cpu());
    EXPECT_NEAR(t.mean().item<double>(), -0.5, 1e-6);
  }
}

}  // namespace
}  // namespace bistro
