#include "bistro/protocol/record_finality.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "bistro/protocol/window.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/storage/sigv4.hpp"

namespace bistro {

namespace {

std::vector<std::unique_ptr<Bucket>> open_all(const std::vector<ValidatorView>& validators) {
  std::vector<std::unique_ptr<Bucket>> out;
  for (const auto& v : validators) {
    try {
      out.push_back(open_bucket(v.bucket_url));
    } catch (const std::exception&) {
      out.push_back(nullptr);
    }
  }
  return out;
}

std::optional<ObjectInfo> head(Bucket* b, const std::string& key) {
  if (!b) return std::nullopt;
  try {
    return b->head(key);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// One GET for the bytes and their Last-Modified; a bucket that cannot answer is logged (once:
// the caller's log says each line once) and read as holding nothing.
std::optional<Object> get_object(Bucket* b, const std::string& key, const ValidatorView& v,
                                 const std::function<void(const std::string&)>& log) {
  if (!b) return std::nullopt;
  try {
    return b->get_object(key);
  } catch (const std::exception& e) {
    log(fmt::format("validator {}: {}", v.hotkey_ss58, e.what()));
    return std::nullopt;
  }
}

}  // namespace

std::set<std::string> active_validators(const std::vector<ValidatorView>& validators, uint64_t u) {
  const auto buckets = open_all(validators);
  std::set<std::string> out;
  for (size_t i = 0; i < validators.size(); ++i)
    for (uint64_t back = 1; back <= 2 && back <= u; ++back)
      if (head(buckets[i].get(), attestation_key(u - back)) ||
          head(buckets[i].get(), record_key(u - back)))
        out.insert(validators[i].key);
  // No statement of the last two windows from anyone: a subnet's first windows. Every validator
  // counts then, or the first to speak would be a quorum alone.
  if (out.empty())
    for (const auto& v : validators) out.insert(v.key);
  return out;
}

std::vector<RecordFinality> read_window_finality(const std::vector<ValidatorView>& validators,
                                                 uint64_t u, const std::string& config_hash,
                                                 const std::string& hparams_hash, double quorum,
                                                 const std::function<void(const std::string&)>& log,
                                                 const std::set<std::string>* known_active) {
  const auto buckets = open_all(validators);
  std::vector<StakedValidator> staked;
  for (const auto& v : validators) staked.push_back({v.key, v.stake, v.permit});
  // Every validator's attestation of window u, with its Last-Modified.
  std::vector<Attestation> found;
  std::map<std::string, int64_t> when;
  for (size_t i = 0; i < validators.size(); ++i) {
    const auto object = get_object(buckets[i].get(), attestation_key(u), validators[i], log);
    if (!object) continue;
    try {
      for (auto& a : parse_attestation(object->bytes, u, validators[i].key))
        found.push_back(std::move(a));
      when[validators[i].key] = object->info.modified_ms;
    } catch (const std::exception& e) {
      log(fmt::format("window {}: validator {}: {}", u, validators[i].hotkey_ss58, e.what()));
    }
  }
  const auto active = known_active ? *known_active : active_validators(validators, u);
  std::vector<RecordFinality> out;
  for (size_t i = 0; i < validators.size(); ++i) {
    const auto object = get_object(buckets[i].get(), record_key(u), validators[i], log);
    if (!object) continue;
    RecordFinality r;
    r.publisher_ss58 = validators[i].hotkey_ss58;
    try {
      r.record = parse_record(object->bytes, {u, config_hash, hparams_hash, validators[i].key});
      r.sha256 = sha256_hex(object->bytes);
    } catch (const std::exception& e) {
      log(fmt::format("window {}: record from validator {}: {}", u, validators[i].hotkey_ss58,
                      e.what()));
      continue;
    }
    r.published_ms = object->info.modified_ms;
    out.push_back(std::move(r));
  }
  std::vector<PublishedRecord> published;
  for (const auto& r : out) published.push_back({r.record, r.sha256});
  const auto judged = window_finality(published, found, staked, active, quorum);
  // A statement on a record is ignored by every other record of the window: said once, where it
  // names a record nobody published.
  for (const auto& a : found)
    if (std::none_of(published.begin(), published.end(),
                     [&](const PublishedRecord& p) { return p.sha256 == a.record_sha256; }))
      log(
          fmt::format("window {}: attestation from {} ignored: it names record {}, which no "
                      "validator published",
                      u, a.validator.substr(0, 16), a.record_sha256.substr(0, 12)));
  std::map<std::string, double> stake;
  for (const auto& v : staked) stake[v.key] = v.stake;
  for (size_t k = 0; k < out.size(); ++k) {
    auto& r = out[k];
    r.finality = judged[k];
    for (const auto& ig : r.finality.ignored)
      if (ig.reason.find("for another record") == std::string::npos)  // the usual: one per record
        log(fmt::format("window {}: attestation from {} on the record of {} ignored: {}", u,
                        ig.validator.substr(0, 16), r.publisher_ss58, ig.reason));
    if (!r.finality.final) continue;
    // The moment the quorum was reached: the counted attestations in time order.
    std::vector<std::pair<int64_t, std::string>> times;
    times.push_back({r.published_ms, r.record.validator});
    for (const auto& key : r.finality.attesters)
      if (key != r.record.validator) times.push_back({when.count(key) ? when.at(key) : 0, key});
    std::sort(times.begin(), times.end());
    double sum = 0;
    for (const auto& [ms, key] : times) {
      sum += stake[key];
      if (sum >= quorum * r.finality.active * (1 - 1e-12)) {
        r.final_ms = ms;
        break;
      }
    }
  }
  return out;
}

}  // namespace bistro
