// Yuma Consensus conformance: scenarios replayed from subtensor's own tests (pallets/subtensor/src/
// tests/epoch.rs: test_bonds, test_yuma_3_*) with their expected values, plus properties that must
// hold for any state.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "bistro/chain/fixed.hpp"
#include "bistro/chain/weights.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/core/rng.hpp"

using namespace bistro::chain;

namespace {

// A subnet driven the way subtensor's tests drive it: set_weights at a block, then an epoch.
struct Subnet {
  EpochParams params;
  EpochState state;
  EpochResult last;

  Subnet(std::vector<uint64_t> stake, uint64_t block) {
    size_t n = stake.size();
    state.stake = std::move(stake);
    state.last_update.assign(n, 0);
    state.block_at_registration.assign(n, block);
    state.validator_permit.assign(n, false);
    state.weights.assign(n, {});
    state.bonds.assign(n, {});
    params.block = block;
  }
  void set_weights(uint16_t uid, std::vector<uint16_t> uids, std::vector<uint16_t> values) {
    std::vector<uint16_t> up = max_upscale(values);
    SparseRow row;
    for (size_t k = 0; k < uids.size(); ++k) row.emplace_back(uids[k], up[k]);
    state.weights[uid] = row;
    state.last_update[uid] = params.block;
  }
  void epoch() {
    last = run_epoch(params, state);
    state.validator_permit = last.validator_permit;
    for (size_t i = 0; i < last.bonds.size(); ++i)
      if (last.bonds[i]) state.bonds[i] = *last.bonds[i];
  }
  void next_block() { ++params.block; }
  uint16_t bond(size_t i, uint16_t j) const {
    for (auto [k, v] : state.bonds[i])
      if (k == j) return v;
    return 0;
  }
};

}  // namespace

TEST(Fixed, RoundingMatchesSubstrateFixed) {
  // Products floor (also for negatives), quotients truncate toward zero, x / 0 = 0.
  EXPECT_EQ(sat_mul(I32F32::from_bits(-1), I32F32::from_bits(1)).bits, -1);
  EXPECT_EQ(safe_div(I32F32::from_int(1), I32F32::from_int(3)).bits, 1431655765);
  EXPECT_EQ(safe_div(I32F32::from_int(-1), I32F32::from_int(3)).bits, -1431655765);
  EXPECT_EQ(safe_div(I32F32::from_int(5), I32F32::zero()), I32F32::zero());
  EXPECT_EQ(proportion_to_u16(I32F32::one()), 65535);
  EXPECT_EQ(proportion_to_u16(safe_div(I32F32::from_int(1), I32F32::from_int(2))), 32767);
  EXPECT_EQ(sat_add(I32F32::max(), I32F32::one()), I32F32::max());
}

TEST(Fixed, ExpIsAccurateAndClamped) {
  for (double x : {-19.5, -3.25, -1.0, -0.5, 0.0, 0.125, 1.0, 2.5, 10.0, 19.0}) {
    I32F32 fx = I32F32::from_bits(static_cast<int64_t>(x * 4294967296.0));
    EXPECT_NEAR(exp_safe(fx).to_double(), std::exp(x), std::exp(x) * 1e-8 + 1e-9) << x;
  }
  EXPECT_EQ(exp_safe(I32F32::from_int(-50)), exp_safe(I32F32::from_int(-20)));
  EXPECT_EQ(exp_safe(I32F32::from_int(50)), exp_safe(I32F32::from_int(20)));
}

