// Compiled with -ffp-contract=off: a fused multiply-add rounds once where the specification rounds
// twice, which would make nodes on different hardware disagree.
#include "bistro/core/rng.hpp"

namespace bistro::rng {
namespace {
constexpr double kLn2 = 0.6931471805599453094;
constexpr double kSqrtHalf = 0.7071067811865475244;
constexpr double kHalfPi = 1.5707963267948966192;

// sqrt is correctly rounded by IEEE 754, so it is as portable as + and *.
double det_sqrt(double x) {
  return __builtin_sqrt(x);
}
}  // namespace

double det_log(double x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.1716.
  int e = 0;
  double m = x;
  while (m >= 2.0) {
    m *= 0.5;
    ++e;
  }
  while (m < 1.0) {
    m *= 2.0;
    --e;
  }
  if (m >= 2.0 * kSqrtHalf) {
    m *= 0.5;
    ++e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  // 2 * (s + s^3/3 + ... + s^21/21): the first omitted term is below 2^-60 relative.
  double sum = 0.0;
  for (int k = 21; k >= 3; k -= 2) sum = (sum + 1.0 / k) * s2;
  return 2.0 * s * (1.0 + sum) + e * kLn2;
}

void det_sincos_turns(double t, double* s, double* c) {
  // Quarter turns: q = floor(4t) picks the quadrant, a = (4t - q) * pi/2 in [0, pi/2).
  const double t4 = t * 4.0;  // exact: a power-of-two scale
  const int q = static_cast<int>(t4);
  const double a = (t4 - q) * kHalfPi;
  const double a2 = a * a;
  // Taylor series to a^23 and a^22: error below 2^-54 for a < pi/2.
  // Horner form: sin(a)/a = 1 - a2/(2*3) (1 - a2/(4*5) (...)), cos(a) = 1 - a2/(1*2) (1 - ...).
  double term = 1.0;
  for (int k = 23; k >= 3; k -= 2) term = 1.0 - a2 / ((k - 1) * k) * term;
  const double sn = a * term;
  term = 1.0;
  for (int k = 22; k >= 2; k -= 2) term = 1.0 - a2 / ((k - 1) * k) * term;
  const double cs = term;
  switch (q & 3) {
    case 0:
      *s = sn;
      *c = cs;
      break;
    case 1:
      *s = cs;
      *c = -sn;
      break;
    case 2:
      *s = -sn;
      *c = -cs;
      break;
    default:
      *s = -cs;
      *c = sn;
      break;
  }
}

double uniform(uint64_t key, uint64_t counter) {
  return (static_cast<double>(at(key, counter) >> 11) + 0.5) * 0x1.0p-53;
}

double normal(uint64_t key, uint64_t i) {
  const uint64_t pair = i & ~uint64_t{1};
  const double u1 = uniform(key, pair);
  const double u2 = uniform(key, pair + 1);
  const double r = det_sqrt(-2.0 * det_log(u1));
  double s, c;
  det_sincos_turns(u2, &s, &c);
  return (i & 1) ? r * s : r * c;
}

void fill_normal(float* out, std::size_t n, uint64_t key, uint64_t first, double mean, double std) {
  for (std::size_t j = 0; j < n; ++j) {
    out[j] = static_cast<float>(mean + std * normal(key, first + j));
  }
}

uint64_t Stream::below(uint64_t n) {
  // Reject the top (2^64 mod n) values so every residue is equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t w = next();
    if (w >= threshold) return w % n;
  }
}

}  // namespace bistro::rng
