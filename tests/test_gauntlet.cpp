// The validator's gauntlet (validator/gauntlet.hpp): copy and replay detection, the deadline
// rule, the window scores, the record's admission, ratings, trust, the scoring budget and weights.
#include <gtest/gtest.h>
#include <algorithm>
#include <random>

#include "bistro/cheats/cheats.hpp"
#include "bistro/compress/update.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/signer.hpp"
#include "bistro/validator/gauntlet.hpp"
#include "bistro/validator/state.hpp"

#include "noise_updates.hpp"

namespace bistro {
namespace {

using test::kSpecs;
using test::noise;

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
  const auto v = judge_window(obs, ratings, p, 0);
  EXPECT_NEAR(v[0].score, 1.0, 1e-9);
  EXPECT_NEAR(v[1].score, 1.0, 1e-9);
  EXPECT_EQ(v[2].score, 0.0);  // 0.05 of the median margin: below the floor
  EXPECT_EQ(v[3].score, 0.0);
  EXPECT_EQ(v[4].score, 0.0);
  for (const auto& j : v) EXPECT_GE(j.score, 0.0);
  EXPECT_TRUE(v[0].admitted && v[1].admitted && v[2].admitted && v[5].admitted && v[6].admitted);
  // Without per-sequence evidence the tests read the signs; the pay's reference is the median
  // margin of the updates that passed (0.2, 0.2, 0.01, 0.2, 0.2: 0.2).
  EXPECT_FALSE(v[3].admitted);
  EXPECT_NE(v[3].reason.find("raises the loss on random pages"), std::string::npos);
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
                 ratings, p, 0);
  }
  EXPECT_GT(ratings["hk1"].rating, ratings["hk2"].rating);
  EXPECT_GT(ratings["hk2"].rating, 0.0);
  const auto w = rating_weights({ob(1, 0, 0, 0), ob(2, 0, 0, 0), ob(3, 0, 0, 0)}, ratings, p);
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
  obs[3].duplicate = true;  // best on random pages, but a tied copy of uid 2, which passed
  obs[3].twin = 2;
  const auto v = judge_window(obs, ratings, p, 0);
  EXPECT_FALSE(v[0].admitted);
  EXPECT_NE(v[0].reason.find("outside the record's best 2"), std::string::npos);
  EXPECT_TRUE(v[1].admitted && v[2].admitted);
  EXPECT_FALSE(v[3].admitted);
  EXPECT_EQ(v[3].score, 0.0);  // the group's update is paid once, to the member that entered
  EXPECT_GT(v[1].score, 0.0);
  std::map<uint16_t, Update> updates;
  for (uint16_t uid = 1; uid <= 4; ++uid) updates[uid] = noise(uid);
  const auto best = admitted_best_first(v, obs, updates);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].uid, 2u);  // d_random 0.20 before 0.15
  EXPECT_EQ(best[1].uid, 3u);
  EXPECT_EQ(best[0].update, &updates.at(2));
  // A tied copy whose twin shows no evidence (a sybil that copied it, measured on its own
  // pages): the copy of the pair that trained enters.
  std::vector<Observation> tie = {ob(1, 0.3, 0.1, 0.1), ob(2, 0.1, 0.1, 0.1)};
  tie[0].duplicate = true, tie[0].twin = 2;
  const auto t = judge_window(tie, ratings, p, 0);
  EXPECT_TRUE(t[0].admitted);
  EXPECT_FALSE(t[1].admitted);
  EXPECT_NE(t[1].reason.find("no evidence"), std::string::npos);
  // Its twin unmeasured (outside the budget) but trusted: measured evidence on its own pages
  // outweighs the twin's trust; one of the two enters, never both.
  std::map<std::string, Rating> trust = {{"hk2", Rating{.rating = 1, .trusted = true}}};
  tie[1].measured = false;
  auto u = judge_window(tie, trust, p, 0);
  EXPECT_TRUE(u[0].admitted);
  EXPECT_FALSE(u[1].admitted);
  EXPECT_NE(u[1].reason.find("tied copy"), std::string::npos);
  // Both unmeasured and trusted: the one with the better rating enters on its trust, whichever
  // uploaded "first"; equal ratings: the upload that is nobody's copy.
  tie[0].measured = false;
  for (double r1 : {0.5, 1.5, 1.0}) {
    trust["hk1"] = Rating{.rating = r1, .trusted = true};
    trust["hk2"] = Rating{.rating = 1.0, .trusted = true};
    u = judge_window(tie, trust, p, 0);
    EXPECT_EQ(u[0].admitted, r1 > 1.0) << r1;
    EXPECT_EQ(u[1].admitted, r1 <= 1.0) << r1;
  }
  // A sybil operator's three equal uploads in one second: uid 3 (a sybil, the group's lowest
  // uid) shows no evidence; 4 (the operator's miner) and 5 (a sybil) both name it their twin,
  // and both pass. One of them enters, never both.
  std::vector<Observation> three = {ob(3, 0.1, 0.1, 0.1), ob(4, 0.3, 0.1, 0.1),
                                    ob(5, 0.3, 0.1, 0.1)};
  three[1].duplicate = true, three[1].twin = 3;
  three[2].duplicate = true, three[2].twin = 3;
  auto g = judge_window(three, ratings, p, 0);
  EXPECT_FALSE(g[0].admitted);
  EXPECT_EQ(g[1].admitted + g[2].admitted, 1);
  // The sybil with the lowest uid passes too, barely (the test's false pass): the operator's
  // miner, with the strongest evidence on its own pages, is the one that enters.
  three[0] = ob(3, 0.12, 0.1, 0.1), three[2] = ob(5, 0.12, 0.1, 0.1);
  three[2].duplicate = true, three[2].twin = 4;
  for (auto* o : {&three[0], &three[1], &three[2]}) o->own_margin = {o->margin(), 0.005, 30};
  g = judge_window(three, ratings, p, 0);
  EXPECT_TRUE(g[0].passed && g[1].passed && g[2].passed);
  EXPECT_FALSE(g[0].admitted);
  EXPECT_TRUE(g[1].admitted);
  EXPECT_FALSE(g[2].admitted);
  // The group is one update and is paid once: the sybils' passes earn nothing, and add no
  // reading to what their unmeasured windows pay.
  EXPECT_GT(g[1].score, 0.0);
  EXPECT_EQ(g[0].score, 0.0);
  EXPECT_EQ(g[2].score, 0.0);
  EXPECT_EQ(unmeasured_pay(ratings["hk5"], p), 0.0);
  EXPECT_GT(unmeasured_pay(ratings["hk4"], p), 0.0);
  // Unmeasured next window, all three trusted and tied again: the operator's miner, best rated,
  // enters on its trust and is the one paid; the sybils' ratings fall.
  for (auto* o : {&three[0], &three[1], &three[2]}) o->measured = false;
  three[0].duplicate = false, three[1].duplicate = true, three[1].twin = 3;
  three[2].duplicate = true, three[2].twin = 3;
  ratings["hk3"].trusted = ratings["hk4"].trusted = ratings["hk5"].trusted = true;
  ratings["hk3"].reading_sum = ratings["hk3"].reading_weight = 1;
  const double r4 = ratings["hk4"].rating, r5 = ratings["hk5"].rating;
  g = judge_window(three, ratings, p, 1);
  EXPECT_TRUE(g[1].admitted);
  EXPECT_FALSE(g[0].admitted || g[2].admitted);
  EXPECT_GT(ratings["hk4"].rating, r4);
  EXPECT_LE(ratings["hk5"].rating, r5);
  // Window after window the operator's miner shows its work (t 8) and its sybil none; then,
  // where the sybil's pages overlap the operator's, the sybil shows more in one window (t 10):
  // the operator's miner, stronger over its recent windows (z 9.98 against 9.06), enters.
  std::map<std::string, Rating> past;
  auto pair = [](double t4, double t5) {
    std::vector<Observation> v = {ob(4, 0.3, 0.1, 0.1), ob(5, 0.3, 0.1, 0.1)};
    v[1].duplicate = true, v[1].twin = 4;
    v[0].own_margin = {0.01 * t4, 0.01, 30};
    v[1].own_margin = {0.01 * t5, 0.01, 30};
    return v;
  };
  for (uint64_t w = 0; w < 3; ++w) judge_window(pair(8, 0.5), past, p, w);
  const auto overlap = judge_window(pair(8, 10), past, p, 3);
  EXPECT_TRUE(overlap[0].passed && overlap[1].passed);
  EXPECT_TRUE(overlap[0].admitted);
  EXPECT_FALSE(overlap[1].admitted);
}

