#include "bistro/validator/observation.hpp"

#include <algorithm>
#include <cmath>

namespace bistro {

double Observation::margin() const {
  if (std::isnan(d_cross)) return d_own - d_random;
  const double k = strength_ratio(d_random, d_random_ref);
  if (!std::isnan(k)) return d_own - k * d_cross;
  return (d_own - d_cross) - (std::isnan(d_random_ref) ? 0.0 : d_random - d_random_ref);
}

void NullSpread::add(const std::vector<Observation>& obs, double decay) {
  sum_sq *= decay, reads *= decay;
  for (const auto& o : obs) {
    const double t = o.placebo.t();
    if (o.status != "ok" || o.placebo.n < 4 || !std::isfinite(t)) continue;
    const double dof = static_cast<double>(o.placebo.n - 1);
    const double x = std::clamp(t / student_t_sd(dof), -10.0, 10.0);
    sum_sq += x * x, reads += 1;
  }
}

double NullSpread::factor(double min_reads) const {
  if (min_reads <= 0 || reads < min_reads) return 1.0;
  return std::max(1.0, std::sqrt(sum_sq / reads));
}

}  // namespace bistro
