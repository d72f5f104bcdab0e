#include "bistro/protocol/finality.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace bistro {

namespace {
// Stake sums compared with a relative tolerance: fractions like 2/3 are not exact in binary.
bool at_least(double a, double b) {
  return a >= b * (1 - 1e-12);
}
}  // namespace

Finality finality(const WindowRecord& record, const std::string& record_sha256,
                  const std::vector<Attestation>& found,
                  const std::vector<StakedValidator>& validators,
                  const std::set<std::string>& active, double quorum,
                  const std::set<std::string>& excluded, const std::set<std::string>& others) {
  Finality f;
  f.replaced.assign(excluded.begin(), excluded.end());
  std::map<std::string, const StakedValidator*> by_key;
  for (const auto& v : validators) by_key.emplace(v.key, &v);
  std::map<uint16_t, std::string> held;
  for (const auto& e : record.accepted) held[e.uid] = e.sha256;
  std::set<std::string> counted, decides;
  auto permitted = [&](const std::string& key) {
    const auto it = by_key.find(key);
    return it != by_key.end() && it->second->permit;
  };
  if (permitted(record.validator)) {  // the record's signature: its publisher attests it
    counted.insert(record.validator);
    f.attesters.push_back(record.validator);
    f.attested += by_key.at(record.validator)->stake;
  }
  for (const auto& a : found) {
    auto ignore = [&](const std::string& why) { f.ignored.push_back({a.validator, why}); };
    const auto it = by_key.find(a.validator);
    if (it == by_key.end()) {
      ignore("signed by a key that is not a validator's on this subnet");
      continue;
    }
    if (!it->second->permit) {
      ignore("from a validator without a validator permit");
      continue;
    }
    if (a.window != record.window) {
      ignore(fmt::format("for window {}, not {}", a.window, record.window));
      continue;
    }
    if (a.record_sha256 != record_sha256 || a.publisher != record.validator) {
      ignore(fmt::format("for another record of window {} ({} by {})", a.window,
                         a.record_sha256.substr(0, 12), a.publisher.substr(0, 16)));
      continue;
    }
    if (a.validator == record.validator) {
      if (a.objects) ignore("the publisher objects to its own record");
      continue;  // its attestation is its record's signature, counted already
    }
    if (excluded.count(a.validator)) {
      ignore("its own record of this window was refused, and this record replaces it");
      continue;
    }
    if (!a.objects && others.count(a.validator)) {
      ignore("it published a record of this window: it attests that one");
      continue;
    }
    if (counted.count(a.validator)) {
      ignore("sent twice: counted once");
      continue;
    }
    std::string stray;
    for (const auto& o : a.objections) {
      const auto h = held.find(o.uid);
      if (h == held.end() || h->second != o.sha256) {
        stray = fmt::format("an objection names uid {}'s update {}, which the record does not hold",
                            o.uid, o.sha256.substr(0, 12));
        break;
      }
    }
    for (const auto& o : a.omitted)
      if (stray.empty() && held.count(o.uid))
        stray = fmt::format("it names uid {}'s update as left out, but the record holds it", o.uid);
    if (!stray.empty()) {
      ignore(stray);
      continue;
    }
    counted.insert(a.validator);
    if (a.objects) {
      f.objectors.push_back(a.validator);
      f.objected += it->second->stake;
      for (const auto& o : a.objections) f.objections[o.uid].push_back(o.reason);
    } else {
      f.attesters.push_back(a.validator);
      f.attested += it->second->stake;
      for (const auto& o : a.omitted) f.omitted[o.uid] += it->second->stake;
    }
  }
  decides = counted;
  for (const auto& k : active)
    if (permitted(k)) decides.insert(k);
  if (permitted(record.validator)) decides.insert(record.validator);
  for (const auto& k : excluded) decides.erase(k);
  for (const auto& k : decides) f.active += by_key.at(k)->stake;
  f.final = f.active > 0 && at_least(f.attested, quorum * f.active);
  f.refused = f.active > 0 && f.objected > (1 - quorum) * f.active * (1 + 1e-12);
  if (f.refused) f.final = false;
  for (const auto& [uid, stake] : f.omitted)
    if (f.active > 0 && stake > (1 - quorum) * f.active * (1 + 1e-12)) f.censored.push_back(uid);
  return f;
}

std::map<uint16_t, std::string> replaceable_updates(const WindowRecord& refused,
                                                    const Finality& f) {
  std::map<uint16_t, std::string> out;
  for (const auto& e : refused.accepted)
    if (!f.objections.count(e.uid)) out[e.uid] = e.sha256;
  return out;
}

std::vector<Finality> window_finality(const std::vector<PublishedRecord>& records,
                                      const std::vector<Attestation>& found,
                                      const std::vector<StakedValidator>& validators,
                                      const std::set<std::string>& active, double quorum) {
  std::set<std::string> publishers;
  for (const auto& r : records) publishers.insert(r.record.validator);
  auto others_than = [&](const WindowRecord& r) {
    auto o = publishers;
    o.erase(r.validator);
    return o;
  };
  // In the order given, each record once: the publishers of the refused records before it that
  // it may replace are not active for it. A refusal stands once found, so the answer does not
  // depend on how many passes one makes (docs/protocol.md).
  std::vector<Finality> out;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& mine = records[i].record;
    std::set<std::string> replaced;
    for (size_t j = 0; j < i; ++j) {
      const auto& refused = records[j].record;
      if (!out[j].refused || refused.base_hash != mine.base_hash ||
          refused.validator == mine.validator)
        continue;
      const auto allowed = replaceable_updates(refused, out[j]);
      const bool subset = std::all_of(mine.accepted.begin(), mine.accepted.end(), [&](auto& e) {
        const auto it = allowed.find(e.uid);
        return it != allowed.end() && it->second == e.sha256;
      });
      if (subset) replaced.insert(refused.validator);
    }
    out.push_back(finality(mine, records[i].sha256, found, validators, active, quorum, replaced,
                           others_than(mine)));
  }
  return out;
}

}  // namespace bistro