TEST(Weights, MaxUpscaleMatchesSubtensor) {
  EXPECT_EQ(max_upscale({16383, 32767, 49149, 65535}),
            (std::vector<uint16_t>{16383, 32767, 49149, 65535}));
  EXPECT_EQ(max_upscale({1, 2}), (std::vector<uint16_t>{32768, 65535}));  // 32767.5 rounds up
  EXPECT_EQ(max_upscale({0, 0}), (std::vector<uint16_t>{0, 0}));
  EXPECT_EQ(max_upscale({32767, 0}), (std::vector<uint16_t>{65535, 0}));
  auto w = weights_from_scores({0.0, 0.5, 1.0, -1.0});
  EXPECT_EQ(w.uids, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(w.values, (std::vector<uint16_t>{32768, 65535}));
}

TEST(Weights, SetWeightsRulesUseSubtensorErrorNames) {
  WeightRules rules{.subnet_n = 4, .min_allowed_weights = 2, .version_key = 3, .rate_limit = 10};
  Caller v{.uid = 0, .validator_permit = true, .last_update = 100};
  auto check = [&](Caller c, std::vector<uint16_t> u, std::vector<uint16_t> w, uint64_t key = 3,
                   uint64_t block = 200) { return check_set_weights(rules, c, u, w, key, block); };
  EXPECT_EQ(check(v, {1, 2}, {1}), "WeightVecNotEqualSize");
  EXPECT_EQ(check(Caller{}, {1, 2}, {1, 1}), "HotKeyNotRegisteredInSubNet");
  EXPECT_EQ(check(v, {1, 2}, {1, 1}, 2), "IncorrectWeightVersionKey");
  EXPECT_EQ(check(v, {1, 2}, {1, 1}, 3, 105), "SettingWeightsTooFast");
  EXPECT_EQ(check(Caller{.uid = 1}, {2, 3}, {1, 1}), "NeuronNoValidatorPermit");
  EXPECT_EQ(check(v, {1, 1}, {1, 1}), "DuplicateUids");
  EXPECT_EQ(check(v, {1, 9}, {1, 1}), "UidVecContainInvalidOne");
  EXPECT_EQ(check(v, {1}, {1}), "WeightVecLengthIsLow");
  EXPECT_EQ(check(v, {1, 2}, {1, 1}), std::nullopt);
  EXPECT_EQ(check(Caller{.uid = 1}, {1}, {5}), std::nullopt);  // a self-weight needs no permit
  rules.max_weight_limit = 40000;  // ~61%: one uid taking everything is refused
  EXPECT_EQ(check(v, {1, 2}, {65535, 1}), "MaxWeightExceeded");
}

// subtensor tests/epoch.rs::test_bonds: classic bonds, 4 validators staking 1..4, 4 servers.
TEST(Yuma, SubtensorTestBondsClassic) {
  Subnet s({1, 2, 3, 4, 0, 0, 0, 0}, 1);
  s.params.tempo = 1;
  s.params.yuma3 = false;
  s.params.max_validators = 8;
  s.params.bonds_penalty = 65535;
  s.epoch();  // issues validator permits
  s.next_block();
  for (uint16_t uid = 0; uid < 4; ++uid)
    s.set_weights(uid, {4, 5, 6, 7}, {65535 / 4, 65535 / 2, (65535 / 4) * 3, 65535});
  s.epoch();
  EXPECT_EQ(s.bond(0, 4), 16383);
  EXPECT_EQ(s.bond(1, 4), 32767);
  EXPECT_EQ(s.bond(2, 4), 49151);
  EXPECT_EQ(s.bond(3, 4), 65535);

  auto step = [&](uint16_t col, std::vector<uint16_t> expected) {
    s.next_block();
    s.epoch();
    for (uint16_t i = 0; i < 4; ++i)
      EXPECT_EQ(s.bond(i, col), expected[i]) << "block " << s.params.block;
  };
  s.set_weights(0, {0}, {65535});
  step(4, {14582, 32767, 49151, 65535});
  s.set_weights(1, {1}, {65535});
  step(4, {12603, 28321, 49151, 65535});
  s.set_weights(2, {2}, {65535});
  step(7, {12602, 28320, 49150, 65535});
  s.set_weights(2, {7}, {65535});
  step(7, {10951, 24609, 49150, 65535});
  step(7, {9559, 21482, 49150, 65535});
  step(7, {8376, 18824, 49150, 65535});
}

namespace {
Subnet yuma3_scenario(std::vector<uint64_t> stakes) {
  Subnet s(std::move(stakes), 1);
  s.params.tempo = 1;
  s.params.yuma3 = true;
  s.params.liquid_alpha = true;
  s.params.bonds_penalty = 0;
  s.params.alpha_sigmoid_steepness = 1000;
  s.params.bonds_moving_average = 975000;
  s.params.kappa = 65535 / 2;
  s.params.alpha_low = 6553;  // set_alpha_values_32(0.1, 0.3)
  s.params.alpha_high = 19660;
  s.params.max_validators = 3;
  s.next_block();
  s.epoch();
  return s;
}

void expect_epoch(Subnet& s, const std::vector<std::vector<double>>& bonds,
                  const std::vector<double>& dividends) {
  s.next_block();
  s.epoch();
  for (size_t i = 0; i < 3; ++i)
    for (uint16_t j = 3; j < 5; ++j)
      EXPECT_NEAR(u16_proportion(s.bond(i, j)).to_double(), bonds[i][j - 3], 1e-3)
          << "bond " << i << "," << j << " at block " << s.params.block;
  for (size_t i = 0; i < dividends.size(); ++i)
    EXPECT_NEAR(u16_proportion(s.last.dividends[i]).to_double(), dividends[i], 1e-3)
        << "dividend " << i << " at block " << s.params.block;
}
}  // namespace

// subtensor tests/epoch.rs::test_yuma_3_kappa_moves_first (liquid alpha on).
TEST(Yuma, SubtensorYuma3KappaMovesFirst) {
  Subnet s = yuma3_scenario({8, 1, 1, 0, 0});
  const uint16_t M = 65535;
  auto all = [&](std::vector<std::vector<uint16_t>> w) {
    for (uint16_t uid = 0; uid < 3; ++uid) s.set_weights(uid, {3, 4}, w[uid]);
  };
  all({{M, 0}, {M, 0}, {M, 0}});
  expect_epoch(s, {{0.1013, 0}, {0.1013, 0}, {0.1013, 0}}, {0.8, 0.1, 0.1, 0, 0});
  all({{0, M}, {M, 0}, {M, 0}});
  expect_epoch(s, {{0.0908, 0.1013}, {0.3697, 0}, {0.3697, 0}}, {1.0, 0, 0, 0, 0});
  all({{0, M}, {0, M}, {M, 0}});
  expect_epoch(s, {{0.0815, 0.1924}, {0.3170, 0.1013}, {0.5580, 0}}, {0.9382, 0.0618, 0, 0, 0});
  all({{0, M}, {0, M}, {0, M}});
  expect_epoch(s, {{0.0731, 0.2742}, {0.2765, 0.1924}, {0.4306, 0.1013}},
               {0.8819, 0.0773, 0.0407, 0, 0});
  expect_epoch(s, {{0.0656, 0.3478}, {0.2435, 0.2742}, {0.3589, 0.1924}},
               {0.8564, 0.0844, 0.0592, 0, 0});
  expect_epoch(s, {{0.0588, 0.4139}, {0.2157, 0.3478}, {0.3089, 0.2742}},
               {0.8418, 0.0884, 0.0697, 0, 0});
}

// subtensor tests/epoch.rs::test_yuma_3_liquid_alpha_disabled.
TEST(Yuma, SubtensorYuma3LiquidAlphaDisabled) {
  Subnet s = yuma3_scenario({33, 33, 34, 0, 0});
  s.params.liquid_alpha = false;
  const uint16_t M = 65535;
  auto all = [&](std::vector<std::vector<uint16_t>> w) {
    for (uint16_t uid = 0; uid < 3; ++uid) s.set_weights(uid, {3, 4}, w[uid]);
  };
  std::vector<std::vector<std::vector<double>>> bonds = {
      {{0.0250, 0}, {0.0250, 0}, {0.0250, 0}},      {{0.0494, 0}, {0.0494, 0}, {0.0494, 0}},
      {{0.0731, 0}, {0.0731, 0}, {0.0481, 0.0250}}, {{0.0963, 0}, {0.0963, 0}, {0.0719, 0.0244}},
      {{0.1189, 0}, {0.1189, 0}, {0.0951, 0.0238}}, {{0.1409, 0}, {0.1409, 0}, {0.1178, 0.0232}}};
  std::vector<std::vector<double>> dividends = {
      {0.33, 0.33, 0.34, 0, 0},       {0.33, 0.33, 0.34, 0, 0},
      {0.3734, 0.3734, 0.2532, 0, 0}, {0.3611, 0.3611, 0.2779, 0, 0},
      {0.3541, 0.3541, 0.2919, 0, 0}, {0.3495, 0.3495, 0.3009, 0, 0}};
  for (size_t e = 0; e < bonds.size(); ++e) {
    if (e == 2)
      all({{M, 0}, {M, 0}, {0, M}});
    else
      all({{M, 0}, {M, 0}, {M, 0}});
    expect_epoch(s, bonds[e], dividends[e]);
  }
}

namespace {
// A random subnet: `validators` staked uids with random dense weights over all uids.
Subnet random_subnet(uint64_t seed, size_t n, size_t validators, bool yuma3) {
  bistro::rng::Stream rng(seed);
  std::vector<uint64_t> stake(n, 0);
  for (size_t i = 0; i < validators; ++i) stake[i] = 1000 + rng.below(1'000'000);
  Subnet s(stake, 1);
  s.params.tempo = 1;
  s.params.yuma3 = yuma3;
  s.params.max_validators = static_cast<uint16_t>(validators);
  s.epoch();
  s.next_block();
  for (uint16_t i = 0; i < validators; ++i) {
    std::vector<uint16_t> uids, vals;
    for (uint16_t j = 0; j < n; ++j) {
      uids.push_back(j);
      vals.push_back(static_cast<uint16_t>(rng.below(65536)));
    }
    s.set_weights(i, uids, vals);
  }
  return s;
}
}  // namespace

TEST(Yuma, IncentiveSumsToOneWhenAnyWeightIsSet) {
  for (bool yuma3 : {false, true})
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      Subnet s = random_subnet(seed, 32, 8, yuma3);
      s.epoch();
      uint64_t total =
          std::accumulate(s.last.incentive.begin(), s.last.incentive.end(), uint64_t{0});
      EXPECT_NEAR(static_cast<double>(total), 65535.0, 32.0) << "seed " << seed;  // u16 floors
      uint64_t emitted = 0;
      for (size_t i = 0; i < 32; ++i)
        emitted += s.last.server_emission[i] + s.last.validator_emission[i];
      EXPECT_NEAR(static_cast<double>(emitted), 1e9, 1e3);
    }
}

