// Substrate's hashes and storage keys: twox (xxHash64 with seeds 0, 1, ...), BLAKE2b, and the
// storage hashers a map's key goes through (the order is metadata's StorageHasher enum).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bistro::substrate {

std::string twox64(std::string_view data);
std::string twox128(std::string_view data);
std::string twox256(std::string_view data);
std::string blake2_128(std::string_view data);
std::string blake2_256(std::string_view data);

enum class Hasher : uint8_t {
  Blake2_128 = 0,
  Blake2_256 = 1,
  Blake2_128Concat = 2,
  Twox128 = 3,
  Twox256 = 4,
  Twox64Concat = 5,
  Identity = 6,
};
std::string apply_hasher(Hasher h, std::string_view encoded_key);

// twox128(pallet) ++ twox128(item) ++ each hashed key.
std::string storage_key(std::string_view pallet, std::string_view item,
                        const std::vector<std::pair<Hasher, std::string>>& keys = {});

}  // namespace bistro::substrate
