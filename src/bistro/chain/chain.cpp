#include "bistro/chain/chain.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bistro/identity/ss58.hpp"

namespace bistro::chain {

std::optional<uint16_t> Metagraph::uid_of(const std::string& hotkey) const {
  for (const Neuron& n : neurons)
    if (n.hotkey == hotkey) return n.uid;
  return std::nullopt;
}

namespace {
// One table drives both directions, so a new hyperparameter is one line.
template <typename F>
void each_field(Hyperparameters& h, F&& f) {
  f("tempo", h.tempo);
  f("immunity_period", h.immunity_period);
  f("activity_cutoff", h.activity_cutoff);
  f("max_allowed_uids", h.max_uids);
  f("max_allowed_validators", h.max_validators);
  f("min_allowed_weights", h.min_allowed_weights);
  f("max_weight_limit", h.max_weight_limit);
  f("weights_rate_limit", h.weights_rate_limit);
  f("weights_version", h.weights_version_key);
  f("kappa", h.kappa);
  f("bonds_penalty", h.bonds_penalty);
  f("bonds_moving_avg", h.bonds_moving_average);
  f("yuma3_enabled", h.yuma3);
  f("liquid_alpha_enabled", h.liquid_alpha);
  f("alpha_low", h.alpha_low);
  f("alpha_high", h.alpha_high);
  f("alpha_sigmoid_steepness", h.alpha_sigmoid_steepness);
  f("stake_threshold", h.stake_threshold);
  f("commit_reveal_weights_enabled", h.commit_reveal);
  f("commit_reveal_period", h.reveal_period);
  f("emission_per_block", h.emission_per_block);
}
}  // namespace

nlohmann::json to_json(const Hyperparameters& h) {
  nlohmann::json j = nlohmann::json::object();
  Hyperparameters copy = h;
  each_field(copy, [&](const char* name, auto& v) { j[name] = v; });
  return j;
}

Hyperparameters hyperparameters_from_json(const nlohmann::json& j, const std::string& origin,
                                          Hyperparameters h) {
  check(j.is_object(), "{}: hyperparameters must be a JSON object", origin);
  size_t known = 0;
  each_field(h, [&](const char* name, auto& v) {
    using T = std::decay_t<decltype(v)>;
    auto it = j.find(name);
    if (it == j.end()) return;
    ++known;
    if constexpr (std::is_same_v<T, bool>) {
      check(it->is_boolean(), "{}: {} must be true or false", origin, name);
      v = it->template get<bool>();
    } else {
      check(it->is_number_integer(), "{}: {} must be an integer", origin, name);
      if constexpr (std::is_signed_v<T>) {
        auto x = it->template get<int64_t>();
        check(x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max(),
              "{}: {} = {} is out of range", origin, name, x);
        v = static_cast<T>(x);
      } else {
        check(!it->is_number_integer() || it->is_number_unsigned() ||
                  it->template get<int64_t>() >= 0,
              "{}: {} must not be negative", origin, name);
        auto x = it->template get<uint64_t>();
        check(x <= std::numeric_limits<T>::max(), "{}: {} = {} is out of range", origin, name, x);
        v = static_cast<T>(x);
      }
    }
  });
  if (known != j.size())
    for (auto& [key, value] : j.items()) {
      bool found = false;
      each_field(h, [&](const char* name, auto&) { found |= key == name; });
      check(found, "{}: unknown hyperparameter '{}'", origin, key);
    }
  check(h.tempo > 0, "{}: tempo must be at least 1", origin);
  check(h.max_uids > 0, "{}: max_allowed_uids must be at least 1", origin);
  check(h.bonds_moving_average <= 1'000'000, "{}: bonds_moving_avg is per million (<= 1000000)",
        origin);
  check(h.alpha_low <= h.alpha_high, "{}: alpha_low must not exceed alpha_high", origin);
  return h;
}

double Chain::seconds_until(uint64_t target) {
  return (static_cast<double>(target) - static_cast<double>(block()) - 0.5) * seconds_per_block();
}

void Chain::select_mechanism(uint16_t netuid, uint8_t mecid) {
  if (mecid != 0)
    throw ChainError("MechanismDoesNotExist",
                     fmt::format("subnet {} has no mechanism {} (this chain has one per subnet, 0)",
                                 netuid, mecid));
  mechanism_ = 0;
}

void Chain::commit_reveal_weights(uint16_t netuid, const Signer& hotkey,
                                  const std::vector<uint16_t>& uids,
                                  const std::vector<uint16_t>& values, uint64_t version_key) {
  const std::string who = ss58_encode(hotkey.public_key());
  auto& c = committers_[who];
  if (!c) {
    const auto dir = reveals_dir();
    c = std::make_unique<WeightsCommitter>(dir.empty() ? dir : dir / (who + ".json"));
  }
  c->submit(*this, netuid, hotkey, uids, values, version_key,
            [](const std::string& msg) { fmt::print(stderr, "bistro: {}\n", msg); });
}

}  // namespace bistro::chain
