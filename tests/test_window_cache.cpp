#include "bistro/core/window_cache.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace bistro {

// A node replaying old windows asks for one older than every cached entry: trimming keeps that
// entry (the caller holds a reference to it) and evicts the oldest of the others.
TEST(WindowCache, TrimKeepsTheEntryInUseEvenWhenItIsTheOldest) {
  std::map<uint64_t, std::string> m;
  for (uint64_t w = 10; w < 14; ++w) m[w] = "w" + std::to_string(w);
  auto& in_use = m[3];
  in_use = "three";
  trim_oldest(m, 4, uint64_t{3});
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m.count(10), 0u);  // the oldest other entry went
  EXPECT_EQ(m.at(3), "three");
  EXPECT_EQ(&m.at(3), &in_use);  // the caller's reference is still the entry
  EXPECT_EQ(m.begin()->first, 3u);
  EXPECT_EQ(m.rbegin()->first, 13u);
}

TEST(WindowCache, TrimEvictsOldestFirstAndStopsAtTheLimit) {
  std::map<uint64_t, int> m{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}};
  trim_oldest(m, 4, uint64_t{6});
  EXPECT_EQ(m, (std::map<uint64_t, int>{{3, 3}, {4, 4}, {5, 5}, {6, 6}}));
  trim_oldest(m, 0, uint64_t{4});
  EXPECT_EQ(m, (std::map<uint64_t, int>{{4, 4}}));  // only the entry in use is left
  trim_oldest(m, 4, uint64_t{9});                   // under the limit: nothing to do
  EXPECT_EQ(m.size(), 1u);
}

}  // namespace bistro
