#include "bistro/protocol/arrivals.hpp"

#include <algorithm>

namespace bistro {

PollSchedule::PollSchedule(double interval_s, double max_rate)
    : interval_(interval_s), rate_(max_rate) {}

void PollSchedule::expect(const std::vector<uint16_t>& uids) {
  for (uint16_t u : uids) due_.emplace(u, -1e300);
}

void PollSchedule::done(uint16_t uid) {
  due_.erase(uid);
}

double PollSchedule::effective_interval() const {
  return std::max(interval_, rate_ > 0 ? static_cast<double>(due_.size()) / rate_ : 0.0);
}

std::optional<uint16_t> PollSchedule::next(double now_s, double* wait_s) {
  if (due_.empty()) {
    if (wait_s) *wait_s = 1e9;
    return std::nullopt;
  }
  // The node's rate first: one request per 1 / max_rate seconds.
  const double gap = rate_ > 0 ? 1.0 / rate_ : 0.0;
  if (now_s < last_ + gap) {
    if (wait_s) *wait_s = last_ + gap - now_s;
    return std::nullopt;
  }
  // Round robin from the cursor: the first uid whose poll is due.
  double earliest = 1e300;
  auto it = due_.lower_bound(cursor_);
  for (size_t n = 0; n < due_.size(); ++n, ++it) {
    if (it == due_.end()) it = due_.begin();
    if (it->second <= now_s) {
      const uint16_t uid = it->first;
      it->second = now_s + effective_interval();
      cursor_ = static_cast<uint16_t>(uid + 1);
      last_ = now_s;
      ++polls_;
      return uid;
    }
    earliest = std::min(earliest, it->second);
  }
  if (wait_s) *wait_s = earliest - now_s;
  return std::nullopt;
}

double default_poll_interval(double window_s) {
  return std::clamp(window_s / 80.0, 0.025, 10.0);
}

}  // namespace bistro
