// Bounded bucket polling (protocol/arrivals.hpp).
#include <gtest/gtest.h>

#include "bistro/protocol/arrivals.hpp"

namespace bistro {
namespace {

TEST(Arrivals, PollsEachBucketAtMostOncePerIntervalAndTheNodeAtItsRate) {
  PollSchedule s(1.0, 10.0);
  s.expect({1, 2, 3});
  std::vector<uint16_t> order;
  double t = 0;
  // Over 5 s, with three pending: each is polled every second (the rate allows 10 a second).
  std::map<uint16_t, int> count;
  while (t < 5.0) {
    double wait = 0;
    if (auto uid = s.next(t, &wait)) {
      ++count[*uid];
      order.push_back(*uid);
    } else {
      ASSERT_GT(wait, 0);
      t += wait;
    }
  }
  EXPECT_EQ(order[0], 1);
  EXPECT_EQ(order[1], 2);
  EXPECT_EQ(order[2], 3);
  for (uint16_t u : {1, 2, 3}) EXPECT_EQ(count[u], 5);
  s.done(2);
  EXPECT_EQ(s.pending(), 2u);
  // 256 pending at 10 a second: each bucket's interval stretches to 25.6 s, and the node never
  // exceeds its rate.
  PollSchedule big(1.0, 10.0);
  std::vector<uint16_t> uids(256);
  for (size_t i = 0; i < uids.size(); ++i) uids[i] = static_cast<uint16_t>(i);
  big.expect(uids);
  EXPECT_DOUBLE_EQ(big.effective_interval(), 25.6);
  t = 0;
  while (t < 60.0) {
    double wait = 0;
    if (!big.next(t, &wait)) t += wait;
  }
  EXPECT_LE(big.polls(), 601u);
  EXPECT_GE(big.polls(), 590u);
  double wait = 0;
  EXPECT_FALSE(PollSchedule(1, 1).next(0, &wait));
  EXPECT_GT(wait, 1e6);  // nothing pending
}

}  // namespace
}  // namespace bistro