TEST(Gauntlet, ASampledTieGroupIsMeasuredWhole) {
  // 3 copies 2 and 4 copies 3 in the same second: one group with 2 (sampled); 5 copies 9 (not
  // sampled); 6 copies 2 but was late (rejected: nothing to measure).
  std::vector<Observation> obs;
  for (uint16_t uid : {2, 3, 4, 5, 6, 7, 8, 9}) obs.push_back(ob(uid, 0.3, 0.1, 0.1));
  auto link = [&](uint16_t uid, uint16_t twin) {
    for (auto& o : obs)
      if (o.uid == uid) o.duplicate = true, o.twin = twin;
  };
  link(4, 3), link(3, 2), link(5, 9), link(6, 2);
  obs[4].status = "late upload";
  EXPECT_EQ(with_tie_groups({2, 7}, obs), (std::vector<uint16_t>{2, 3, 4, 7}));
  EXPECT_EQ(with_tie_groups({4}, obs), (std::vector<uint16_t>{2, 3, 4}));
  EXPECT_EQ(with_tie_groups({7, 8}, obs), (std::vector<uint16_t>{7, 8}));
}

TEST(Gauntlet, AnUnmeasuredWindowPaysTheShrunkMeanOfTheMinersReadings) {
  // 200 honest miners doing equal work; one window's reading of an update's margin varies by
  // 35% between windows (about what `experiment attack` measured). A budget measures each miner
  // one window in 8, at a seeded offset. Over 40 windows, the highest / lowest mean pay: with
  // pay_prior 0 an unmeasured window repeats the mean of the miner's own two to five readings;
  // with the default 8, that mean shrunk toward the median update's score.
  auto spread = [](double prior) {
    GauntletParams p;
    p.pay_prior = prior;
    std::map<std::string, Rating> ratings;
    std::vector<double> pay(201, 0.0);
    std::mt19937_64 gen(7);
    std::normal_distribution<double> noise(0, 0.35);
    for (uint64_t w = 0; w < 40; ++w) {
      std::vector<Observation> obs;
      for (uint16_t uid = 1; uid <= 200; ++uid) {
        Observation o = ob(uid, 0.1 + 0.2 * std::max(0.2, 1 + noise(gen)), 0.1, 0.1);
        o.own_margin = {o.margin(), 0.01, 32};
        o.measured = (w + uid) % 8 == 0;
        obs.push_back(o);
      }
      judge_window(obs, ratings, p, w);
      if (w >= 16)  // every miner measured twice
        for (uint16_t uid = 1; uid <= 200; ++uid)
          pay[uid] += ratings["hk" + std::to_string(uid)].rating;
    }
    const auto [lo, hi] = std::minmax_element(pay.begin() + 1, pay.end());
    return *hi / *lo;
  };
  const double own = spread(0), shrunk = spread(GauntletParams{}.pay_prior);
  std::printf("pay spread over windows 16-39: own readings %.2f, shrunk %.2f\n", own, shrunk);
  EXPECT_GT(own, 2.0);
  EXPECT_LT(shrunk, 2.0);
}

