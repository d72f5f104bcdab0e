#include "bistro/validator/tie_groups.hpp"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

namespace bistro {

std::map<size_t, bool> tie_group_picks(const std::vector<Observation>& obs,
                                       const std::map<std::string, Rating>& ratings,
                                       const WindowEvidence& ev) {
  auto group_of = [&](size_t i) {
    uint16_t u = obs[i].uid;
    for (size_t hops = 0; hops <= obs.size(); ++hops) {
      auto it = ev.index.find(u);
      if (it == ev.index.end() || !obs[it->second].duplicate) break;
      u = obs[it->second].twin;
    }
    return u;
  };
  std::map<uint16_t, std::vector<size_t>> groups;  // first upload's uid -> its copies
  for (size_t i = 0; i < obs.size(); ++i)
    if (obs[i].duplicate) groups[group_of(i)].push_back(i);
  // The member's own-page evidence over its recent windows, this one included: a copy can show
  // as much as its source in one window where their pages overlap (two uids' pages can share a
  // config), not window after window.
  auto strength = [&](size_t m) {
    return has_evidence(obs[m]) ? ev.combined[m].z : obs[m].margin();
  };
  auto rating = [&](size_t m) { return ratings.at(obs[m].hotkey).rating; };
  std::map<size_t, bool> pick;
  for (auto& [first, members] : groups) {
    if (auto it = ev.index.find(first); it != ev.index.end() && !obs[it->second].duplicate)
      members.insert(members.begin(), it->second);
    std::optional<size_t> best;
    for (size_t m : members) {
      pick[m] = false;
      if (obs[m].status == "ok" && obs[m].measured && ev.tests[m].empty() &&
          (!best || strength(m) > strength(*best)))
        best = m;
    }
    if (!best)
      for (size_t m : members) {
        if (obs[m].status != "ok" || obs[m].measured || !is_trusted(ratings, obs[m].hotkey))
          continue;
        if (!best || rating(m) > rating(*best)) best = m;
      }
    if (best) pick[*best] = true;
  }
  return pick;
}

std::vector<uint16_t> with_tie_groups(std::vector<uint16_t> sample,
                                      const std::vector<Observation>& obs) {
  // Union-find over the duplicate -> twin links.
  std::map<uint16_t, uint16_t> parent;
  std::function<uint16_t(uint16_t)> root = [&](uint16_t u) {
    auto it = parent.find(u);
    if (it == parent.end() || it->second == u) return u;
    return it->second = root(it->second);
  };
  for (const auto& o : obs)
    if (o.duplicate) parent[root(o.uid)] = root(o.twin);
  std::set<uint16_t> sampled_roots;
  for (uint16_t uid : sample) sampled_roots.insert(root(uid));
  for (const auto& o : obs)
    if (o.status == "ok" && sampled_roots.count(root(o.uid)) &&
        !std::binary_search(sample.begin(), sample.end(), o.uid))
      sample.insert(std::upper_bound(sample.begin(), sample.end(), o.uid), o.uid);
  return sample;
}

}  // namespace bistro
