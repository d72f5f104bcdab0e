#include "bistro/localnet/live_table.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

namespace bistro::localnet {

std::string LiveTable::sync(uint64_t w, const std::string& hash, bool count) {
  if (!loco_) return "";
  auto mh = master_hash_.find(w);
  if (hash.empty() || mh == master_hash_.end() || mh->second.empty()) return "-";
  compared_ += count;
  agree_ += count && hash == mh->second;
  return hash == mh->second ? "same" : "DIFFER";
}

const std::map<uint64_t, nlohmann::json>& LiveTable::lines_of(const std::string& name) {
  auto tail = tails_.try_emplace(name, state_dir_ / name / "metrics.jsonl").first;
  auto& lines = lines_[name];
  for (auto& ml : tail->second.next()) {
    if (!ml["window"].is_number_unsigned()) continue;
    nlohmann::json kept = {{"loss", ml.value("loss", nlohmann::json())},
                           {"params_hash", ml.value("params_hash", "")},
                           {"role", ml.value("role", "lead")},
                           {"weights", nlohmann::json::object()}};
    const auto miners = ml.value("miners", nlohmann::json::object());  // (not a temporary)
    for (auto& [uid, mj] : miners.items()) kept["weights"][uid] = mj.value("weight", 0.0);
    lines[ml["window"].get<uint64_t>()] = std::move(kept);
  }
  return lines;
}

nlohmann::json LiveTable::validators(uint64_t w, const chain::Metagraph& m,
                                     const std::vector<Proc>& procs) {
  nlohmann::json out = nlohmann::json::array();
  size_t count = 0;
  for (const auto& p : procs) count += p.behaviour == "validator";
  const bool print = count > 1;
  if (print)
    fmt::print("  {:<12} {:>4} {:>9} {:<13} {:>7} {:>9} {:>7}  {}\n", "validator", "uid",
               "stake(τ)", "role", "vtrust", "dividends", "theta", "weights (uid:weight)");
  for (const auto& p : procs) {
    if (p.behaviour != "validator") continue;
    std::string role = "-", hash;
    nlohmann::json weights = nlohmann::json::object();
    // Its line of window w, or its latest before it (a follower applies the lead's record a
    // moment after the lead has written its line).
    const auto& lines = lines_of(p.name);
    if (auto it = lines.upper_bound(w); it != lines.begin()) {
      const auto& ml = std::prev(it)->second;
      role = ml.value("role", "lead");
      hash = std::prev(it)->first == w ? ml.value("params_hash", "") : "";
      weights = ml["weights"];
    }
    const std::string theta = sync(w + 1, hash, false);
    const auto& n = m.neurons.at(p.uid);
    std::string ws;
    for (auto& [uid, v] : weights.items()) ws += fmt::format("{}:{:.2f} ", uid, v.get<double>());
    if (print)
      fmt::print("  {:<12} {:>4} {:>9.1f} {:<13} {:>7.3f} {:>9.4f} {:>7}  {}\n", p.name, p.uid,
                 p.stake / 1e9, p.kind == "honest" ? role : p.kind, n.validator_trust / 65535.0,
                 n.dividends / 65535.0, theta, ws);
    out.push_back({{"name", p.name},
                   {"kind", p.kind},
                   {"uid", p.uid},
                   {"stake", p.stake / 1e9},
                   {"role", role},
                   {"vtrust", n.validator_trust / 65535.0},
                   {"dividends", n.dividends / 65535.0},
                   {"theta", theta},
                   {"weights", weights}});
  }
  return out;
}

nlohmann::json LiveTable::add(nlohmann::json line, const chain::Metagraph& m,
                              const std::vector<Proc>& procs) {
  const uint64_t w = line["window"].get<uint64_t>();
  if (loco_) {
    master_hash_[w] = line.value("base_hash", "");
    master_hash_[w + 1] = line.value("params_hash", "");
  }
  fmt::print(
      "\nwindow {} (block {}): master loss {:.4f} ({} {:.4f}), {} updates accepted, weights {}\n",
      w, m.block, line["master_loss"].get<double>(),
      loco_ ? "before the outer step" : "before merge", line["base_loss"].get<double>(),
      line["accepted"].get<int>(), line["weights"].get<std::string>());
  fmt::print("  {:<9} {:>4} {:<16} {:>8} {:>10} {:>7} {:>8} {:>9} {:>11} {:>7}  {}\n", "miner",
             "uid", "kind", "loss", "score", "rating", "weight", "incentive", "emission(τ)",
             loco_ ? "theta" : "", "status");
  nlohmann::json view = nlohmann::json::object();
  for (size_t k = 1; k < procs.size(); ++k) {
    const Proc& p = procs[k];
    if (p.behaviour == "validator") continue;  // the followers: below
    double loss = NAN;
    std::string hash;
    const auto& lines = lines_of(p.name);
    if (auto it = lines.find(w); it != lines.end()) {
      if (it->second["loss"].is_number()) loss = it->second["loss"].get<double>();
      hash = it->second.value("params_hash", "");
    }
    const std::string theta = sync(w, hash);
    auto mj = line["miners"].value(std::to_string(p.uid), nlohmann::json::object());
    const auto& n = m.neurons.at(p.uid);
    std::string status = mj.value("status", "-");
    if (status == "ok" && !mj.value("reason", "").empty()) status = mj.value("reason", "");
    fmt::print(
        "  {:<9} {:>4} {:<16} {:>8.4f} {:>10.5f} {:>7.3f} {:>8.3f} {:>9.4f} {:>11.4f} {:>7}  {}\n",
        p.name, p.uid, p.behaviour, loss, mj.value("score", 0.0), mj.value("rating", 0.0),
        mj.value("weight", 0.0), n.incentive / 65535.0, n.emission / 1e9, theta,
        status.substr(0, 70));
    view[std::to_string(p.uid)] = {{"name", p.name},
                                   {"kind", p.behaviour},
                                   {"loss", loss},
                                   {"incentive", n.incentive / 65535.0},
                                   {"emission", n.emission},
                                   {"dividends", n.dividends / 65535.0},
                                   {"consensus", n.consensus / 65535.0},
                                   {"theta", theta}};
  }
  line["validators"] = validators(w, m, procs);
  std::fflush(stdout);  // the live view must reach a pipe or file as it happens
  line["chain"] = view;
  line["validator_dividends"] = m.neurons.at(procs[0].uid).dividends / 65535.0;
  return line;
}

}  // namespace bistro::localnet
