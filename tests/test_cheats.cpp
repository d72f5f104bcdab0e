// The cheats' update transforms and the dishonest validators' weights (cheats/cheats.hpp).
#include <gtest/gtest.h>

#include "bistro/chain/chain.hpp"
#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/update.hpp"
#include "bistro/validator/checks.hpp"

#include "noise_updates.hpp"

namespace bistro {
namespace {

using test::kSpecs;
using test::noise;

TEST(Cheats, NoiseUpdatesHaveTheWireLayoutAndTheRms) {
  const Update u = noise(1, 0.02f);
  UpdateExpectation e;
  e.codec = "sparseloco";
  e.k = 64;
  e.value_bits = 2;
  e.index_bits = 12;
  e.hotkey = "";
  e.params = kSpecs;
  auto signer = ed25519_signer({1});
  Update w = u;
  e.hotkey = to_hex(signer->public_key());
  const Update back = decode_update(encode_update(w, *signer), e, "noise");
  ASSERT_EQ(back.tensors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(update_rms(back)[i], 0.02f, 0.004f);
  EXPECT_NE(update_overlap(noise(1), noise(2)).indices, 1.0);
}

TEST(Cheats, PoisonReversesScalesAndClampsValuesAndLevels) {
  Update u = noise(3);
  const float v0 = u.tensors[0].val[0];
  poison_update(u, 1000.0f, 9000.0f);
  EXPECT_FLOAT_EQ(u.tensors[0].val[0], std::clamp(-1000.0f * v0, -9000.0f, 9000.0f));
  for (const auto& t : u.tensors)
    for (float v : t.val) EXPECT_NE(std::find(t.levels.begin(), t.levels.end(), v), t.levels.end());
  poison_update(u, 1e30f, 1e4f);
  for (float v : u.tensors[1].val) EXPECT_EQ(std::fabs(v), 1e4f);
}

TEST(Cheats, KindsParseAndUnknownNamesAreRefused) {
  for (auto b : cheat_kinds()) EXPECT_EQ(parse_behaviour(behaviour_name(b)), b);
  EXPECT_EQ(parse_behaviour("honest"), Behaviour::Honest);
  try {
    parse_behaviour("sneaky");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("poison-max"), std::string::npos) << e.what();
  }
}

TEST(Cheats, DishonestValidatorsWeightTheirOwnMinerOrTheConsensus) {
  EXPECT_EQ(parse_validator_behaviour("weight-copier"), ValidatorBehaviour::WeightCopier);
  EXPECT_STREQ(validator_behaviour_name(ValidatorBehaviour::SelfWeight), "self-weight");
  EXPECT_THROW(parse_validator_behaviour("lazy"), Error);
  // A slow validator is honest, a window behind: it judges and weighs as an honest one.
  EXPECT_EQ(parse_validator_behaviour("slow"), ValidatorBehaviour::Slow);
  EXPECT_TRUE(judges_honestly(ValidatorBehaviour::Slow));
  EXPECT_FALSE(judges_honestly(ValidatorBehaviour::AdmitAll));
  chain::Metagraph m;
  m.neurons.resize(5);
  for (uint16_t u = 0; u < 5; ++u) m.neurons[u].uid = u;
  const std::vector<uint16_t> miners{4, 2, 3};
  // Before any consensus a copier has nothing to copy; an honest validator never gets weights here.
  EXPECT_TRUE(dishonest_weights(ValidatorBehaviour::WeightCopier, m, miners).empty());
  EXPECT_TRUE(dishonest_weights(ValidatorBehaviour::Slow, m, miners).empty());
  EXPECT_TRUE(dishonest_weights(ValidatorBehaviour::Honest, m, miners).empty());
  m.neurons[2].consensus = 30000;
  m.neurons[3].consensus = 10000;
  m.neurons[0].consensus = 65535;  // a validator's uid: not a miner, not copied
  const auto copied = dishonest_weights(ValidatorBehaviour::WeightCopier, m, miners);
  EXPECT_DOUBLE_EQ(copied.at(2), 0.75);
  EXPECT_DOUBLE_EQ(copied.at(3), 0.25);
  EXPECT_DOUBLE_EQ(copied.at(4), 0.0);
  EXPECT_EQ(copied.count(0), 0u);
  const auto self = dishonest_weights(ValidatorBehaviour::SelfWeight, m, miners);
  ASSERT_EQ(self.size(), 1u);
  EXPECT_DOUBLE_EQ(self.at(2), 1.0);  // its own miner: the lowest uid
}

}  // namespace
}  // namespace bistro