TEST(Gauntlet, TrustAdmitsUnmeasuredUpdatesAndIsLostByFailing) {
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  auto un = [](uint16_t uid) {
    Observation o = ob(uid, 0, 0, NAN);
    o.measured = false;
    return o;
  };
  // Unmeasured and untrusted: out; it waits for its first measurement, its pay held back.
  auto v = judge_window({un(1)}, ratings, p, 0);
  EXPECT_FALSE(v[0].admitted);
  EXPECT_EQ(ratings["hk1"].waited, 1u);
  EXPECT_TRUE(awaits_first_measurement(ratings["hk1"]));
  // A measured pass earns trust; then an unmeasured update enters on it, with no score of its own
  // and the rating moving with its expected score (unmeasured_pay).
  judge_window({ob(1, 0.3, 0.1, 0.1)}, ratings, p, 0);
  EXPECT_TRUE(ratings["hk1"].trusted);
  const double r = ratings["hk1"].rating, pay = unmeasured_pay(ratings["hk1"], p);
  EXPECT_GT(pay, 0.0);
  v = judge_window({un(1)}, ratings, p, 0);
  EXPECT_TRUE(v[0].admitted);
  EXPECT_EQ(v[0].score, 0.0);
  EXPECT_DOUBLE_EQ(ratings["hk1"].rating, p.rating_ema * r + (1 - p.rating_ema) * pay);
  // A measured failure loses it; a missing window does not.
  judge_window({ob(1, 0.3, 0.1, 0.1, "missing")}, ratings, p, 0);
  EXPECT_TRUE(ratings["hk1"].trusted);
  judge_window({ob(1, 0.1, 0.1, 0.1)}, ratings, p, 0);
  EXPECT_FALSE(ratings["hk1"].trusted);
  EXPECT_FALSE(judge_window({un(1)}, ratings, p, 0)[0].admitted);
  // A rejected upload (a copy, a late one) loses it too.
  judge_window({ob(1, 0.3, 0.1, 0.1)}, ratings, p, 0);
  judge_window({ob(1, 0, 0, 0, "late upload")}, ratings, p, 0);
  EXPECT_FALSE(ratings["hk1"].trusted);
}

