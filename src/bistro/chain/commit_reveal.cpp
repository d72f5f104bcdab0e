#include "bistro/chain/commit_reveal.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <nlohmann/json.hpp>

#include "bistro/chain/chain.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/substrate/hashing.hpp"
#include "bistro/substrate/scale.hpp"

namespace bistro::chain {

std::string weights_commit_hash(const PublicKey& account, uint16_t netuid,
                                const std::vector<uint16_t>& uids,
                                const std::vector<uint16_t>& values,
                                const std::vector<uint16_t>& salt, uint64_t version_key) {
  return substrate::blake2_256(scale::Writer()
                                   .raw(account)
                                   .u16(netuid)
                                   .u16s(uids)
                                   .u16s(values)
                                   .u16s(salt)
                                   .u64(version_key)
                                   .data());
}

namespace {
std::vector<uint16_t> u16s(const nlohmann::json& j, const char* name, const std::string& file) {
  check(j.contains(name) && j.at(name).is_array(), "{}: an entry has no {} list", file, name);
  std::vector<uint16_t> out;
  for (const auto& v : j.at(name)) {
    check(v.is_number_unsigned() && v.get<uint64_t>() <= 65535, "{}: {} holds a non-u16 value",
          file, name);
    out.push_back(static_cast<uint16_t>(v.get<uint64_t>()));
  }
  return out;
}
}  // namespace

WeightsCommitter::WeightsCommitter(std::filesystem::path file) : file_(std::move(file)) {
  if (file_.empty() || !std::filesystem::exists(file_)) return;
  const auto j = nlohmann::json::parse(read_file(file_), nullptr, false);
  const std::string name = file_.string();
  check(j.is_array(), "{}: unrevealed weight commits must be a JSON list", name);
  for (const auto& e : j) {
    auto has = [&](const char* k, auto is) { return e.contains(k) && (e.at(k).*is)(); };
    check(e.is_object() && has("netuid", &nlohmann::json::is_number_unsigned) &&
              e.at("netuid").get<uint64_t>() <= 65535 &&
              has("hotkey", &nlohmann::json::is_string) &&
              has("version_key", &nlohmann::json::is_number_unsigned),
          "{}: malformed unrevealed commit (want netuid, hotkey, version_key, uids, values, salt)",
          name);
    // "mecid" came with mechanisms: files written before them hold mechanism 0's commits.
    const nlohmann::json m = e.value("mecid", nlohmann::json(0));
    check(m.is_number_unsigned() && m.get<uint64_t>() <= 255,
          "{}: an unrevealed commit's mecid is not a mechanism id (0-255)", name);
    const uint64_t mecid = m.get<uint64_t>();
    pending_.push_back({e.at("netuid").get<uint16_t>(), static_cast<uint8_t>(mecid),
                        e.at("hotkey").get<std::string>(), u16s(e, "uids", name),
                        u16s(e, "values", name), u16s(e, "salt", name),
                        e.at("version_key").get<uint64_t>()});
  }
}

void WeightsCommitter::save() const {
  if (file_.empty()) return;
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : pending_)
    j.push_back({{"netuid", p.netuid},
                 {"mecid", p.mecid},
                 {"hotkey", p.hotkey},
                 {"uids", p.uids},
                 {"values", p.values},
                 {"salt", p.salt},
                 {"version_key", p.version_key}});
  std::filesystem::create_directories(file_.parent_path());
  write_file_atomic(file_, j.dump());
}

size_t WeightsCommitter::submit(Chain& chain, uint16_t netuid, const Signer& hotkey,
                                const std::vector<uint16_t>& uids,
                                const std::vector<uint16_t>& values, uint64_t version_key,
                                const std::function<void(const std::string&)>& log) {
  const std::string who = ss58_encode(hotkey.public_key());
  size_t revealed = 0;
  // Oldest first: subtensor drops every commit before the one revealed.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->netuid != netuid || it->mecid != chain.mechanism() || it->hotkey != who) {
      ++it;
      continue;
    }
    // Sent only in the epoch the chain accepts it in, where the chain says which that is: a
    // reveal sent early or late is a failed extrinsic that still pays its fee.
    const RevealTiming t =
        chain.reveal_timing(netuid, hotkey.public_key(),
                            weights_commit_hash(hotkey.public_key(), chain.weights_index(netuid),
                                                it->uids, it->values, it->salt, it->version_key));
    if (t == RevealTiming::TooEarly) break;  // and so are the later ones
    if (t == RevealTiming::Expired || t == RevealTiming::NotFound) {
      if (log)
        log(fmt::format("unrevealed commit on subnet {} dropped, not sent: {}", netuid,
                        t == RevealTiming::Expired
                            ? "its reveal epoch has passed"
                            : "the chain holds no commit with its hash (no such commit)"));
      it = pending_.erase(it);
      save();
      continue;
    }
    try {
      chain.reveal_weights(netuid, hotkey, it->uids, it->values, it->salt, it->version_key);
      ++revealed;
    } catch (const ChainError& e) {
      if (e.name() == "RevealTooEarly") break;  // and so are the later ones
      if (log)
        log(fmt::format("reveal_weights on subnet {} refused, commit dropped: {}", netuid,
                        e.what()));
    }
    it = pending_.erase(it);
    save();
  }
  PendingReveal r{netuid, chain.mechanism(),        who,        uids,
                  values, std::vector<uint16_t>(8), version_key};
  randombytes_buf(r.salt.data(), r.salt.size() * sizeof(uint16_t));
  // Kept before the commit is sent: a commit whose reveal was lost could never be revealed.
  pending_.push_back(r);
  save();
  try {
    chain.commit_weights(netuid, hotkey,
                         weights_commit_hash(hotkey.public_key(), chain.weights_index(netuid), uids,
                                             values, r.salt, version_key));
  } catch (...) {
    pending_.pop_back();
    save();
    throw;
  }
  return revealed;
}

}  // namespace bistro::chain
