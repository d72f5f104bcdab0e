#include "bistro/core/rng.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

namespace bistro::rng {

// Vectors pinned from this implementation, specified in docs/protocol.md. A change here is a
// protocol change: every node's init, pages and slices would move.
TEST(Rng, PinnedVectors) {
  EXPECT_EQ(mix64(0), 0u);
  EXPECT_EQ(mix64(1), 0x5692161d100b05e5ULL);
  EXPECT_EQ(at(42, 0), 0x989b3f130a063869ULL);
  EXPECT_EQ(hash(""), mix64(0xcbf29ce484222325ULL));
  EXPECT_EQ(hash("a"), mix64(0xaf63dc4c8601ec8cULL));  // FNV-1a 64 of "a"
}

TEST(Rng, DeterministicLogMatchesLibm) {
  for (double x : {1e-300, 1e-17, 0.001, 0.3, 0.5, 0.7071, 0.99999, 1.0, 1.5, 2.0, 1e10}) {
    EXPECT_NEAR(det_log(x), std::log(x), 4e-16 * std::max(1.0, std::fabs(std::log(x)))) << x;
  }
}

TEST(Rng, DeterministicSinCosMatchesLibm) {
  for (int i = 0; i < 1000; ++i) {
    const double t = (i + 0.37) / 1000.0;
    double s, c;
    det_sincos_turns(t, &s, &c);
    EXPECT_NEAR(s, std::sin(2 * std::numbers::pi * t), 1e-15) << t;
    EXPECT_NEAR(c, std::cos(2 * std::numbers::pi * t), 1e-15) << t;
  }
}

TEST(Rng, UniformIsInOpenUnitInterval) {
  for (uint64_t i = 0; i < 10000; ++i) {
    const double u = uniform(7, i);
    EXPECT_GT(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(Rng, NormalHasUnitMoments) {
  const int n = 200000;
  double sum = 0, sq = 0, quart = 0;
  for (int i = 0; i < n; ++i) {
    const double z = normal(123, i);
    sum += z;
    sq += z * z;
    quart += z * z * z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  EXPECT_NEAR(quart / n, 3.0, 0.06);  // kurtosis of a normal
}

TEST(Rng, FillNormalIsChunkInvariant) {
  std::vector<float> whole(1001), parts(1001);
  fill_normal(whole.data(), whole.size(), 99, 0, 0.0, 0.02);
  fill_normal(parts.data(), 333, 99, 0, 0.0, 0.02);
  fill_normal(parts.data() + 333, 668, 99, 333, 0.0, 0.02);
  EXPECT_EQ(whole, parts);
}

TEST(Rng, BelowIsUniformAndInRange) {
  Stream s(5);
  std::vector<int> counts(7);
  for (int i = 0; i < 70000; ++i) {
    const uint64_t v = s.below(7);
    ASSERT_LT(v, 7u);
    counts[v]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

TEST(Rng, DeriveSeparatesNames) {
  EXPECT_NE(derive(42, "model.norm.weight"), derive(42, "lm_head.weight"));
  EXPECT_NE(derive(42, "x"), derive(43, "x"));
}

}  // namespace bistro::rng