TEST(Gauntlet, AMinerMeasuredEveryKthWindowIsRatedAsOneMeasuredEveryWindow) {
  // Two honest miners with the same margin; the budget measures miner 2 one window in four.
  // Without counting its expected score its rating would stand at a fraction of miner 1's
  // between measurements (a first measurement gives 0.2 of the score); with it, the two ratings
  // meet.
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  for (int w = 0; w < 40; ++w) {
    Observation a = ob(1, 0.30, 0.10, 0.10), b = ob(2, 0.30, 0.10, 0.10);
    b.measured = w % 4 == 0;
    judge_window({a, b}, ratings, p, 0);
  }
  EXPECT_GT(ratings["hk1"].rating, 0.5);
  EXPECT_NEAR(ratings["hk2"].rating / ratings["hk1"].rating, 1.0, 0.01);
  // A later failure costs the trust: unmeasured windows after it pay nothing and pull the
  // rating down.
  Observation bad = ob(2, 0.10, 0.10, 0.10);
  judge_window({ob(1, 0.30, 0.10, 0.10), bad}, ratings, p, 0);
  EXPECT_EQ(unmeasured_pay(ratings["hk2"], p), 0.0);
  const double after_failure = ratings["hk2"].rating;
  Observation un = ob(2, 0.30, 0.10, 0.10);
  un.measured = false;
  judge_window({ob(1, 0.30, 0.10, 0.10), un}, ratings, p, 0);
  EXPECT_LT(ratings["hk2"].rating, after_failure);
}

