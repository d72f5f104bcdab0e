#include "bistro/substrate/hashing.hpp"

#include <sodium.h>
#include <xxhash.h>

#include "bistro/core/error.hpp"
#include "bistro/identity/signer.hpp"

namespace bistro::substrate {
namespace {
std::string twox(std::string_view data, int words) {
  std::string out;
  for (int seed = 0; seed < words; ++seed) {
    uint64_t h = XXH64(data.data(), data.size(), static_cast<XXH64_hash_t>(seed));
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(h >> (8 * i)));
  }
  return out;
}
std::string blake2(std::string_view data, size_t n) {
  ensure_sodium();
  std::string out(n, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), n,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size(), nullptr, 0);
  return out;
}
}  // namespace

std::string twox64(std::string_view d) {
  return twox(d, 1);
}
std::string twox128(std::string_view d) {
  return twox(d, 2);
}
std::string twox256(std::string_view d) {
  return twox(d, 4);
}
std::string blake2_128(std::string_view d) {
  return blake2(d, 16);
}
std::string blake2_256(std::string_view d) {
  return blake2(d, 32);
}

std::string apply_hasher(Hasher h, std::string_view k) {
  switch (h) {
    case Hasher::Blake2_128:
      return blake2_128(k);
    case Hasher::Blake2_256:
      return blake2_256(k);
    case Hasher::Blake2_128Concat:
      return blake2_128(k) + std::string(k);
    case Hasher::Twox128:
      return twox128(k);
    case Hasher::Twox256:
      return twox256(k);
    case Hasher::Twox64Concat:
      return twox64(k) + std::string(k);
    case Hasher::Identity:
      return std::string(k);
  }
  fail("unknown storage hasher {}", static_cast<int>(h));
}

std::string storage_key(std::string_view pallet, std::string_view item,
                        const std::vector<std::pair<Hasher, std::string>>& keys) {
  std::string out = twox128(pallet) + twox128(item);
  for (const auto& [h, k] : keys) out += apply_hasher(h, k);
  return out;
}

}  // namespace bistro::substrate
