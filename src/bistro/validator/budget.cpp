#include "bistro/validator/budget.hpp"

#include <algorithm>
#include <tuple>

#include "bistro/core/rng.hpp"

namespace bistro {

MeasurementDue measurement_due(const Rating* r) {
  if (r == nullptr || r->seen == 0) return {0, 1};
  if (r->failures == 1) return {0, 0};
  if (r->failures == 0) return {r->seen, 2};
  const uint64_t backoff = uint64_t{1} << std::min<uint32_t>(r->failures - 1, 4);
  return {r->seen + backoff, 2};
}

std::vector<uint16_t> measurement_order(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                        const std::map<std::string, Rating>& ratings,
                                        uint64_t window) {
  struct Key {
    MeasurementDue due;
    uint64_t tie;
    uint16_t uid;
  };
  std::vector<Key> keys;
  for (const auto& [uid, hk] : miners) {
    auto it = ratings.find(hk);
    keys.push_back({measurement_due(it == ratings.end() ? nullptr : &it->second),
                    rng::at(rng::derive(window, "bistro/measurement-order"), uid), uid});
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    return std::tie(a.due.window, a.due.rank, a.tie, a.uid) <
           std::tie(b.due.window, b.due.rank, b.tie, b.uid);
  });
  std::vector<uint16_t> out;
  for (const auto& k : keys) out.push_back(k.uid);
  return out;
}

std::vector<uint16_t> scoring_sample(const std::vector<std::pair<uint16_t, std::string>>& miners,
                                     const std::map<std::string, Rating>& ratings, size_t budget,
                                     uint64_t window) {
  std::vector<uint16_t> out = measurement_order(miners, ratings, window);
  if (budget != 0 && budget < out.size()) out.resize(budget);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bistro
