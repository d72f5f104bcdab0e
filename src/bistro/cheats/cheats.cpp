#include "bistro/cheats/cheats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "bistro/compress/chunks.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/rng.hpp"

namespace bistro {
namespace {

constexpr std::pair<Behaviour, const char*> kNames[] = {
    {Behaviour::Honest, "honest"},
    {Behaviour::Lazy, "lazy"},
    {Behaviour::Garbage, "garbage"},
    {Behaviour::Copycat, "copycat"},
    {Behaviour::LateCopycat, "late-copycat"},
    {Behaviour::Replay, "replay"},
    {Behaviour::Noise, "noise"},
    {Behaviour::Poison, "poison"},
    {Behaviour::PoisonMax, "poison-max"},
    {Behaviour::DataCheat, "data-cheat"},
    {Behaviour::Late, "late"},
    {Behaviour::Sybil, "sybil"},
    {Behaviour::NegativeExploit, "negative-exploit"},
};

}  // namespace

Behaviour parse_behaviour(const std::string& name) {
  std::string all;
  for (auto [b, n] : kNames) {
    if (name == n) return b;
    all += all.empty() ? n : std::string(", ") + n;
  }
  throw Error("unknown miner behaviour '" + name + "' (one of: " + all + ")");
}

const char* behaviour_name(Behaviour b) {
  for (auto [k, n] : kNames)
    if (k == b) return n;
  return "?";
}

namespace {
constexpr std::pair<ValidatorBehaviour, const char*> kValidatorNames[] = {
    {ValidatorBehaviour::Honest, "honest"},
    {ValidatorBehaviour::SelfWeight, "self-weight"},
    {ValidatorBehaviour::WeightCopier, "weight-copier"},
    {ValidatorBehaviour::AdmitAll, "admit-all"},
    {ValidatorBehaviour::Censor, "censor"},
    {ValidatorBehaviour::Stall, "stall"},
    {ValidatorBehaviour::Slow, "slow"},
};
}  // namespace

ValidatorBehaviour parse_validator_behaviour(const std::string& name) {
  for (auto [b, n] : kValidatorNames)
    if (name == n) return b;
  throw Error("unknown validator behaviour '" + name +
              "' (one of: honest, self-weight, weight-copier, admit-all, censor, stall, slow)");
}

bool judges_honestly(ValidatorBehaviour b) {
  return b == ValidatorBehaviour::Honest || b == ValidatorBehaviour::Censor ||
         b == ValidatorBehaviour::Stall || b == ValidatorBehaviour::Slow;
}

const char* validator_behaviour_name(ValidatorBehaviour b) {
  for (auto [k, n] : kValidatorNames)
    if (k == b) return n;
  return "?";
}

std::map<uint16_t, double> dishonest_weights(ValidatorBehaviour b, const chain::Metagraph& m,
                                             const std::vector<uint16_t>& miners) {
  std::map<uint16_t, double> out;
  if (miners.empty() || judges_honestly(b)) return out;
  if (b == ValidatorBehaviour::SelfWeight) {
    out[*std::min_element(miners.begin(), miners.end())] = 1.0;
    return out;
  }
  if (b == ValidatorBehaviour::AdmitAll) {  // it judged nobody: everyone alike
    for (uint16_t uid : miners) out[uid] = 1.0 / static_cast<double>(miners.size());
    return out;
  }
  double total = 0;
  for (uint16_t uid : miners)
    if (uid < m.neurons.size()) total += m.neurons[uid].consensus;
  if (!(total > 0)) return out;
  for (uint16_t uid : miners)
    out[uid] = uid < m.neurons.size() ? m.neurons[uid].consensus / total : 0.0;
  return out;
}

std::vector<Behaviour> cheat_kinds() {
  std::vector<Behaviour> out;
  for (auto [b, n] : kNames)
    if (b != Behaviour::Honest) out.push_back(b);
  return out;
}

bool behaviour_trains(Behaviour b) {
  switch (b) {
    case Behaviour::Honest:
    case Behaviour::Poison:
    case Behaviour::PoisonMax:
    case Behaviour::DataCheat:
    case Behaviour::Late:
    case Behaviour::Sybil:
      return true;
    default:
      return false;
  }
}

void poison_update(Update& u, float factor, float limit) {
  auto f = [&](float v) { return std::clamp(-factor * v, -limit, limit); };
  for (auto& t : u.tensors) {  // codes keep their positions: f maps each level and its values
    for (float& v : t.val) v = f(v);
    for (float& v : t.levels) v = f(v);
  }
}

void poison_as(Behaviour b, Update& u) {
  if (b == Behaviour::Poison) poison_update(u, 1000.0f, 9000.0f);
  if (b == Behaviour::PoisonMax) poison_update(u, 1e30f, 1e4f);
}

Update noise_update(const std::vector<ParameterSpec>& params, int64_t k, int64_t chunk_cap,
                    const std::vector<float>& rms, uint64_t seed) {
  check(rms.size() == params.size(), "noise_update: {} RMS values for {} parameters", rms.size(),
        params.size());
  Update u;
  u.codec = "sparseloco";
  u.k = k;
  u.chunk_cap = chunk_cap;
  u.value_bits = 2;
  u.index_bits = 12;
  rng::Stream s(seed);
  std::vector<int32_t> perm;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto plan = chunk_plan(params[i].shape, chunk_cap);
    UpdateTensor t;
    t.name = params[i].name;
    t.rows = plan.chunks();
    t.k = clamp_k(k, plan);
    // Four levels at +-0.5 and +-1.5 of a unit, scaled so the values' RMS is the target.
    const float unit = rms[i] / std::sqrt(1.25f);
    t.levels = {-1.5f * unit, -0.5f * unit, 0.5f * unit, 1.5f * unit};
    perm.resize(static_cast<size_t>(plan.size()));
    for (int64_t r = 0; r < t.rows; ++r) {
      std::iota(perm.begin(), perm.end(), 0);
      for (int64_t j = 0; j < t.k; ++j) {  // a partial Fisher-Yates draw of k distinct indices
        const auto pick = j + static_cast<int64_t>(s.below(static_cast<uint64_t>(plan.size() - j)));
        std::swap(perm[j], perm[pick]);
      }
      std::sort(perm.begin(), perm.begin() + t.k);
      for (int64_t j = 0; j < t.k; ++j) {
        t.idx.push_back(perm[j]);
        t.val.push_back(t.levels[s.next() & 3]);
      }
    }
    u.tensors.push_back(std::move(t));
  }
  return u;
}

std::vector<float> update_rms(const Update& u) {
  std::vector<float> out;
  for (const auto& t : u.tensors) {
    double s = 0;
    for (float v : t.val) s += static_cast<double>(v) * v;
    out.push_back(t.val.empty() ? 0.0f : static_cast<float>(std::sqrt(s / t.val.size())));
  }
  return out;
}

}  // namespace bistro
