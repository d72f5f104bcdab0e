// The validator's gauntlet (neurons/gauntlet.hpp) and the cheats' update transforms
// (neurons/cheats.hpp): copy and replay detection, the deadline rule, the window scores, the
// record's admission, ratings and weights.
#include <gtest/gtest.h>

#include "bistro/compress/update.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/neurons/cheats.hpp"
#include "bistro/neurons/gauntlet.hpp"

namespace bistro {
namespace {

const std::vector<ParameterSpec> kSpecs = {{"a", {128, 128}}, {"b", {64, 256}}, {"n", {64}}};

Update noise(uint64_t seed, float rms = 0.01f) {
  return noise_update(kSpecs, 64, 64, std::vector<float>(kSpecs.size(), rms), seed);
}

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

TEST(Gauntlet, SketchesEstimateTheShareOfEqualEntries) {
  const Update a = noise(5);
  Update b = a;
  // Change every other value of b: about half its entries stay equal, all its indices do.
  for (auto& t : b.tensors)
    for (size_t i = 0; i < t.val.size(); i += 2) t.val[i] = t.val[i] * 1.5f + 1e-3f;
  const Overlap exact = update_overlap(a, b);
  EXPECT_DOUBLE_EQ(exact.indices, 1.0);
  EXPECT_NEAR(exact.entries, 0.5, 0.01);
  const auto sa = sketch_update(a, 256), sb = sketch_update(b, 256);
  EXPECT_DOUBLE_EQ(sketch_share(sa.indices, sb.indices, 256), 1.0);
  EXPECT_NEAR(sketch_share(sa.entries, sb.entries, 256), 0.5, 0.12);
  const auto sc = sketch_update(noise(6), 256);
  EXPECT_LT(sketch_share(sa.entries, sc.entries, 256), 0.05);
}

TEST(Gauntlet, TheLaterUploadOfACopyOffendsAndReplaysAreCaught) {
  GauntletParams p;
  const Update honest = noise(7), other = noise(8);
  const Update copy = honest;
  SketchHistory history;
  std::vector<Received> r = {{3, &copy, 2000}, {1, &honest, 1000}, {2, &other, 1500}};
  auto st = check_uploads(r, 500, 5000, history, 10, p);
  EXPECT_EQ(st[1], "ok");
  EXPECT_EQ(st[2], "ok");
  EXPECT_NE(st[3].find("copy of uid 1's update of window 10"), std::string::npos) << st[3];
  // Next window: uid 4 re-sends uid 2's update of window 10.
  std::vector<Received> r2 = {{4, &other, 100500}, {1, &honest /* not new either */, 100400}};
  auto st2 = check_uploads(r2, 100000, 105000, history, 11, p);
  EXPECT_NE(st2[4].find("copy of uid 2's update of window 10"), std::string::npos) << st2[4];
  EXPECT_NE(st2[1].find("window 10"), std::string::npos) << st2[1];
}

TEST(Gauntlet, EqualUploadTimesAreTiesNotOffences) {
  GauntletParams p;
  const Update a = noise(9), b = a;
  SketchHistory history;
  std::map<uint16_t, uint16_t> dup;
  auto st = check_uploads({{5, &a, 1000}, {2, &b, 1000}}, 0, 0, history, 1, p, &dup);
  EXPECT_EQ(st[5], "ok");
  EXPECT_EQ(st[2], "ok");
  ASSERT_EQ(dup.size(), 1u);
  EXPECT_EQ(dup.at(5), 2);  // the higher uid stays out of the record
}

TEST(Gauntlet, DeadlinesFollowTheObjectsTimeAndEmptyUpdatesAreRefused) {
  GauntletParams p;
  p.upload_tolerance_ms = 100;
  EXPECT_EQ(deadline_verdict(5000, 1000, 6000, p), "");
  EXPECT_EQ(deadline_verdict(6100, 1000, 6000, p), "");
  EXPECT_EQ(deadline_verdict(6101, 1000, 6000, p), "late upload");
  EXPECT_EQ(deadline_verdict(899, 1000, 6000, p), "early upload");
  EXPECT_EQ(deadline_verdict(0, 1000, 6000, p), "");  // unknown time
  const Update zero = noise_update(kSpecs, 64, 64, {0, 0, 0}, 1), late = noise(10);
  SketchHistory h;
  auto st = check_uploads({{1, &zero, 2000}, {2, &late, 9000}}, 1000, 6000, h, 3, p);
  EXPECT_EQ(st[1], "empty update");
  EXPECT_EQ(st[2], "late upload");
}

Observation ob(uint16_t uid, double own, double random, double cross, std::string st = "ok") {
  Observation o{uid, "hk" + std::to_string(uid), std::move(st), own, random};
  o.d_cross = cross;
  return o;
}

TEST(Gauntlet, ScoresPayTheOwnPageMarginAndNeverGoNegative) {
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  const std::vector<Observation> obs = {
      ob(1, 0.30, 0.10, 0.10),  // honest: margin 0.20
      ob(2, 0.32, 0.10, 0.12),  // honest: margin 0.20
      ob(3, 0.15, 0.12, 0.14),  // trained elsewhere: margin 0.01
      ob(4, -5.0, -4.0, NAN),   // poison
      ob(5, 0.0, 0.0, 0.0, "empty update"),
      ob(6, 0.25, 0.10, 0.05),  // margin 0.20... its reference helped less
      ob(7, 0.30, 0.10, NAN),   // no reference: margin against d_random, 0.20
  };
  const auto v = judge_window(obs, ratings, p);
  EXPECT_NEAR(v[0].score, 1.0, 1e-9);
  EXPECT_NEAR(v[1].score, 1.0, 1e-9);
  EXPECT_EQ(v[2].score, 0.0);  // 0.05 of the median margin: below the floor
  EXPECT_EQ(v[3].score, 0.0);
  EXPECT_EQ(v[4].score, 0.0);
  for (const auto& j : v) EXPECT_GE(j.score, 0.0);
  EXPECT_TRUE(v[0].admitted && v[1].admitted && v[2].admitted && v[5].admitted && v[6].admitted);
  EXPECT_FALSE(v[3].admitted);
  EXPECT_EQ(v[3].reason, "does not lower the loss on random pages");
  EXPECT_FALSE(v[4].admitted);
  EXPECT_EQ(v[4].reason, "empty update");
  EXPECT_NEAR(ratings["hk1"].rating, 0.2, 1e-12);  // (1 - 0.8) * 1
  EXPECT_EQ(ratings["hk4"].rating, 0.0);
}

TEST(Gauntlet, AMissingUpdateNeverPaysMoreThanAnHonestOne) {
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  for (int w = 0; w < 10; ++w) {
    // uid 2 alternates between honest work and nothing: it must end below uid 1.
    judge_window({ob(1, 0.3, 0.1, 0.1), ob(2, 0.3, 0.1, 0.1, w % 2 ? "missing" : "ok"),
                  ob(3, 0.3, 0.1, 0.1)},
                 ratings, p);
  }
  EXPECT_GT(ratings["hk1"].rating, ratings["hk2"].rating);
  EXPECT_GT(ratings["hk2"].rating, 0.0);
  const auto w = rating_weights({ob(1, 0, 0, 0), ob(2, 0, 0, 0), ob(3, 0, 0, 0)}, ratings);
  EXPECT_NEAR(w.at(1) + w.at(2) + w.at(3), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(w.at(1), w.at(3));
  EXPECT_LT(w.at(2), w.at(1));
}

TEST(Gauntlet, TheRecordTakesTheBestOnRandomPagesUpToItsSize) {
  GauntletParams p;
  p.record_peers = 2;
  std::map<std::string, Rating> ratings;
  std::vector<Observation> obs = {ob(1, 0.3, 0.10, 0.1), ob(2, 0.3, 0.20, 0.1),
                                  ob(3, 0.3, 0.15, 0.1), ob(4, 0.3, 0.30, 0.1)};
  obs[3].duplicate = true;  // best on random pages, but a tied copy
  const auto v = judge_window(obs, ratings, p);
  EXPECT_FALSE(v[0].admitted);
  EXPECT_NE(v[0].reason.find("outside the record's best 2"), std::string::npos);
  EXPECT_TRUE(v[1].admitted && v[2].admitted);
  EXPECT_FALSE(v[3].admitted);
  EXPECT_GT(v[3].score, 0.0);  // still paid by its margin
  std::map<uint16_t, Update> updates;
  for (uint16_t uid = 1; uid <= 4; ++uid) updates[uid] = noise(uid);
  const auto best = admitted_best_first(v, obs, updates);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].uid, 2u);  // d_random 0.20 before 0.15
  EXPECT_EQ(best[1].uid, 3u);
  EXPECT_EQ(best[0].update, &updates.at(2));
}

}  // namespace
}  // namespace bistro
