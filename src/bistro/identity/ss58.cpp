#include "bistro/identity/ss58.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro {
namespace {
constexpr const char* kAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

std::array<uint8_t, 2> checksum(const uint8_t* data, size_t n) {
  ensure_sodium();
  std::vector<uint8_t> pre = {'S', 'S', '5', '8', 'P', 'R', 'E'};
  pre.insert(pre.end(), data, data + n);
  uint8_t hash[64];
  crypto_generichash(hash, sizeof hash, pre.data(), pre.size(), nullptr, 0);
  return {hash[0], hash[1]};
}
}  // namespace

std::string base58_encode(const std::vector<uint8_t>& bytes) {
  // Repeated division of the big-endian number by 58.
  std::vector<uint8_t> digits;  // little-endian base-58 digits
  for (uint8_t b : bytes) {
    int carry = b;
    for (auto& d : digits) {
      carry += d * 256;
      d = static_cast<uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry) {
      digits.push_back(static_cast<uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out;
  for (size_t i = 0; i < bytes.size() && bytes[i] == 0; ++i) out += '1';
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out += kAlphabet[*it];
  return out;
}

std::vector<uint8_t> base58_decode(const std::string& text) {
  std::vector<uint8_t> bytes;  // little-endian base-256
  for (char c : text) {
    const char* p = std::strchr(kAlphabet, c);
    check(c != '\0' && p != nullptr, "'{}' is not a base58 character", c);
    int carry = static_cast<int>(p - kAlphabet);
    for (auto& b : bytes) {
      carry += b * 58;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry) {
      bytes.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  for (size_t i = 0; i < text.size() && text[i] == '1'; ++i) bytes.push_back(0);
  std::reverse(bytes.begin(), bytes.end());
  return bytes;
}

std::string ss58_encode(const PublicKey& key, uint8_t prefix) {
  check(prefix < 64, "ss58: only simple (one-byte) prefixes below 64 are supported");
  std::vector<uint8_t> raw = {prefix};
  raw.insert(raw.end(), key.begin(), key.end());
  const auto sum = checksum(raw.data(), raw.size());
  raw.insert(raw.end(), sum.begin(), sum.end());
  return base58_encode(raw);
}

PublicKey ss58_decode(const std::string& address, uint8_t expected_prefix) {
  std::vector<uint8_t> raw;
  try {
    raw = base58_decode(address);
  } catch (const Error& e) {
    fail("address '{}': {}", address, e.what());
  }
  check(raw.size() == 35, "address '{}': {} bytes, expected 35 (prefix, key, checksum)", address,
        raw.size());
  check(raw[0] == expected_prefix, "address '{}': network prefix {}, expected {}", address, raw[0],
        expected_prefix);
  const auto sum = checksum(raw.data(), 33);
  check(sum[0] == raw[33] && sum[1] == raw[34], "address '{}': checksum mismatch", address);
  PublicKey key;
  std::copy(raw.begin() + 1, raw.begin() + 33, key.begin());
  return key;
}

}  // namespace bistro
