// SCALE, substrate's binary codec: little-endian fixed-width integers, compact integers (the two
// low bits of the first byte pick 1, 2, 4 or n bytes), length-prefixed sequences. Reader treats
// its bytes as hostile: every read is bounds-checked and a failure throws ScaleError naming what
// was being decoded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bistro/core/error.hpp"

namespace bistro::scale {

using u128 = unsigned __int128;

class ScaleError : public Error {
 public:
  using Error::Error;
};

class Writer {
 public:
  Writer& u8(uint8_t v);
  Writer& u16(uint16_t v);
  Writer& u32(uint32_t v);
  Writer& u64(uint64_t v);
  Writer& u128(scale::u128 v);
  Writer& boolean(bool v) { return u8(v ? 1 : 0); }
  Writer& compact(scale::u128 v);
  Writer& raw(std::string_view bytes);
  Writer& raw(std::span<const uint8_t> bytes);
  Writer& bytes(std::string_view b) { return compact(b.size()).raw(b); }  // Vec<u8>, String
  Writer& u16s(const std::vector<uint16_t>& v);                           // Vec<u16>
  const std::string& data() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads from a view: the bytes must outlive the Reader.
class Reader {
 public:
  Reader(std::string_view data, std::string what) : data_(data), what_(std::move(what)) {}
  uint8_t u8();
  uint16_t u16();
  uint32_t u32();
  uint64_t u64();
  scale::u128 u128();
  bool boolean();
  scale::u128 compact();
  // A compact length, checked against what is left (each element at least `min_element` bytes).
  size_t length(size_t min_element = 1);
  std::string_view raw(size_t n);
  std::string bytes() { return std::string(raw(length())); }
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool done() const { return pos_ == data_.size(); }
  [[noreturn]] void fail(const std::string& why) const;

 private:
  std::string_view data_;
  size_t pos_ = 0;
  std::string what_;
};

std::string compact(u128 v);  // the encoding alone
std::string to_hex(std::string_view bytes, bool prefix = true);
// Accepts an optional 0x; throws ScaleError naming `what` on odd length or a non-hex digit.
std::string from_hex(std::string_view hex, const std::string& what);

}  // namespace bistro::scale
