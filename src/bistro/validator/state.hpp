// The gauntlet's state as the validator persists it in state.json: the ratings (by hotkey) and
// the evidence test's pooled null. Reading is lenient on purpose: a missing or malformed field
// keeps its default (a state written by an older version, a hand-edited file), a malformed entry
// is skipped, and counts that cannot be negative are clamped, so a restarted validator never
// stops on its own state; what it cannot read it rebuilds from the next windows.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bistro/validator/gauntlet.hpp"

namespace bistro {

nlohmann::json ratings_to_json(const std::map<std::string, Rating>& ratings);
// Entries without a numeric "rating" are skipped. A state written before `seen` carries
// "measured" (the window), read as seen = measured + 1.
std::map<std::string, Rating> ratings_from_json(const nlohmann::json& j);

nlohmann::json null_spread_to_json(const NullSpread& n);
// nullopt unless both sums are there, finite and not negative.
std::optional<NullSpread> null_spread_from_json(const nlohmann::json& j);

}  // namespace bistro
