#include "bistro/substrate/scale.hpp"

#include <fmt/format.h>

#include "bistro/identity/signer.hpp"

namespace bistro::scale {
namespace {
template <typename T>
void put_le(std::string& out, T v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>(static_cast<uint8_t>(v >> (8 * i))));
}
}  // namespace

Writer& Writer::u8(uint8_t v) {
  return put_le(out_, v, 1), *this;
}
Writer& Writer::u16(uint16_t v) {
  return put_le(out_, v, 2), *this;
}
Writer& Writer::u32(uint32_t v) {
  return put_le(out_, v, 4), *this;
}
Writer& Writer::u64(uint64_t v) {
  return put_le(out_, v, 8), *this;
}
Writer& Writer::u128(scale::u128 v) {
  return put_le(out_, v, 16), *this;
}
Writer& Writer::raw(std::string_view b) {
  return out_.append(b), *this;
}
Writer& Writer::raw(std::span<const uint8_t> b) {
  return out_.append(reinterpret_cast<const char*>(b.data()), b.size()), *this;
}

Writer& Writer::u16s(const std::vector<uint16_t>& v) {
  compact(v.size());
  for (uint16_t x : v) u16(x);
  return *this;
}

Writer& Writer::compact(scale::u128 v) {
  if (v < 64) return u8(static_cast<uint8_t>(v << 2));
  if (v < (1 << 14)) return u16(static_cast<uint16_t>((v << 2) | 1));
  if (v < (1u << 30)) return u32(static_cast<uint32_t>((v << 2) | 2));
  int n = 0;
  for (scale::u128 x = v; x; x >>= 8) ++n;
  u8(static_cast<uint8_t>(((n - 4) << 2) | 3));
  put_le(out_, v, n);
  return *this;
}

std::string compact(u128 v) {
  return Writer().compact(v).take();
}

void Reader::fail(const std::string& why) const {
  throw ScaleError(fmt::format("{}: {} (at byte {} of {})", what_, why, pos_, data_.size()));
}

std::string_view Reader::raw(size_t n) {
  if (n > remaining()) fail(fmt::format("needs {} more bytes, {} left", n, remaining()));
  auto out = data_.substr(pos_, n);
  pos_ += n;
  return out;
}

namespace {
template <typename T>
T get_le(std::string_view b) {
  T v = 0;
  for (size_t i = 0; i < b.size(); ++i) v |= static_cast<T>(static_cast<uint8_t>(b[i])) << (8 * i);
  return v;
}
}  // namespace

uint8_t Reader::u8() {
  return get_le<uint8_t>(raw(1));
}
uint16_t Reader::u16() {
  return get_le<uint16_t>(raw(2));
}
uint32_t Reader::u32() {
  return get_le<uint32_t>(raw(4));
}
uint64_t Reader::u64() {
  return get_le<uint64_t>(raw(8));
}
scale::u128 Reader::u128() {
  return get_le<scale::u128>(raw(16));
}

bool Reader::boolean() {
  uint8_t b = u8();
  if (b > 1) fail(fmt::format("bool byte {} is neither 0 nor 1", b));
  return b == 1;
}

scale::u128 Reader::compact() {
  const uint8_t first = static_cast<uint8_t>(raw(1)[0]);
  switch (first & 3) {
    case 0:
      return first >> 2;
    case 1: {
      pos_ -= 1;
      uint16_t v = u16() >> 2;
      if (v < 64) fail("non-canonical compact");
      return v;
    }
    case 2: {
      pos_ -= 1;
      uint32_t v = u32() >> 2;
      if (v < (1 << 14)) fail("non-canonical compact");
      return v;
    }
    default: {
      const size_t n = (first >> 2) + 4;
      if (n > 16) fail(fmt::format("compact of {} bytes is beyond u128", n));
      auto v = get_le<scale::u128>(raw(n));
      if (v < (scale::u128{1} << 30) || (v >> (8 * (n - 1))) == 0) fail("non-canonical compact");
      return v;
    }
  }
}

size_t Reader::length(size_t min_element) {
  scale::u128 n = compact();
  if (n > remaining() / std::max<size_t>(1, min_element) && min_element > 0)
    fail(fmt::format("length {} exceeds the {} bytes left", static_cast<uint64_t>(n), remaining()));
  return static_cast<size_t>(n);
}

std::string to_hex(std::string_view bytes, bool prefix) {
  return (prefix ? "0x" : "") +
         bistro::to_hex({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

std::string from_hex(std::string_view hex, const std::string& what) {
  if (hex.starts_with("0x")) hex.remove_prefix(2);
  if (hex.size() % 2) throw ScaleError(fmt::format("{}: hex of odd length {}", what, hex.size()));
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw ScaleError(fmt::format("{}: '{}' is not a hex digit", what, c));
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  return out;
}

}  // namespace bistro::scale
