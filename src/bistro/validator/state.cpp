#include "bistro/validator/state.hpp"

#include <algorithm>
#include <cmath>

namespace bistro {

nlohmann::json ratings_to_json(const std::map<std::string, Rating>& ratings) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [hk, r] : ratings)
    out[hk] = {{"rating", r.rating},
               {"windows", r.windows},
               {"trusted", r.trusted},
               {"seen", r.seen},
               {"failures", r.failures},
               {"evidence_sum", r.evidence_sum},
               {"evidence_weight", r.evidence_weight},
               {"reading_sum", r.reading_sum},
               {"reading_weight", r.reading_weight},
               {"waited", r.waited},
               {"back_pay", r.back_pay},
               {"paying_back", r.paying_back}};
  return out;
}

namespace {

template <class T>
void read_unsigned(const nlohmann::json& r, const char* key, T& out) {
  if (auto it = r.find(key); it != r.end() && it->is_number_unsigned()) out = it->get<T>();
}

void read_finite(const nlohmann::json& r, const char* key, double& out) {
  if (auto it = r.find(key); it != r.end() && it->is_number() && std::isfinite(it->get<double>()))
    out = it->get<double>();
}

}  // namespace

std::map<std::string, Rating> ratings_from_json(const nlohmann::json& j) {
  std::map<std::string, Rating> out;
  if (!j.is_object()) return out;
  for (const auto& [hk, r] : j.items()) {
    if (!r.is_object() || !r.contains("rating") || !r["rating"].is_number()) continue;
    Rating x;
    read_finite(r, "rating", x.rating);
    x.rating = std::max(0.0, x.rating);
    read_unsigned(r, "windows", x.windows);
    if (auto it = r.find("trusted"); it != r.end() && it->is_boolean()) x.trusted = it->get<bool>();
    if (r.contains("seen"))
      read_unsigned(r, "seen", x.seen);
    else if (auto it = r.find("measured"); it != r.end() && it->is_number_unsigned())
      x.seen = it->get<uint64_t>() + 1;  // a state written before `seen`
    read_unsigned(r, "failures", x.failures);
    read_finite(r, "evidence_sum", x.evidence_sum);
    read_finite(r, "evidence_weight", x.evidence_weight);
    read_finite(r, "reading_sum", x.reading_sum);
    read_finite(r, "reading_weight", x.reading_weight);
    read_unsigned(r, "waited", x.waited);
    read_finite(r, "back_pay", x.back_pay);
    read_finite(r, "paying_back", x.paying_back);
    x.evidence_weight = std::max(0.0, x.evidence_weight);
    x.reading_weight = std::max(0.0, x.reading_weight);
    x.back_pay = std::max(0.0, x.back_pay);
    x.paying_back = std::clamp(x.paying_back, 0.0, 1.0);
    out[hk] = x;
  }
  return out;
}

nlohmann::json null_spread_to_json(const NullSpread& n) {
  return {{"sum_sq", n.sum_sq}, {"reads", n.reads}};
}

std::optional<NullSpread> null_spread_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  NullSpread n{-1, -1};
  read_finite(j, "sum_sq", n.sum_sq);
  read_finite(j, "reads", n.reads);
  if (n.sum_sq < 0 || n.reads < 0) return std::nullopt;
  return n;
}

}  // namespace bistro
