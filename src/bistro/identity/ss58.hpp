// SS58 addresses (substrate): base58(prefix || public key || first 2 bytes of
// blake2b-512("SS58PRE" || prefix || public key)). Bittensor uses prefix 42.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bistro/identity/signer.hpp"

namespace bistro {

std::string ss58_encode(const PublicKey& key, uint8_t prefix = 42);
// Throws bistro::Error naming the address for bad characters, length, prefix or checksum.
PublicKey ss58_decode(const std::string& address, uint8_t expected_prefix = 42);

std::string base58_encode(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> base58_decode(const std::string& text);  // throws on a non-base58 character

}  // namespace bistro