TEST(Yuma, DissentingValidatorLosesValidatorTrust) {
  // Three validators agree on miner 4; one minority validator puts everything on miner 5.
  Subnet s({100, 100, 100, 50, 0, 0}, 1);
  s.params.tempo = 1;
  s.params.max_validators = 4;
  s.epoch();
  s.next_block();
  for (uint16_t v = 0; v < 3; ++v) s.set_weights(v, {4, 5}, {65535, 6553});
  s.set_weights(3, {5}, {65535});
  s.epoch();
  for (uint16_t v = 0; v < 3; ++v) EXPECT_GT(s.last.validator_trust[v], 60000);
  EXPECT_LT(s.last.validator_trust[3], 10000);
  EXPECT_GT(s.last.incentive[4], s.last.incentive[5]);
  EXPECT_LT(s.last.dividends[3], s.last.dividends[0]);
}

TEST(Yuma, ClippingCapsALoneValidatorsOverweightedMiner) {
  // A small validator gives all its weight to miner 5; the majority gives 5 nothing.
  Subnet s({900, 100, 0, 0, 0, 0}, 1);
  s.params.tempo = 1;
  s.params.max_validators = 2;
  s.epoch();
  s.next_block();
  s.set_weights(0, {2, 3, 4}, {65535, 65535, 65535});
  s.set_weights(1, {5}, {65535});
  s.epoch();
  EXPECT_EQ(s.last.consensus[5], 0);
  EXPECT_EQ(s.last.incentive[5], 0);  // clipped to consensus: nothing reaches miner 5
  EXPECT_GT(s.last.incentive[2], 20000);
}