TEST(Gauntlet, ANewMinerIsPaidFromItsFirstUploadOnceItsFirstMeasurementPasses) {
  // Two miners measured from window 0; an honest newcomer (3) and a cheat (4) the budget reaches
  // only in window 5. Until then their pay is held back for the subnet owner's uid 0; then the
  // newcomer is paid back the five windows it waited, the cheat forfeits them.
  auto run = [](int burn_uid) {
    GauntletParams p;
    p.burn_uid = burn_uid;
    std::map<std::string, Rating> ratings;
    std::map<uint16_t, double> pay;
    for (uint64_t w = 0; w < 30; ++w) {
      std::vector<Observation> obs = {ob(1, 0.3, 0.1, 0.1), ob(2, 0.3, 0.1, 0.1),
                                      ob(3, 0.3, 0.1, 0.1), ob(4, 0.1, 0.1, 0.1)};
      obs[2].measured = obs[3].measured = w >= 5;
      judge_window(obs, ratings, p, w);
      if (w == 4) {
        EXPECT_EQ(ratings["hk3"].waited, 5u);
        EXPECT_NEAR(ratings["hk3"].rating, ratings["hk1"].rating, 1e-12);  // the prior's score
      }
      if (w == 5) {
        EXPECT_EQ(ratings["hk3"].waited, 0u);
        EXPECT_DOUBLE_EQ(ratings["hk3"].back_pay, 4.0);  // 5 owed, the first paid now
        EXPECT_DOUBLE_EQ(ratings["hk3"].paying_back, 1.0);
        EXPECT_EQ(ratings["hk4"].rating, 0.0);
        EXPECT_EQ(ratings["hk4"].back_pay, 0.0);
      }
      const auto weights = rating_weights(obs, ratings, p);
      double sum = 0;
      for (const auto& [uid, x] : weights) pay[uid] += x, sum += x;
      EXPECT_NEAR(sum, 1.0, 1e-12);
      if (w < 5) {
        EXPECT_EQ(weights.at(3), 0.0);
        EXPECT_EQ(weights.at(4), 0.0);
      }
    }
    return pay;
  };
  auto pay = run(0);
  EXPECT_NEAR(pay[3] / pay[1], 1.0, 0.02);  // paid from its first upload
  EXPECT_EQ(pay[4], 0.0);
  EXPECT_NEAR(pay[0], 5 * 0.5, 1e-9);  // half of each window's weight, in windows 0-4
  // Without a uid to hold it for, the miners measured first share the held pay, then pay back.
  pay = run(-1);
  EXPECT_EQ(pay.count(0), 0u);
  EXPECT_GT(pay[1], pay[3]);
  // An inconclusive first measurement (t 2 of 8 sequences: z 2, under 3.0) waits on, and a pass
  // then pays back every window waited, the inconclusive one included.
  {
    GauntletParams q;
    std::map<std::string, Rating> rs;
    for (uint64_t w = 0; w < 4; ++w) {
      Observation o = ob(6, 0.3, 0.1, 0.1);
      o.own_margin = {w == 2 ? 0.02 : 0.1, 0.01, 8};
      o.random = {0.1, 0.01, 8};
      o.measured = w >= 2;
      const auto v = judge_window({o}, rs, q, w);
      EXPECT_EQ(v[0].passed, w == 3) << w;
      EXPECT_EQ(awaits_first_measurement(rs["hk6"]), w < 3) << w;
    }
    EXPECT_DOUBLE_EQ(rs["hk6"].back_pay + rs["hk6"].paying_back, 3.0);
    EXPECT_NEAR(rs["hk6"].rating, 1 - std::pow(0.8, 4), 0.1);  // built on the prior's score
  }
  // A first upload rejected forfeits the wait as a failed measurement does.
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  Observation un = ob(5, 0.3, 0.1, 0.1);
  un.measured = false;
  judge_window({un}, ratings, p, 0);
  EXPECT_GT(ratings["hk5"].rating, 0.0);
  judge_window({ob(5, 0, 0, 0, "late upload")}, ratings, p, 1);
  EXPECT_EQ(ratings["hk5"].rating, 0.0);
  EXPECT_EQ(ratings["hk5"].waited, 0u);
  EXPECT_FALSE(awaits_first_measurement(ratings["hk5"]));
}

