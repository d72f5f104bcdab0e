// SubtensorChain's small codecs, shared by its files (subtensor_chain.cpp, subtensor_weights.cpp):
// a u16 storage key's bytes, and a decoded storage value as an unsigned number.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "bistro/core/error.hpp"
#include "bistro/substrate/scale.hpp"

namespace bistro::chain {

inline std::string u16le(uint16_t v) {
  return scale::Writer().u16(v).take();
}

inline uint64_t json_u64(const nlohmann::json& j, const char* what) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_string()) return std::stoull(j.get<std::string>());
  fail("subtensor: {} is not an unsigned number", what);
}

}  // namespace bistro::chain
