// I32F32: the signed 32.32 fixed-point number subtensor's epoch computes in (substrate_fixed's
// I32F32). Yuma Consensus must match the chain bit for bit, so every operation here reproduces the
// chain's rounding: products are widened and floored, quotients are (a << 32) / b truncated toward
// zero, division by zero gives zero (safe_div), and saturating operations clamp to the range.
#pragma once

#include <compare>
#include <cstdint>
#include <limits>

namespace bistro::chain {

struct I32F32 {
  int64_t bits = 0;

  static constexpr int kFrac = 32;
  static constexpr I32F32 from_bits(int64_t b) { return I32F32{b}; }
  static constexpr I32F32 from_int(int64_t v) {
    return from_wide(static_cast<__int128>(v) << kFrac);
  }
  static constexpr I32F32 one() { return from_bits(int64_t{1} << kFrac); }
  static constexpr I32F32 zero() { return from_bits(0); }
  static constexpr I32F32 max() { return from_bits(std::numeric_limits<int64_t>::max()); }
  // Clamps a widened value into range (saturating_from_num of a wider fixed number).
  static constexpr I32F32 from_wide(__int128 v) {
    if (v > std::numeric_limits<int64_t>::max()) return max();
    if (v < std::numeric_limits<int64_t>::min())
      return from_bits(std::numeric_limits<int64_t>::min());
    return from_bits(static_cast<int64_t>(v));
  }

  constexpr auto operator<=>(const I32F32&) const = default;

  // For logs and tests only; never feeds back into consensus arithmetic.
  double to_double() const { return static_cast<double>(bits) / 4294967296.0; }
};

constexpr I32F32 sat_add(I32F32 a, I32F32 b) {
  return I32F32::from_wide(static_cast<__int128>(a.bits) + b.bits);
}
constexpr I32F32 sat_sub(I32F32 a, I32F32 b) {
  return I32F32::from_wide(static_cast<__int128>(a.bits) - b.bits);
}
// The widened product shifted right: an arithmetic shift, i.e. floor, as substrate_fixed does.
constexpr I32F32 sat_mul(I32F32 a, I32F32 b) {
  return I32F32::from_wide((static_cast<__int128>(a.bits) * b.bits) >> I32F32::kFrac);
}
// (a << 32) / b truncated toward zero; zero when b is zero (subtensor's safe_div).
constexpr I32F32 safe_div(I32F32 a, I32F32 b) {
  if (b.bits == 0) return I32F32::zero();
  return I32F32::from_wide((static_cast<__int128>(a.bits) << I32F32::kFrac) / b.bits);
}
constexpr I32F32 min(I32F32 a, I32F32 b) {
  return b < a ? b : a;
}
constexpr I32F32 max(I32F32 a, I32F32 b) {
  return a < b ? b : a;
}
constexpr I32F32 clamp(I32F32 v, I32F32 lo, I32F32 hi) {
  return max(min(v, hi), lo);
}

// saturating_to_num::<u16>: the integer part (floor), clamped to [0, 65535].
constexpr uint16_t to_u16(I32F32 x) {
  int64_t v = x.bits >> I32F32::kFrac;
  return static_cast<uint16_t>(v < 0 ? 0 : v > 65535 ? 65535 : v);
}
// A proportion in [0, 1] stored as u16: floor(x * 65535).
constexpr uint16_t proportion_to_u16(I32F32 x) {
  return to_u16(sat_mul(x, I32F32::from_int(65535)));
}
// A u16 proportion read back: x / 65535.
constexpr I32F32 u16_proportion(uint16_t x) {
  return safe_div(I32F32::from_int(x), I32F32::from_int(65535));
}

// exp(x) for x clamped to [-20, 20] (subtensor's exp_safe), computed with integers only so every
// node gets the same bits. Accurate to the last bit or two of I32F32; substrate_fixed's own series
// may differ there (see docs/protocol.md).
I32F32 exp_safe(I32F32 x);

}  // namespace bistro::chain
