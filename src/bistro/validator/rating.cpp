#include "bistro/validator/rating.hpp"

#include <algorithm>

namespace bistro {

double unmeasured_pay(const Rating& r, const GauntletParams& p) {
  if (!r.trusted || r.reading_weight <= 0) return 0.0;
  return (r.reading_sum + p.pay_prior) / (r.reading_weight + p.pay_prior);
}

bool is_trusted(const std::map<std::string, Rating>& ratings, const std::string& hotkey) {
  const auto r = ratings.find(hotkey);
  return r != ratings.end() && r->second.trusted;
}

bool awaits_first_measurement(const Rating& r) {
  return r.seen == 0 || r.waited > 0;
}

std::map<uint16_t, double> rating_weights(const std::vector<Observation>& obs,
                                          const std::map<std::string, Rating>& ratings,
                                          const GauntletParams& p) {
  std::map<uint16_t, double> w;
  double sum = 0, held = 0;
  for (const auto& o : obs) {
    auto it = ratings.find(o.hotkey);
    const double r = it == ratings.end() ? 0.0 : std::max(0.0, it->second.rating);
    if (it != ratings.end() && awaits_first_measurement(it->second)) {
      w[o.uid] += 0.0;
      held += r;
      continue;
    }
    const double x = it == ratings.end() ? 0.0 : r * (1 + it->second.paying_back);
    w[o.uid] += x;
    sum += x;
  }
  if (p.burn_uid >= 0 && p.burn_uid <= 0xffff && held > 0) {
    w[static_cast<uint16_t>(p.burn_uid)] += held;
    sum += held;
  }
  for (auto& [uid, x] : w) x = sum > 0 ? x / sum : 0.0;
  return w;
}

}  // namespace bistro
