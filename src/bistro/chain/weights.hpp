// Weight vectors as subtensor accepts them: the validation rules of set_weights, in the chain's
// order and with its error names, and the conversions between a validator's float scores and the
// u16 values the chain stores.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bistro::chain {

// subtensor's vec_u16_max_upscale_to_u16: scales so the largest value becomes 65535, rounding
// half away from zero in I32F32.
std::vector<uint16_t> max_upscale(const std::vector<uint16_t>& values);

// The Bittensor SDK's conversion of scores to (uids, u16 weights): w / max(w) * 65535 rounded,
// zero and non-finite or negative scores dropped. Returns empty vectors when every score is zero.
struct WeightVector {
  std::vector<uint16_t> uids;
  std::vector<uint16_t> values;
};
WeightVector weights_from_scores(const std::vector<double>& scores);

// What set_weights checks, given the facts about the caller and the subnet.
struct WeightRules {
  uint16_t subnet_n = 0;  // registered uids
  uint16_t min_allowed_weights = 1;
  uint16_t max_weight_limit = 65535;
  uint64_t version_key = 0;   // the subnet's; 0 accepts any
  uint64_t rate_limit = 100;  // blocks between two set_weights by one uid
};
struct Caller {
  std::optional<uint16_t> uid;  // nullopt: hotkey not registered on the subnet
  bool validator_permit = false;
  bool owner = false;
  uint64_t last_update = 0;  // 0: never set weights
};

// Returns the subtensor error name the call fails with, or nullopt when the weights are accepted.
std::optional<std::string> check_set_weights(const WeightRules& rules, const Caller& caller,
                                             const std::vector<uint16_t>& uids,
                                             const std::vector<uint16_t>& values,
                                             uint64_t version_key, uint64_t block);

}  // namespace bistro::chain