TEST(Yuma, NoWeightsPaysValidatorsByStakeAndInactiveStakeIsIgnored) {
  Subnet s({300, 100, 0}, 10);
  s.params.tempo = 1;
  s.params.max_validators = 2;
  s.epoch();
  EXPECT_EQ(s.last.incentive, (std::vector<uint16_t>{0, 0, 0}));
  EXPECT_NEAR(static_cast<double>(s.last.validator_emission[0]), 0.75e9, 1.0);
  EXPECT_NEAR(static_cast<double>(s.last.validator_emission[1]), 0.25e9, 1.0);
  // Past the activity cutoff, a validator's weights no longer count.
  s.params.activity_cutoff = 5;
  s.next_block();
  s.set_weights(0, {2}, {65535});
  s.params.block = 100;
  s.epoch();
  EXPECT_FALSE(s.last.active[0]);
  EXPECT_EQ(s.last.incentive[2], 0);
}

TEST(Yuma, EpochScheduleIsSubtensors) {
  // (block + netuid + 1) % (tempo + 1) == 0
  EXPECT_TRUE(is_epoch_block(360, 0, 360));
  EXPECT_FALSE(is_epoch_block(359, 0, 360));
  EXPECT_TRUE(is_epoch_block(359, 1, 360));
  EXPECT_TRUE(is_epoch_block(359 + 361, 1, 360));
  EXPECT_FALSE(is_epoch_block(5, 1, 0));
}
