#include "bistro/validator/evidence.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bistro {
namespace {

// from[i] - to[i] for the first n.
std::vector<double> drops(const std::vector<double>& from, const std::vector<double>& to,
                          size_t n) {
  std::vector<double> d(n);
  for (size_t i = 0; i < n; ++i) d[i] = from[i] - to[i];
  return d;
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::vector<double> scaled(std::vector<double> v, double k) {
  for (auto& x : v) x *= k;
  return v;
}

}  // namespace

double Evidence::t() const {
  if (se > 0) return mean / se;
  return mean > 0 ? INFINITY : mean < 0 ? -INFINITY : 0.0;
}

Evidence paired_evidence(const std::vector<double>& a, const std::vector<double>& b) {
  Evidence e;
  e.n = std::min(a.size(), b.size());
  if (e.n == 0) return e;
  double sum = 0;
  for (size_t i = 0; i < e.n; ++i) sum += a[i] - b[i];
  e.mean = sum / static_cast<double>(e.n);
  if (e.n < 2) return e;
  double ss = 0;
  for (size_t i = 0; i < e.n; ++i) ss += (a[i] - b[i] - e.mean) * (a[i] - b[i] - e.mean);
  e.se = std::sqrt(ss / static_cast<double>(e.n - 1) / static_cast<double>(e.n));
  return e;
}

double t_critical(double alpha, size_t dof) {
  // The normal quantile by bisection on erfc (monotone; 80 halvings reach double precision).
  double lo = -40, hi = 40;
  for (int i = 0; i < 80; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(mid / std::sqrt(2.0)) > alpha ? lo : hi) = mid;
  }
  const double z = 0.5 * (lo + hi);
  if (dof == 0) return INFINITY;
  const double v = static_cast<double>(dof), z2 = z * z;
  const double z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v) +
         (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * v * v * v * v);
}

Evidence difference(const Evidence& a, const Evidence& b) {
  return {a.mean - b.mean, std::sqrt(a.se * a.se + b.se * b.se), std::min(a.n, b.n)};
}

double strength_ratio(double d_random, double d_random_ref) {
  return d_random_ref > 0 ? std::max(d_random / d_random_ref, kMinStrengthRatio) : NAN;
}

Evidence own_margin_evidence(const std::vector<double>& before,
                             const std::vector<double>& after_own,
                             const std::vector<double>& after_refs, const std::vector<double>& base,
                             const std::vector<double>& after_random,
                             const std::vector<double>& refs_random) {
  const size_t no = std::min({before.size(), after_own.size(), after_refs.size()});
  const size_t nr = std::min({base.size(), after_random.size(), refs_random.size()});
  const auto x = drops(before, after_own, no), c = drops(before, after_refs, no);
  const auto r = drops(base, after_random, nr), rr = drops(base, refs_random, nr);
  const double k = strength_ratio(mean(r), mean(rr));
  if (std::isnan(k) || no < 2 || nr < 2)
    return difference(paired_evidence(after_refs, after_own),
                      paired_evidence(refs_random, after_random));
  // mean(x - k c), and k's own error from the random pages: the margin moves by
  // mean(c) / mean(rr) per unit of mean(r - k rr).
  const Evidence own = paired_evidence(x, scaled(c, k));
  const Evidence on_random = paired_evidence(r, scaled(rr, k));
  const double dk = mean(c) / mean(rr);
  return {own.mean, std::sqrt(own.se * own.se + dk * dk * on_random.se * on_random.se),
          std::min(no, nr)};
}

bool significantly_negative(const Evidence& e, double mean, double alpha) {
  if (e.n < 2) return mean < 0;
  return e.mean < 0 && -e.t() > t_critical(alpha, e.n - 1);
}

bool significantly_positive(const Evidence& e, double mean, double alpha) {
  if (e.n < 2) return mean > 0;
  return e.mean > 0 && e.t() > t_critical(alpha, e.n - 1);
}

double student_t_sd(double dof) {
  return std::sqrt(dof / (dof - 2));
}

}  // namespace bistro
