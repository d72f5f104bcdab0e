#include "bistro/protocol/lead_return.hpp"

#include <gtest/gtest.h>

namespace bistro {

namespace {
// The stakes: T (1000) above L (500) above S (250).
const std::vector<LeadCandidate> kOrder = {{"T", "t", true}, {"L", "l", true}, {"S", "s", true}};
}  // namespace

TEST(LeadReturn, RestDoublesFromFourWindowsUpToSixtyFour) {
  EXPECT_EQ(lead_rest_windows(0), 0u);
  EXPECT_EQ(lead_rest_windows(1), 4u);
  EXPECT_EQ(lead_rest_windows(2), 8u);
  EXPECT_EQ(lead_rest_windows(5), 64u);
  EXPECT_EQ(lead_rest_windows(9), 64u);
  std::map<std::string, PassedOver> passed;
  note_passed_over(passed, "T", 7);
  note_passed_over(passed, "T", 7);  // once per window
  EXPECT_EQ(passed["T"].times, 1u);
  note_passed_over(passed, "T", 12);
  EXPECT_EQ(passed["T"].times, 2u);
  EXPECT_EQ(passed["T"].window, 12u);
  EXPECT_FALSE(passed["T"].by_censorship);
  note_passed_over(passed, "T", 20, true);
  EXPECT_TRUE(passed["T"].by_censorship);
  EXPECT_EQ(passed["T"].times, 3u);
}

// A lead killed at window 5 and back: it takes the lead again once it attested the final records
// of two windows in a row and its rest is over, not before.
TEST(LeadReturn, AValidatorAboveTheLeadTakesItBackWhenInSyncAndRested) {
  std::map<std::string, PassedOver> passed;
  note_passed_over(passed, "T", 5);
  const std::set<std::string> both = {"t", "l", "s"}, without_t = {"l", "s"};
  EXPECT_FALSE(returning_lead(kOrder, "L", 9, both, both, passed));  // resting (5 + 4)
  EXPECT_EQ(returning_lead(kOrder, "L", 10, both, both, passed), 0u);
  EXPECT_FALSE(returning_lead(kOrder, "L", 10, both, without_t, passed));  // once only
  EXPECT_FALSE(returning_lead(kOrder, "L", 10, without_t, both, passed));
  EXPECT_FALSE(returning_lead(kOrder, "T", 10, both, both, passed));  // it leads already
  // Below the lead: never (S does not take L's turn).
  EXPECT_FALSE(returning_lead(kOrder, "L", 10, {"s", "l"}, {"s", "l"}, {}));
  EXPECT_EQ(returning_lead(kOrder, "S", 10, {"l", "s"}, {"l", "s"}, {}), 1u);
  // Without a permit it does not count.
  auto no_permit = kOrder;
  no_permit[0].permit = false;
  EXPECT_FALSE(returning_lead(no_permit, "L", 10, both, both, {}));
  // A subnet's first windows: nothing to be in sync with.
  EXPECT_FALSE(returning_lead(kOrder, "L", 2, both, both, {}));
}

// A stalling top validator passed over again and again: each rest twice the last, so over 64
// windows it costs 4 failovers, not one a window.
TEST(LeadReturn, APassedOverValidatorLeadsLessAndLessOften) {
  std::map<std::string, PassedOver> passed;
  const std::set<std::string> all = {"t", "l", "s"};
  std::string lead = "T";
  int passes = 0;
  for (uint64_t u = 3; u < 67; ++u) {
    if (lead == "L" && returning_lead(kOrder, lead, u, all, all, passed)) lead = "T";
    if (lead == "T") {  // it stalls: the final record of u is L's
      note_passed_over(passed, "T", u);
      lead = "L";
      ++passes;
    }
  }
  EXPECT_EQ(passes, 4);  // at 3, 8, 17, 34 (rests 4, 8, 16; the next after 66)
  // Passed over while up (it attested the record that took its turn): the longest rest at once.
  const PassedOver once{7, 1};
  EXPECT_EQ(lead_rest_windows(up_when_passed(once).times), 64u);
  EXPECT_EQ(up_when_passed(once).window, 7u);
  EXPECT_EQ(up_when_passed({7, 9}).times, 9u);
}

// Whether a lead was up when passed over is decided once per pass-over; the verdict stays, and a
// new pass-over asks again (a censorship pass never: its lead is up by definition, short rests).
TEST(LeadReturn, UpWhenPassedIsDecidedOncePerPassOver) {
  std::map<std::string, PassedOver> passed;
  note_passed_over(passed, "T", 7);
  EXPECT_FALSE(passed["T"].up_decided);
  passed["T"] = decide_up(passed["T"], false);
  EXPECT_TRUE(passed["T"].up_decided);
  EXPECT_EQ(lead_rest_windows(passed["T"].times), 4u);
  note_passed_over(passed, "T", 12);  // a new pass-over: undecided again
  EXPECT_FALSE(passed["T"].up_decided);
  passed["T"] = decide_up(passed["T"], true);
  EXPECT_EQ(lead_rest_windows(passed["T"].times), 64u);
  note_passed_over(passed, "T", 80);  // once up, the longest rest stays
  EXPECT_EQ(lead_rest_windows(passed["T"].times), 64u);
  note_passed_over(passed, "C", 9, true);
  EXPECT_TRUE(passed["C"].up_decided);
  EXPECT_EQ(lead_rest_windows(decide_up(passed["C"], true).times), 4u);
}

// A lead whose final records of u-2 and u-3 both left out one miner's update (Finality::censored)
// is passed over at u: the next validator in stake order leads (the first when it is the last).
TEST(LeadReturn, ALeadThatLeavesOutOneMinerTwiceRunningIsPassedToTheNext) {
  EXPECT_EQ(censorship_pass(kOrder, "T", "T", {3}, "T", {3, 5}), 1u);
  EXPECT_EQ(censorship_pass(kOrder, "S", "S", {3}, "S", {3}), 0u);
  // Once is not enough (an honest lead's evidence test is wrong on one window at times), nor two
  // different miners.
  EXPECT_FALSE(censorship_pass(kOrder, "T", "T", {3}, "T", {}));
  EXPECT_FALSE(censorship_pass(kOrder, "T", "T", {3}, "T", {4}));
  // A record of u-2 or u-3 was another's (the lead changed since): it says nothing of this lead.
  EXPECT_FALSE(censorship_pass(kOrder, "L", "T", {3}, "T", {3}));
  EXPECT_FALSE(censorship_pass(kOrder, "T", "T", {3}, "L", {3}));
  EXPECT_FALSE(censorship_pass({kOrder[0]}, "T", "T", {3}, "T", {3}));  // a lone validator leads
}

}  // namespace bistro
