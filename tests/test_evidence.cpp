// The statistics the judge rests on (validator/evidence.hpp, verdict.hpp, observation.hpp):
// paired evidence and Student's t, the tests' error rates, the null's calibration, evidence over
// a miner's windows, and the own-page margin read at an update's strength.
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "bistro/core/rng.hpp"
#include "bistro/validator/gauntlet.hpp"

namespace bistro {
namespace {

// A standard normal from the splitmix64 stream at x (Box-Muller; x moves on by two).
double normal(uint64_t& x) {
  x += 0x9E3779B97F4A7C15ull;
  const double u1 = (static_cast<double>(rng::mix64(x) >> 11) + 0.5) / 9007199254740992.0;
  x += 0x9E3779B97F4A7C15ull;
  const double u2 = (static_cast<double>(rng::mix64(x) >> 11) + 0.5) / 9007199254740992.0;
  return std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
// Per-sequence evidence: n samples of a difference with mean mu and spread sd.
Evidence evidence(double mu, double sd, size_t n, uint64_t seed) {
  std::vector<double> a(n), b(n, 0.0);
  uint64_t x = seed;
  for (size_t i = 0; i < n; ++i) a[i] = mu + sd * normal(x);
  return paired_evidence(a, b);
}

TEST(Gauntlet, PairedEvidenceAndStudentsT) {
  const auto e = paired_evidence({1, 2, 3, 4}, {0, 0, 0, 0});
  EXPECT_DOUBLE_EQ(e.mean, 2.5);
  EXPECT_NEAR(e.se, std::sqrt(1.6666666666666667 / 4), 1e-12);
  EXPECT_EQ(e.n, 4u);
  EXPECT_EQ(paired_evidence({1, 1}, {0, 0}).t(), INFINITY);
  // Student's t, one-sided 1% and 5% (tables): within 1%.
  EXPECT_NEAR(t_critical(0.01, 1000000), 2.3263, 1e-3);
  EXPECT_NEAR(t_critical(0.01, 7), 2.998, 0.03);
  EXPECT_NEAR(t_critical(0.01, 15), 2.602, 0.026);
  EXPECT_NEAR(t_critical(0.01, 30), 2.457, 0.025);
  EXPECT_NEAR(t_critical(0.05, 5), 2.015, 0.02);
  EXPECT_NEAR(t_critical(0.05, 3), 2.353, 0.024);
}

TEST(Gauntlet, TheTestsKeepTheirStatedErrorRates) {
  // 4000 windows of one update each, with no true effect on random pages and no own-page
  // margin, 16 sequences: it is left out for harm, and shows evidence, each at about alpha.
  GauntletParams p;
  size_t harmed = 0, evidenced = 0, honest_out = 0, kept_trust = 0, entered = 0;
  const size_t n = 4000;
  for (size_t i = 0; i < n; ++i) {
    std::map<std::string, Rating> r;
    Observation null{1, "hk", "ok"};
    null.random = evidence(0.0, 0.05, 16, 2 * i);
    null.own_margin = evidence(0.0, 0.05, 16, 2 * i + 1);
    null.d_random = null.random.mean;
    null.d_cross = 0;
    null.d_own = null.own_margin.mean;
    const auto v = judge_window({null}, r, p, 0);
    harmed += v[0].reason.find("raises the loss") != std::string::npos;
    entered += v[0].admitted;
    // The evidence test alone (it runs after the harm test): count it on the same samples.
    evidenced += null.own_margin.t() > t_critical(p.evidence_alpha, 15);
    // A trusted miner keeps its trust on weaker evidence: a null update passes at trust_alpha.
    std::map<std::string, Rating> trusting{{"hk", Rating{.trusted = true}}};
    kept_trust += judge_window({null}, trusting, p, 0)[0].passed;
    // An honest update: a margin of 2 standard deviations of a sequence's margin, no harm.
    Observation honest = null;
    honest.own_margin = evidence(0.1, 0.05, 16, 7 * i + 3);
    honest.d_own = honest.own_margin.mean;
    honest_out += !judge_window({honest}, r, p, 0)[0].admitted;
  }
  EXPECT_LT(static_cast<double>(harmed) / n, 0.02);
  EXPECT_GT(static_cast<double>(harmed) / n, 0.002);
  EXPECT_LT(static_cast<double>(evidenced) / n, 0.02);
  EXPECT_GT(static_cast<double>(evidenced) / n, 0.002);
  // It enters the record on a false pass of the evidence test, or unpaid on a false reading of
  // help on random pages (evidence_alpha each): about 2%.
  std::printf("a null update entered the record in %.2f%% of %zu windows\n",
              100.0 * static_cast<double>(entered) / n, n);
  EXPECT_LT(static_cast<double>(entered) / n, 0.035) << entered;
  EXPECT_GT(static_cast<double>(entered) / n, 0.008) << entered;
  // With a null random effect the honest update is left out only for harm (about 1%).
  EXPECT_LT(static_cast<double>(honest_out) / n, 0.02);
  // Less the ones left out for harm: about trust_alpha (0.1).
  EXPECT_GT(static_cast<double>(kept_trust) / n, 0.07) << kept_trust;
  EXPECT_LT(static_cast<double>(kept_trust) / n, 0.13) << kept_trust;
}

TEST(Gauntlet, TheEvidenceTestIsCalibratedOnTheNullMeasuredOnRealPages) {
  // On real pages the test's null spreads wider than Student's t: placebo reads (one reference
  // against the other) with twice its spread. Pooled, they set null_spread, and a null update
  // drawn from the same spread passes at about the stated 1% again (11% uncalibrated).
  GauntletParams p;
  const size_t n = 16, reads = 4000;
  const double student_sd = std::sqrt(15.0 / 13.0);
  uint64_t x = 77;
  auto wide = [&] {  // a t from a null twice as wide as the test assumes
    return Evidence{2 * student_sd * normal(x), 1.0, n};
  };
  NullSpread pool;
  EXPECT_EQ(pool.factor(30), 1.0);  // nothing pooled: the test as stated
  std::vector<Observation> window;
  for (size_t i = 0; i < 40; ++i) {
    Observation o{static_cast<uint16_t>(i), "hk", "ok"};
    o.placebo = wide();
    window.push_back(o);
  }
  pool.add(window, kNullDecay);
  EXPECT_EQ(pool.reads, 40.0);
  EXPECT_EQ(pool.factor(41), 1.0);  // fewer reads than asked for
  EXPECT_NEAR(pool.factor(30), 2.0, 0.5);
  for (int w = 0; w < 30; ++w) pool.add(window, kNullDecay);
  EXPECT_NEAR(pool.reads, 40 * (1 - std::pow(0.9, 31)) / 0.1, 1e-6);  // decayed per window
  const double f = pool.factor(30);
  EXPECT_NEAR(f, 2.0, 0.4);
  // A non-ok or short read is not pooled.
  Observation bad{99, "hk", "late upload"};
  bad.placebo = Evidence{1000, 1, n};
  const double before = pool.sum_sq;
  pool.add({bad}, 1.0);
  EXPECT_EQ(pool.sum_sq, before);
  // Null updates from the wide null: the calibrated test passes about 1% of them.
  size_t raw = 0, calibrated = 0;
  GauntletParams cal = p;
  cal.null_spread = f;
  for (size_t i = 0; i < reads; ++i) {
    Observation o{1, "hk", "ok"};
    o.random = Evidence{0.05, 0.005, n};
    o.own_margin = wide();
    o.d_random = o.random.mean, o.d_cross = 0, o.d_own = o.own_margin.mean;
    raw += test_update(o, p).empty();
    calibrated += test_update(o, cal).empty();
  }
  std::printf("a null twice as wide: %.2f%% pass as stated, %.2f%% calibrated (spread %.2f)\n",
              100.0 * raw / reads, 100.0 * calibrated / reads, f);
  EXPECT_GT(raw / double(reads), 0.06) << raw;
  EXPECT_LT(calibrated / double(reads), 0.025) << calibrated;
  EXPECT_GT(calibrated / double(reads), 0.001) << calibrated;
  // Calibration only widens: a null narrower than Student's t leaves the test as stated.
  NullSpread narrow{0.25 * 100, 100};
  EXPECT_EQ(narrow.factor(30), 1.0);
}

// A miner's windows in a row: per window an own-page margin with mean mu[w] (per-sequence spread
// 0.05, 32 sequences) on an update that clearly helps the random pages. Returns per window whether
// its update passed.
std::vector<bool> miner_windows(const std::vector<double>& mu, const GauntletParams& p,
                                uint64_t seed) {
  std::map<std::string, Rating> ratings;
  std::vector<bool> passed;
  for (size_t w = 0; w < mu.size(); ++w) {
    Observation o{1, "hk", "ok"};
    o.random = evidence(0.05, 0.05, 32, seed + 2 * w);
    o.own_margin = evidence(mu[w], 0.05, 32, seed + 2 * w + 1);
    o.d_random = o.random.mean, o.d_cross = 0, o.d_own = o.own_margin.mean;
    passed.push_back(judge_window({o}, ratings, p, w)[0].passed);
  }
  return passed;
}

TEST(Gauntlet, EvidenceAccumulatesOverAMinersWindows) {
  // 1000 miners x 12 windows each: a miner with no own-page work, an honest one whose margin
  // shows 1.5 standard errors a window, and one honest (6 standard errors) for 6 windows that
  // then stops working. With evidence_decay 0 the test reads one window alone.
  GauntletParams p, alone;
  alone.evidence_decay = 0;
  const double se = 0.05 / std::sqrt(32.0);
  const size_t miners = 1000, windows = 12;
  size_t null_pass = 0, weak_pass = 0, weak_alone = 0, carried = 0, carried_alone = 0;
  std::vector<double> null(windows, 0.0), weak(windows, 1.5 * se), quits(windows, 0.0);
  for (size_t w = 0; w < 6; ++w) quits[w] = 6 * se;
  for (size_t m = 0; m < miners; ++m) {
    const uint64_t seed = 1000003 * m;
    for (bool b : miner_windows(null, p, seed)) null_pass += b;
    for (bool b : miner_windows(weak, p, seed + 100)) weak_pass += b;
    for (bool b : miner_windows(weak, alone, seed + 100)) weak_alone += b;
    const auto q = miner_windows(quits, p, seed + 200);
    const auto qa = miner_windows(quits, alone, seed + 200);
    for (size_t w = 6; w < windows; ++w) carried += q[w], carried_alone += qa[w];
  }
  const double n = static_cast<double>(miners * windows);
  std::printf("passed: null %.4f, weak %.3f (alone %.3f); quitter carried %.2f windows of 6\n",
              null_pass / n, weak_pass / n, weak_alone / n, carried / double(miners));
  // No own-page work: passes about as often as a test at evidence_alpha with trust kept at
  // trust_alpha lets it (a false pass brings trust and a correlated next window): 1.3%.
  EXPECT_LT(null_pass / n, 0.02) << null_pass;
  // The weak honest miner: 70% of its windows pass, against 30% read one at a time.
  EXPECT_GT(weak_pass / n, 0.6) << weak_pass;
  EXPECT_LT(weak_alone / n, 0.4) << weak_alone;
  // The quitter is carried by its past (capped at kEvidenceCap a window) for about two windows
  // of the six after it stops (2.1; unbounded without the cap).
  EXPECT_LT(carried / static_cast<double>(miners), 2.5) << carried;
  EXPECT_LT(carried_alone, carried);  // the price: read alone, 0.16 of the 6 windows
  // A rejected upload (a copy, late) loses the past evidence with the trust.
  std::map<std::string, Rating> r{{"hk", Rating{.trusted = true}}};
  r["hk"].evidence_sum = 8, r["hk"].evidence_weight = 1.3;
  Observation late{1, "hk", "late upload"};
  judge_window({late}, r, p, 3);
  EXPECT_FALSE(r["hk"].trusted);
  EXPECT_EQ(r["hk"].evidence_sum, 0.0);
  EXPECT_EQ(r["hk"].evidence_weight, 0.0);
}

// One window's own-page margin, simulated per sequence: each sequence has a difficulty g (how
// much any update lowers it per unit of strength); the update has strength a and lowers its
// own pages by `own` more, its reference has strength b; own pages are easier than random ones.
struct MarginWindow {
  Evidence ratio, additive;  // own_margin_evidence, and the plain difference in differences
};
MarginWindow simulate_margin(double a, double b, double own, uint64_t seed) {
  const size_t n = 32;
  const double noise = 0.03;
  uint64_t x = seed;
  std::vector<double> before(n), after(n), refs(n), base(n), after_r(n), refs_r(n);
  for (size_t q = 0; q < n; ++q) {
    const double g = 0.35 + 0.1 * normal(x), h = 0.25 + 0.1 * normal(x);
    before[q] = 6 + normal(x), base[q] = 6 + normal(x);
    after[q] = before[q] - a * g - own - noise * normal(x);
    refs[q] = before[q] - b * g - noise * normal(x);
    after_r[q] = base[q] - a * h - noise * normal(x);
    refs_r[q] = base[q] - b * h - noise * normal(x);
  }
  return {own_margin_evidence(before, after, refs, base, after_r, refs_r),
          difference(paired_evidence(refs, after), paired_evidence(refs_r, after_r))};
}

TEST(Gauntlet, TheOwnPageMarginIsReadAtTheUpdatesStrength) {
  // Strength cancels: a data cheat twice as strong as its reference (trained on other pages)
  // shows evidence at about the stated rate, and an honest update half as strong as its
  // reference shows its own-page work. The plain difference in differences reads strength on
  // easier pages as a margin: it passes the strong cheat and fails the weak honest miner.
  const GauntletParams p;
  const double crit = t_critical(p.evidence_alpha, 31);
  const size_t n = 2000;
  size_t cheat_ratio = 0, cheat_additive = 0, honest_ratio = 0, honest_additive = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto cheat = simulate_margin(2.0, 1.0, 0.0, 3 * i);
    cheat_ratio += cheat.ratio.t() > crit;
    cheat_additive += cheat.additive.t() > crit;
    const auto honest = simulate_margin(0.5, 1.0, 0.05, 3 * i + 1);
    honest_ratio += honest.ratio.t() > crit;
    honest_additive += honest.additive.t() > crit;
  }
  EXPECT_LT(static_cast<double>(cheat_ratio) / n, 0.03) << cheat_ratio;
  EXPECT_GT(static_cast<double>(cheat_additive) / n, 0.5) << cheat_additive;
  EXPECT_GT(static_cast<double>(honest_ratio) / n, 0.95) << honest_ratio;
  EXPECT_LT(static_cast<double>(honest_additive) / n, 0.2) << honest_additive;
  // The margin from the means alone (the judge's pay reads it): d_own - k d_cross.
  Observation o;
  o.d_own = 0.3, o.d_cross = 0.4, o.d_random = 0.1, o.d_random_ref = 0.2;
  EXPECT_NEAR(o.margin(), 0.3 - 0.5 * 0.4, 1e-12);
  o.d_random = -0.1;  // an update that does not help the random pages: k at its floor
  EXPECT_NEAR(o.margin(), 0.3 - kMinStrengthRatio * 0.4, 1e-12);
  o.d_random_ref = 0;  // references that do not help: the difference in differences
  EXPECT_NEAR(o.margin(), (0.3 - 0.4) - (-0.1 - 0), 1e-12);
  // Noise: no effect on the random pages and a tiny, consistent one on its own pages (a page's
  // sequences move together) is no evidence.
  std::vector<double> before(16, 5.0), after(16, 5.0 - 1e-4), refs(16, 4.9), base(16, 5.0),
      after_r(16), refs_r(16);
  uint64_t x = 7;
  for (size_t q = 0; q < 16; ++q)
    after_r[q] = 5.0 + 1e-5 * normal(x), refs_r[q] = 4.9 + 0.01 * normal(x);
  after[3] -= 1e-5;  // a spread, so the standard error is not 0
  EXPECT_FALSE(significantly_positive(
      own_margin_evidence(before, after, refs, base, after_r, refs_r), 0, p.evidence_alpha));
}

TEST(Gauntlet, AMajorityOfDataCheatsCannotDragThePay) {
  // 2 honest miners, 6 that trained on other pages (no own-page margin): the cheats get nothing,
  // the honest pay is one median margin each. Their updates help on random pages, so two of them
  // (no more than the paid updates) enter the record unpaid, the rest stay out.
  GauntletParams p;
  std::map<std::string, Rating> ratings;
  std::vector<Observation> obs;
  for (uint16_t uid = 1; uid <= 8; ++uid) {
    Observation o{uid, "hk" + std::to_string(uid), "ok"};
    o.random = evidence(0.05, 0.02, 16, uid);
    o.own_margin = evidence(uid <= 2 ? 0.1 : 0.0, 0.03, 16, 100 + uid);
    o.d_random = o.random.mean;
    o.d_cross = 0.05;
    o.d_own = o.d_cross + o.own_margin.mean;
    obs.push_back(o);
  }
  const auto v = judge_window(obs, ratings, p, 0);
  EXPECT_TRUE(v[0].admitted && v[1].admitted);
  EXPECT_GT(v[0].score, 0.5);
  EXPECT_GT(v[1].score, 0.5);
  int unpaid = 0;
  for (size_t i = 2; i < v.size(); ++i) {
    unpaid += v[i].admitted;
    EXPECT_FALSE(v[i].passed);
    EXPECT_EQ(v[i].score, 0.0);
    EXPECT_FALSE(ratings["hk" + std::to_string(v[i].uid)].trusted);
    EXPECT_NE(v[i].reason.find("no evidence of training on its own pages"), std::string::npos);
  }
  EXPECT_EQ(unpaid, 2);
}

TEST(Gauntlet, AHelpfulUpdateWithoutEvidenceEntersUnpaidAfterThePaidOnes) {
  // A subnet's first windows: every update teaches the same generic statistics, so an honest
  // update can help on random pages as much as its peer and show too little own-page margin.
  GauntletParams p;
  auto obs_of = [](uint16_t uid, double random_mu, double margin_mu, uint64_t seed) {
    Observation o{uid, "hk" + std::to_string(uid), "ok"};
    o.random = evidence(random_mu, 0.05, 32, seed);
    o.own_margin = evidence(margin_mu, 0.1, 32, seed + 1);
    o.d_random = o.random.mean;
    o.d_cross = 0.3;
    o.d_own = o.d_cross + o.own_margin.mean;
    return o;
  };
  const Observation passer = obs_of(1, 0.36, 0.1, 10), weak_margin = obs_of(2, 0.40, 0.01, 20),
                    no_help = obs_of(3, 0.0, 0.0, 30), faint = obs_of(4, 0.10, 0.0, 40);
  std::map<std::string, Rating> ratings;
  auto v = judge_window({passer, weak_margin, no_help, faint}, ratings, p, 2);
  ASSERT_TRUE(v[0].passed && v[0].admitted);
  EXPECT_GT(v[0].score, 0.0);
  // Helps (t about 45), no evidence: in, unpaid, untrusted, its reason kept.
  EXPECT_TRUE(v[1].admitted && v[1].unpaid);
  EXPECT_FALSE(v[1].passed || v[0].unpaid);
  EXPECT_EQ(v[1].score, 0.0);
  EXPECT_FALSE(ratings["hk2"].trusted);
  EXPECT_NE(v[1].reason.find("no evidence"), std::string::npos) << v[1].reason;
  // No help on random pages, or under half the median drop (0.10 against 0.5 x 0.36): out.
  EXPECT_FALSE(v[2].admitted);
  EXPECT_FALSE(v[3].admitted) << v[3].reason;
  // The guard takes the paid ones first: the unpaid one comes last though it is the best.
  std::map<uint16_t, Update> updates;
  for (uint16_t uid = 1; uid <= 4; ++uid) updates[uid] = Update{};
  const auto best = admitted_best_first(v, {passer, weak_margin, no_help, faint}, updates);
  ASSERT_EQ(best.size(), 2u);
  EXPECT_EQ(best[0].uid, 1u);
  EXPECT_EQ(best[1].uid, 2u);
  // With no paid update, one helpful update enters, the best; never a tie group's member.
  std::map<std::string, Rating> fresh;
  Observation a = obs_of(5, 0.30, 0.0, 50), b = obs_of(6, 0.35, 0.0, 60);
  v = judge_window({a, b}, fresh, p, 2);
  EXPECT_FALSE(v[0].admitted);
  EXPECT_TRUE(v[1].admitted);
  b.duplicate = true, b.twin = 5;
  v = judge_window({a, b}, fresh, p, 3);
  EXPECT_FALSE(v[0].admitted || v[1].admitted);
}

}  // namespace
}  // namespace bistro