TEST(Gauntlet, TheValidatorsStateRoundTripsAndMalformedEntriesAreSkipped) {
  Rating r{.rating = 0.7, .windows = 12, .trusted = true, .seen = 11, .failures = 0};
  r.evidence_sum = 3.5, r.evidence_weight = 1.3, r.reading_sum = 4.1, r.reading_weight = 4.5;
  r.waited = 2, r.back_pay = 1.5, r.paying_back = 1;
  const auto back = ratings_from_json(ratings_to_json({{"hk1", r}}));
  ASSERT_EQ(back.size(), 1u);
  const Rating& x = back.at("hk1");
  EXPECT_EQ(x.rating, r.rating);
  EXPECT_EQ(x.windows, r.windows);
  EXPECT_EQ(x.trusted, r.trusted);
  EXPECT_EQ(x.seen, r.seen);
  EXPECT_EQ(x.evidence_sum, r.evidence_sum);
  EXPECT_EQ(x.evidence_weight, r.evidence_weight);
  EXPECT_EQ(x.reading_sum, r.reading_sum);
  EXPECT_EQ(x.reading_weight, r.reading_weight);
  EXPECT_EQ(x.waited, r.waited);
  EXPECT_EQ(x.back_pay, r.back_pay);
  EXPECT_EQ(x.paying_back, r.paying_back);
  // An older state (no `seen`: the window measured), a malformed entry, impossible values.
  const auto old = ratings_from_json(nlohmann::json::parse(R"({
    "a": {"rating": 0.5, "measured": 6},
    "b": {"rating": "high"},
    "c": 3,
    "d": {"rating": 0.2, "back_pay": -4, "paying_back": 7, "waited": -1, "failures": "x"}})"));
  EXPECT_EQ(old.size(), 2u);
  EXPECT_EQ(old.at("a").seen, 7u);
  EXPECT_FALSE(old.at("a").trusted);
  EXPECT_EQ(old.at("d").back_pay, 0.0);
  EXPECT_EQ(old.at("d").paying_back, 1.0);
  EXPECT_EQ(old.at("d").waited, 0u);
  EXPECT_EQ(old.at("d").failures, 0u);
  EXPECT_TRUE(ratings_from_json(nlohmann::json::array()).empty());
  // The pooled null: restored, or nothing (the test then runs as stated until it pools again).
  const auto n = null_spread_from_json(null_spread_to_json({12.5, 31}));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->sum_sq, 12.5);
  EXPECT_EQ(n->reads, 31);
  EXPECT_FALSE(null_spread_from_json(nlohmann::json::parse(R"({"sum_sq": 1})")).has_value());
  EXPECT_FALSE(null_spread_from_json(nlohmann::json::parse(R"({"sum_sq": -1, "reads": 3})")));
  EXPECT_FALSE(null_spread_from_json(nlohmann::json()).has_value());
}

TEST(Gauntlet, AnInconclusiveFailureIsMeasuredAgainAtOnce) {
  // Own-page evidence short of the bar (t 2, 8 sequences: z 2 < 3.0) is inconclusive: the
  // miner stays first in the order however often it fails so; evidence against work (t -1),
  // or harm, backs it off.
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  auto with_t = [](uint16_t uid, double t) {
    Observation o = ob(uid, 0.3, 0.1, 0.1);
    o.own_margin = {0.01 * t, 0.01, 8};
    o.random = {0.1, 0.01, 8};
    return o;
  };
  for (uint64_t w = 0; w < 3; ++w) {
    const auto v = judge_window({with_t(1, 0.8), with_t(2, -1), with_t(3, 0.8)}, ratings, p, w);
    ASSERT_FALSE(v[0].passed);
    EXPECT_EQ(ratings["hk1"].failures, 1u) << w;  // z 0.8 (a first failure), 1.07, 1.22
    EXPECT_EQ(ratings["hk2"].failures, w + 1);
  }
  EXPECT_EQ(measurement_due(&ratings["hk1"]).rank, 0);
  EXPECT_GT(measurement_due(&ratings["hk2"]).window, 3u);
  Observation harm = with_t(3, 2);
  harm.random = {-0.1, 0.01, 8};  // raises the random loss: harm, not inconclusive
  judge_window({harm}, ratings, p, 3);
  EXPECT_FALSE(ratings["hk3"].trusted);
  EXPECT_GE(ratings["hk3"].failures, 2u);
}

