#include "bistro/chain/weights.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "bistro/chain/fixed.hpp"

namespace bistro::chain {
namespace {

// fixed's round(): to nearest, ties away from zero.
I32F32 round_fixed(I32F32 x) {
  constexpr int64_t kHalf = int64_t{1} << 31, kMask = ~((int64_t{1} << 32) - 1);
  if (x.bits >= 0) return I32F32::from_wide((static_cast<__int128>(x.bits) + kHalf) & kMask);
  return I32F32::from_wide(-((-static_cast<__int128>(x.bits) + kHalf) & kMask));
}

bool is_self_weight(uint16_t uid, const std::vector<uint16_t>& uids,
                    const std::vector<uint16_t>& values) {
  return values.size() == 1 && !uids.empty() && uids[0] == uid;
}

}  // namespace

std::vector<uint16_t> max_upscale(const std::vector<uint16_t>& values) {
  std::vector<uint16_t> out;
  if (values.empty()) return out;
  const I32F32 u16max = I32F32::from_int(65535), threshold = I32F32::from_int(32768);
  I32F32 top = I32F32::from_int(*std::max_element(values.begin(), values.end()));
  for (uint16_t v : values) {
    I32F32 e = I32F32::from_int(v);
    if (top == I32F32::zero()) {
      out.push_back(to_u16(sat_mul(e, u16max)));
    } else if (top > threshold) {
      out.push_back(to_u16(round_fixed(sat_mul(e, safe_div(u16max, top)))));
    } else {
      out.push_back(to_u16(round_fixed(safe_div(sat_mul(e, u16max), top))));
    }
  }
  return out;
}

WeightVector weights_from_scores(const std::vector<double>& scores) {
  double top = 0;
  for (double s : scores)
    if (std::isfinite(s) && s > top) top = s;
  WeightVector w;
  if (top <= 0) return w;
  for (size_t uid = 0; uid < scores.size() && uid <= 65535; ++uid) {
    double s = scores[uid];
    if (!std::isfinite(s) || s <= 0) continue;
    auto v = static_cast<uint16_t>(std::lround(s / top * 65535.0));
    if (v == 0) continue;
    w.uids.push_back(static_cast<uint16_t>(uid));
    w.values.push_back(v);
  }
  return w;
}

std::optional<std::string> check_set_weights(const WeightRules& rules, const Caller& caller,
                                             const std::vector<uint16_t>& uids,
                                             const std::vector<uint16_t>& values,
                                             uint64_t version_key, uint64_t block) {
  if (uids.size() != values.size()) return "WeightVecNotEqualSize";
  if (uids.size() > rules.subnet_n) return "UidsLengthExceedUidsInSubNet";
  if (!caller.uid) return "HotKeyNotRegisteredInSubNet";
  if (rules.version_key != 0 && version_key < rules.version_key) return "IncorrectWeightVersionKey";
  if (caller.last_update != 0 && block - std::min(block, caller.last_update) < rules.rate_limit)
    return "SettingWeightsTooFast";
  const bool self_weight = is_self_weight(*caller.uid, uids, values);
  if (!self_weight && !caller.owner && !caller.validator_permit) return "NeuronNoValidatorPermit";
  if (std::set<uint16_t>(uids.begin(), uids.end()).size() != uids.size()) return "DuplicateUids";
  for (uint16_t u : uids)
    if (u >= rules.subnet_n) return "UidVecContainInvalidOne";
  size_t min_allowed = std::min<size_t>(rules.min_allowed_weights, rules.subnet_n);
  if (!self_weight && values.size() < min_allowed) return "WeightVecLengthIsLow";
  if (!self_weight && rules.max_weight_limit != 65535) {
    // check_vec_max_limited: the largest normalised weight may not exceed the limit.
    std::vector<uint16_t> up = max_upscale(values);
    I32F32 total;
    for (uint16_t v : up) total = sat_add(total, I32F32::from_int(v));
    I32F32 limit = safe_div(I32F32::from_int(rules.max_weight_limit), I32F32::from_int(65535));
    for (uint16_t v : up)
      if (safe_div(I32F32::from_int(v), total) > limit) return "MaxWeightExceeded";
  }
  return std::nullopt;
}

}  // namespace bistro::chain
