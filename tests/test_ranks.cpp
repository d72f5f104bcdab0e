// A node's ranks over c10d's gloo, two ranks as two threads of this process.
// A miner's (miner/ranks.hpp): rank 0 drives its inner loop as the miner does and rank 1 follows;
// both end with the parameters and AdamW state of one trainer that takes both ranks' micro-batches
// in each step (DDP semantics), within fp32 tolerance.
// A validator's (validator/ranks.hpp): its scorer with a second rank makes the observations of
// one rank, bit for bit, and so the same verdicts.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "bistro/compress/error_feedback.hpp"
#include "bistro/core/error.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/miner/ranks.hpp"
#include "bistro/miner/window_batches.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/runtime/distributed.hpp"
#include "bistro/train/text_batches.hpp"
#include "bistro/validator/judge.hpp"
#include "bistro/validator/ranks.hpp"
#include "bistro/validator/scoring.hpp"
#include "model_test_util.hpp"

namespace bistro {
namespace {

std::vector<Batch> stream(int n) {
  TextBatches data(bundled_text(), 2, 32, 7);
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i) out.push_back(data.next());
  return out;
}

Trainer trainer(uint64_t seed) {
  Llama m(preset("tiny"));
  m->init_weights(seed);
  TrainOptions o;
  o.schedule = {.lr = 3e-3, .warmup_steps = 1, .total_steps = 10, .min_lr_ratio = 0.1};
  return Trainer(m, o);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

// Slot j of rank r: the own micro-batches first, as many slots as there are of them (each N
// times over), then N fresh ones a slot; one rank reads slot j at j.
TEST(Ranks, StreamIndexGivesTheOwnPagesTheirStepsThenFreshOnes) {
  for (int64_t j = 0; j < 20; ++j) EXPECT_EQ(stream_index(j, 0, 1, 6), j);
  std::vector<int64_t> r0, r1;
  for (int64_t j = 0; j < 8; ++j) r0.push_back(stream_index(j, 0, 2, 6));
  for (int64_t j = 0; j < 8; ++j) r1.push_back(stream_index(j, 1, 2, 6));
  EXPECT_EQ(r0, (std::vector<int64_t>{0, 2, 4, 0, 2, 4, 6, 8}));
  EXPECT_EQ(r1, (std::vector<int64_t>{1, 3, 5, 1, 3, 5, 7, 9}));
}

// The miner's rebase: progress made from its own weights moves onto theta_w, nothing else.
TEST(Ranks, ARebaseMovesTheProgressOntoTheNewStart) {
  const std::vector<torch::Tensor> from = {torch::tensor({1.0f, 2.0f}), torch::tensor({3.0f})};
  const std::vector<torch::Tensor> onto = {torch::tensor({1.5f, 1.0f}), torch::tensor({0.0f})};
  const std::vector<torch::Tensor> now = {torch::tensor({0.75f, 2.5f}), torch::tensor({2.0f})};
  const auto kept = clone_parameters(from);
  rebase_parameters(now, from, onto);
  EXPECT_TRUE(torch::equal(now[0], torch::tensor({1.25f, 1.5f})));  // onto + (now - from)
  EXPECT_TRUE(torch::equal(now[1], torch::tensor({-1.0f})));
  EXPECT_TRUE(torch::equal(kept[0], from[0]));  // the clone is a copy, and from is untouched
  EXPECT_FALSE(kept[0].is_same(from[0]));
  EXPECT_THROW(rebase_parameters(now, {from[0]}, onto), Error);
}

TEST(Ranks, ATwoRankMinerTakesTheStepsOfOneTrainerOnBothMicroBatches) {
  const auto batches = stream(16);
  constexpr int64_t kOwn = 16;  // past every slot used here: slot j reads 2j + r
  const int port = free_port();
  if (!runtime::distributed_available()) {  // a build without gloo refuses, by name
    try {
      runtime::Ranks r({.rank = 0, .world_size = 2, .master_port = port}, std::chrono::seconds(5));
      FAIL() << "a group of two formed without gloo";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no c10d gloo"), std::string::npos) << e.what();
    }
    return;
  }
  constexpr int kSteps = 4;
  // Rank 0 sends its weights (SetParams, with AdamW's state), takes a step as the miner does
  // while record(w-1) is not out, moves that step's progress onto other weights (the rebase:
  // SetParams again, weights only) and takes the rest of its inner steps.
  std::vector<torch::Tensor> theta0, ef_rank1;
  std::vector<torch::Tensor> m0, m1, v0, v1;
  int64_t steps1 = 0;
  std::thread follower([&] {
    runtime::Ranks g({.rank = 1, .world_size = 2, .master_port = port}, std::chrono::seconds(30));
    Trainer t = trainer(99);  // other initial weights: SetParams must replace them
    MinerRanks r(g, t);
    r.follow([&](uint64_t key, int64_t slot) -> const Batch& {
      EXPECT_EQ(key, 1234u);
      return batches.at(static_cast<size_t>(r.index(slot, kOwn)));
    });
    ef_rank1 = parameter_tensors(t.model());
    m1 = t.optimizer().exp_avg(), v1 = t.optimizer().exp_avg_sq();
    steps1 = t.optimizer().steps();
  });
  runtime::Ranks g({.rank = 0, .world_size = 2, .master_port = port}, std::chrono::seconds(30));
  Trainer t = trainer(42);
  MinerRanks r(g, t);
  ASSERT_TRUE(r.active());
  ASSERT_TRUE(r.tell(RankOp::SetParams, 0, 0, /*full=*/true));
  // theta_w for the rebase: the start's weights scaled (any other weights would do).
  const auto base = clone_parameters(parameter_tensors(t.model()));
  std::vector<torch::Tensor> onto;
  for (const auto& p : base) onto.push_back(p * 0.99);
  r.tell(RankOp::Step, 1234, 0);
  t.step({batches.at(static_cast<size_t>(r.index(0, kOwn)))});
  rebase_parameters(parameter_tensors(t.model()), base, onto);
  r.tell(RankOp::SetParams);
  InnerLoopPlan plan;
  plan.max_steps = kSteps - 1;
  plan.batch = [&](int64_t i) -> const Batch& {
    return batches.at(static_cast<size_t>(r.index(1 + i, kOwn)));
  };
  plan.before_step = [&](int64_t i) { r.tell(RankOp::Step, 1234, 1 + i); };
  const auto result = inner_loop(t, plan);
  EXPECT_EQ(result.steps, kSteps - 1);
  r.tell(RankOp::Stop);
  follower.join();

  // The reference: one trainer, each step over micro-batches 2s and 2s + 1.
  Trainer ref = trainer(42);
  ref.step({batches[0], batches[1]});
  rebase_parameters(parameter_tensors(ref.model()), base, onto);
  for (int s = 1; s < kSteps; ++s)
    ref.step({batches[static_cast<size_t>(2 * s)], batches[static_cast<size_t>(2 * s + 1)]});
  const auto p0 = parameter_tensors(t.model()), pr = parameter_tensors(ref.model());
  EXPECT_LT(max_diff(p0, pr), 2e-5);        // fp32: the sums taken in another order
  EXPECT_LT(max_diff(ef_rank1, p0), 1e-7);  // the ranks agree exactly
  EXPECT_LT(max_diff(m1, t.optimizer().exp_avg()), 1e-7);
  EXPECT_LT(max_diff(v1, t.optimizer().exp_avg_sq()), 1e-7);
  EXPECT_EQ(steps1, t.optimizer().steps());
  EXPECT_EQ(t.optimizer().steps(), kSteps);
  EXPECT_GT(max_diff(p0, parameter_tensors(trainer(42).model())), 1e-4);  // it did train
  // Its pseudo-gradient from the start matches the reference's.
  const auto start = parameter_tensors(trainer(42).model());
  EXPECT_LT(max_diff(pseudo_gradient(start, p0), pseudo_gradient(start, pr)), 2e-5);
}

// Forms a group of two when this build can; otherwise checks that it refuses by name.
bool group_of_two_possible(int port) {
  if (runtime::distributed_available()) return true;
  try {
    runtime::Ranks r({.rank = 0, .world_size = 2, .master_port = port}, std::chrono::seconds(5));
    ADD_FAILURE() << "a group of two formed without gloo";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no c10d gloo"), std::string::npos) << e.what();
  }
  return false;
}

// An update alone as index writes sent to another rank (Delta) writes apply_alone's bits.
TEST(Ranks, ADeltaWritesTheBitsOfTheUpdateAppliedAlone) {
  NeuronHparams h;
  Llama theta(preset("tiny"));
  theta->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta);
  ErrorFeedback ef(theta->ordered_parameters(), {.k = h.topk});
  std::vector<torch::Tensor> d;
  torch::manual_seed(5);
  for (const auto& p : params) d.push_back(torch::randn_like(p) * 1e-2);
  const Update u = ef.encode(d);
  std::vector<double> scale(params.size(), 0.8);
  scale[1] = 0.3;
  const std::string before = params_hash(params);
  auto saved = apply_alone(params, u, 0.7, scale);
  const std::string alone = params_hash(params);
  restore_alone(params, u, saved);
  const Delta delta = delta_of(params, u, 0.7, scale);
  saved = apply_delta(params, delta);
  EXPECT_NE(params_hash(params), before);
  EXPECT_EQ(params_hash(params), alone);
  restore_delta(params, delta, saved);
  EXPECT_EQ(params_hash(params), before);
}

TEST(Ranks, ATwoRankValidatorMeasuresAsOneRank) {
  const int port = free_port();
  if (!group_of_two_possible(port)) return;
  NeuronHparams h;
  const LlamaConfig config = preset("tiny");
  Llama theta = trainer(42).model();
  const auto batches = stream(12);
  // Three miners: two trained on their own two micro-batches, one elsewhere.
  std::vector<std::vector<Batch>> own;
  std::vector<Update> ups;
  for (size_t m = 0; m < 3; ++m) {
    own.push_back({batches[2 * m], batches[2 * m + 1]});
    Trainer t = trainer(42);
    const std::vector<Batch> train = m == 2 ? std::vector<Batch>{batches[11]} : own.back();
    for (int s = 0; s < 4; ++s) t.step(train);
    ErrorFeedback e(theta->ordered_parameters(), {.k = h.topk});
    ups.push_back(
        e.encode(pseudo_gradient(parameter_tensors(theta), parameter_tensors(t.model()))));
  }
  // Three random micro-batches: the ranks take two and one.
  const std::vector<Batch> random = {batches[8], batches[9], batches[10]};
  std::vector<Observation> obs;
  for (uint16_t m = 0; m < 3; ++m)
    obs.push_back({static_cast<uint16_t>(m + 1), fmt::format("hk{}", m), "ok"});
  auto measure = [&](ScoringRanks* ranks, std::vector<Observation>& o) {
    WindowScorer s(theta, config, random, 1.0, ranks);
    for (size_t m = 0; m < 3; ++m) s.add(static_cast<uint16_t>(m + 1), &ups[m], own[m]);
    s.observe(o, {});
    return s.forward_batches();
  };
  int follower_ops = 0;
  std::thread follower([&] {
    runtime::Ranks g({.rank = 1, .world_size = 2, .master_port = port}, std::chrono::seconds(30));
    Llama other = trainer(99).model();  // other weights: the scorer's theta must replace them
    ScoringRanks r(g);
    EXPECT_FALSE(r.active());
    r.follow(other);
    follower_ops = 1;
  });
  auto two = obs;
  uint64_t forwards = 0;
  {
    runtime::Ranks g({.rank = 0, .world_size = 2, .master_port = port}, std::chrono::seconds(30));
    ScoringRanks r(g);
    ASSERT_TRUE(r.active());
    forwards = measure(&r, two);
    EXPECT_TRUE(r.active());                      // nothing failed
    EXPECT_GT(r.shared_batches(), forwards / 3);  // rank 1 took its share
    EXPECT_EQ(r.deltas_sent(), 3u);  // each update's step once, however often it served
  }                                  // Stop
  follower.join();
  EXPECT_EQ(follower_ops, 1);
  auto one = obs;
  EXPECT_EQ(measure(nullptr, one), forwards);
  for (size_t i = 0; i < obs.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(two[i].d_own, one[i].d_own);
    EXPECT_EQ(two[i].d_random, one[i].d_random);
    EXPECT_EQ(std::isnan(two[i].d_cross), std::isnan(one[i].d_cross));
    if (!std::isnan(one[i].d_cross)) {
      EXPECT_EQ(two[i].d_cross, one[i].d_cross);
    }
    EXPECT_EQ(two[i].own_margin.n, one[i].own_margin.n);
    EXPECT_EQ(two[i].own_margin.mean, one[i].own_margin.mean);
    EXPECT_EQ(two[i].random.mean, one[i].random.mean);
    EXPECT_EQ(two[i].placebo.mean, one[i].placebo.mean);
  }
  EXPECT_GT(one[0].margin(), 0);  // a real measurement: the trained miners show their pages
  std::map<std::string, Rating> r1, r2;
  const auto p = gauntlet_params(h);
  const auto v1 = judge_window(one, r1, p, 5), v2 = judge_window(two, r2, p, 5);
  ASSERT_EQ(v1.size(), v2.size());
  int passed = 0;
  for (size_t i = 0; i < v1.size(); ++i) {
    EXPECT_EQ(v1[i].uid, v2[i].uid);
    EXPECT_EQ(v1[i].passed, v2[i].passed);
    EXPECT_EQ(v1[i].admitted, v2[i].admitted);
    EXPECT_EQ(v1[i].score, v2[i].score);
    EXPECT_EQ(v1[i].reason, v2[i].reason);
    passed += v1[i].passed;
  }
  EXPECT_GT(passed, 0);
}

}  // namespace
}  // namespace bistro
