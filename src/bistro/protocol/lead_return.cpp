#include "bistro/protocol/lead_return.hpp"

#include <algorithm>

namespace bistro {

uint64_t lead_rest_windows(uint32_t times) {
  return times == 0 ? 0 : uint64_t{4} << std::min<uint32_t>(times - 1, 4);
}

PassedOver up_when_passed(PassedOver p) {
  p.times = std::max<uint32_t>(p.times, 5);
  return p;
}

PassedOver decide_up(PassedOver p, bool up) {
  if (up && !p.by_censorship) p = up_when_passed(p);
  p.up_decided = true;
  return p;
}

void note_passed_over(std::map<std::string, PassedOver>& passed, const std::string& hotkey,
                      uint64_t u, bool by_censorship) {
  auto& p = passed[hotkey];
  if (p.times > 0 && p.window == u) return;
  p.window = u;
  p.by_censorship = by_censorship;
  p.up_decided = by_censorship;  // a censorship pass is never up: nothing to decide
  ++p.times;
}

std::optional<size_t> returning_lead(const std::vector<LeadCandidate>& order,
                                     const std::string& lead, uint64_t u,
                                     const std::set<std::string>& attested_2,
                                     const std::set<std::string>& attested_3,
                                     const std::map<std::string, PassedOver>& passed) {
  // A subnet's first windows have no u-3 to be in sync with.
  if (u < 3) return std::nullopt;
  // Only a validator above the lead can take it; one without a permit never counts.
  for (size_t i = 0; i < order.size() && order[i].hotkey != lead; ++i) {
    const auto& v = order[i];
    if (!v.permit || !attested_2.count(v.key) || !attested_3.count(v.key)) continue;
    const auto p = passed.find(v.hotkey);
    if (p != passed.end() && u <= p->second.window + lead_rest_windows(p->second.times)) continue;
    return i;
  }
  return std::nullopt;
}

std::optional<size_t> censorship_pass(const std::vector<LeadCandidate>& order,
                                      const std::string& lead, const std::string& publisher_2,
                                      const std::vector<uint16_t>& censored_2,
                                      const std::string& publisher_3,
                                      const std::vector<uint16_t>& censored_3) {
  if (publisher_2 != lead || publisher_3 != lead || order.size() < 2) return std::nullopt;
  const bool again = std::any_of(censored_2.begin(), censored_2.end(), [&](uint16_t uid) {
    return std::find(censored_3.begin(), censored_3.end(), uid) != censored_3.end();
  });
  if (!again) return std::nullopt;
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i].hotkey == lead) return i + 1 < order.size() ? i + 1 : 0;
  return std::nullopt;  // a lead not in the order: the failover order decides
}

}  // namespace bistro