TEST(Gauntlet, TheScoringSampleReachesEveryMinerAndBacksOffFailures) {
  // 40 miners, 10 of them cheats whose measured updates always fail, a budget of 8: the sample
  // is the most due first (measurement_order), run through judge_window window after window.
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  std::vector<std::pair<uint16_t, std::string>> miners;
  for (uint16_t uid = 1; uid <= 40; ++uid) miners.emplace_back(uid, "hk" + std::to_string(uid));
  auto cheat = [](uint16_t uid) { return uid % 4 == 0; };
  // uid 41 sends copies, rejected by the checks every window (no budget needed to see that).
  miners.emplace_back(41, "hk41");
  int copier_sampled = 0;
  EXPECT_EQ(scoring_sample(miners, ratings, 0, 3).size(), 41u);
  EXPECT_EQ(scoring_sample(miners, ratings, 41, 3).size(), 41u);
  std::map<uint16_t, std::vector<uint64_t>> measured;  // uid -> the windows it was measured
  const uint64_t windows = 60;
  for (uint64_t w = 0; w < windows; ++w) {
    const auto sample = scoring_sample(miners, ratings, 8, w);
    ASSERT_EQ(sample.size(), 8u);
    ASSERT_TRUE(std::is_sorted(sample.begin(), sample.end()));
    std::vector<Observation> obs;
    copier_sampled += std::binary_search(sample.begin(), sample.end(), 41);
    for (const auto& [uid, hk] : miners) {
      if (uid == 41) {
        obs.push_back(ob(uid, 0, 0, 0, "copy of uid 1's update of window 0"));
        continue;
      }
      obs.push_back(cheat(uid) ? ob(uid, 0.10, 0.10, 0.10) : ob(uid, 0.30, 0.10, 0.10));
      obs.back().measured = std::binary_search(sample.begin(), sample.end(), uid);
      if (obs.back().measured) measured[uid].push_back(w);
    }
    judge_window(obs, ratings, p, w);
  }
  // Every miner is measured within the first windows (40 first measurements and 10 retries at 8
  // a window), a cheat's failure is measured
  // again in the next window, and an honest miner is never left unmeasured for longer than the
  // 30 honest miners take at 8 a window (plus the cheats' retries).
  // The copier: seen every window through its rejections, never due after its first.
  EXPECT_LE(copier_sampled, 1);
  EXPECT_GE(ratings["hk41"].failures, 2u);
  EXPECT_EQ(ratings["hk41"].seen, windows);
  for (const auto& [uid, hk] : miners) {
    if (uid == 41) continue;
    const auto& m = measured[uid];
    ASSERT_FALSE(m.empty()) << "uid " << uid;
    EXPECT_LT(m.front(), 7u) << "uid " << uid;  // ceil((40 + 10 retries) / 8)
    if (cheat(uid)) {
      ASSERT_GE(m.size(), 2u);
      EXPECT_EQ(m[1], m[0] + 1) << "uid " << uid;  // one failure: measured again at once
      // Then 2, 4, 8, 16 windows apart at least: a cheat costs the budget less and less.
      EXPECT_LE(m.size(), 7u) << "uid " << uid;
      EXPECT_GE(m.back() - m[m.size() - 2], std::min<uint64_t>(16, 1ull << (m.size() - 2)));
      EXPECT_FALSE(ratings[hk].trusted);
      EXPECT_EQ(ratings[hk].failures, m.size());
    } else {
      for (size_t i = 1; i < m.size(); ++i) EXPECT_LE(m[i] - m[i - 1], 6u) << "uid " << uid;
      EXPECT_GE(windows - 1 - m.back(), 0u);
      EXPECT_LE(windows - 1 - m.back(), 6u) << "uid " << uid;
      EXPECT_TRUE(ratings[hk].trusted);
      EXPECT_EQ(ratings[hk].failures, 0u);
      EXPECT_EQ(ratings[hk].seen, m.back() + 1);
    }
  }
  miners.pop_back();
  // The order is a pure function of the ratings and the window; among equals it varies by window.
  EXPECT_EQ(measurement_order(miners, ratings, 7), measurement_order(miners, ratings, 7));
  std::map<std::string, Rating> none;
  EXPECT_NE(measurement_order(miners, none, 7), measurement_order(miners, none, 8));
  // Due: a failed-once miner before a never-seen one, then the least recently measured.
  Rating once{.seen = 9, .failures = 1}, trusted{.seen = 3}, thrice{.seen = 2, .failures = 3};
  EXPECT_EQ(measurement_due(&once).rank, 0);
  EXPECT_EQ(measurement_due(nullptr).rank, 1);
  EXPECT_EQ(measurement_due(&trusted).window, 3u);
  EXPECT_EQ(measurement_due(&thrice).window, 6u);
}

}  // namespace
}  // namespace bistro
