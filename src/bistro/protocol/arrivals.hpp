// When a validator looks for the window's updates while the window is open. Every expected
// miner's bucket is polled (a HEAD of its update's key) at most once per `interval`, and the node
// sends at most `max_rate` requests a second over all buckets, round robin among the miners still
// pending, so the cost is bounded whatever the number of miners:
//   requests per window <= min(pending x 80, max_rate x window) + one GET each
// Torch-free and pure (the clock is the caller's): tests drive it with fake times.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace bistro {

class PollSchedule {
 public:
  PollSchedule(double interval_s, double max_rate);
  // The miners expected this window (their first poll is due at once).
  void expect(const std::vector<uint16_t>& uids);
  // The uid's update is in (or given up on): no more polls for it.
  void done(uint16_t uid);
  // The uid to poll at time `now_s`, marked polled, or nullopt: then `wait_s` (if given) gets the
  // seconds until the next poll is due (a large value when nothing is pending).
  std::optional<uint16_t> next(double now_s, double* wait_s = nullptr);
  size_t pending() const { return due_.size(); }
  uint64_t polls() const { return polls_; }
  // The per-bucket interval that `max_rate` allows with `pending` miners: max(interval,
  // pending / max_rate).
  double effective_interval() const;

 private:
  double interval_, rate_;
  std::map<uint16_t, double> due_;  // uid -> when its next poll is due
  uint16_t cursor_ = 0;             // round robin: the next uid at or after this one goes first
  double last_ = -1e300;            // when the node last polled (for max_rate)
  uint64_t polls_ = 0;
};

// The poll interval for a window of `window_s` seconds: an eightieth of it (the wait for an
// arrival costs about half of that), within [25 ms, 10 s]; and the node's cap: 50 requests a
// second.
double default_poll_interval(double window_s);
inline constexpr double kMaxPollRate = 50.0;

}  // namespace bistro
