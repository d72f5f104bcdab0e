#include "bistro/train/schedule.hpp"

#include <gtest/gtest.h>

namespace bistro {

TEST(Schedule, WarmupIsLinearFromLrOverWarmup) {
  Schedule s{.lr = 1e-3, .warmup_steps = 4, .total_steps = 100, .min_lr_ratio = 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25e-3);
  EXPECT_DOUBLE_EQ(s.at(1), 0.5e-3);
  EXPECT_DOUBLE_EQ(s.at(3), 1e-3);
}

TEST(Schedule, CosineReachesPeakMidpointAndFloor) {
  Schedule s{.lr = 1e-3, .warmup_steps = 10, .total_steps = 110, .min_lr_ratio = 0.1};
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  EXPECT_NEAR(s.at(60), 0.55e-3, 1e-15);  // halfway: mean of peak and floor
  EXPECT_NEAR(s.at(110), 1e-4, 1e-15);
  EXPECT_NEAR(s.at(10'000), 1e-4, 1e-15);  // stays at the floor
  for (int64_t i = 11; i < 110; ++i) EXPECT_LT(s.at(i), s.at(i - 1));
}

TEST(Schedule, ConstantWithoutTotal) {
  Schedule s{.lr = 2e-4, .warmup_steps = 0, .total_steps = 0};
  EXPECT_DOUBLE_EQ(s.at(0), 2e-4);
  EXPECT_DOUBLE_EQ(s.at(5000), 2e-4);
}

}  // namespace bistro
