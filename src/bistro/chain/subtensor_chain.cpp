#include "bistro/chain/subtensor_chain.hpp"

#include "bistro/chain/subtensor_calls.hpp"

#include <fmt/format.h>

#include <sodium.h>

#include <chrono>
#include <thread>

#include "bistro/chain/subtensor_values.hpp"
#include "bistro/core/files.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/substrate/extrinsic.hpp"

namespace bistro::chain {
namespace {

// The substrate wire this client speaks.
using namespace substrate;

std::string account_bytes(const std::string& ss58) {
  auto k = ss58_decode(ss58);
  return std::string(k.begin(), k.end());
}

uint64_t hex_number(const nlohmann::json& j, const char* what) {
  check(j.is_string(), "subtensor: {} is not a hex string", what);
  const std::string s = j.get<std::string>();
  check(s.rfind("0x", 0) == 0 && s.size() > 2 && s.size() <= 18, "subtensor: bad {} '{}'", what, s);
  return std::stoull(s.substr(2), nullptr, 16);
}

// The raw bytes of a decoded Data value ({"name": "RawN", "values": ["0x..."]}).
std::string data_bytes(const nlohmann::json& d) {
  const std::string name = d.value("name", "");
  if (name.rfind("Raw", 0) != 0 || d["values"].empty()) return "";
  return scale::from_hex(d["values"][0].get<std::string>(), "commitment field");
}

}  // namespace

SubtensorChain::SubtensorChain(const std::string& network, SubtensorOptions options)
    : rpc_(network_url(network), options.rpc), options_(options) {
  // Prefer v15 (it lists the runtime APIs); runtimes without it answer state_getMetadata (v14).
  std::optional<Metadata> v15;
  try {
    const auto r = rpc_.call(
        "state_call", nlohmann::json::array({"Metadata_metadata_at_version",
                                             scale::to_hex(scale::Writer().u32(15).take())}));
    if (r.is_string()) {
      const std::string bytes = scale::from_hex(r.get<std::string>(), "metadata_at_version");
      scale::Reader rd(bytes, "Option<OpaqueMetadata>");
      if (rd.u8() == 1) v15 = Metadata::decode(rd.bytes());
    }
  } catch (const RpcError&) {
    // an older runtime: no metadata_at_version
  }
  if (v15) {
    metadata_ = std::move(*v15);
  } else {
    const auto blob = rpc_.call("state_getMetadata");
    check(blob.is_string(), "node {}: state_getMetadata returned no metadata", rpc_.url());
    metadata_ = Metadata::decode(scale::from_hex(blob.get<std::string>(), "runtime metadata"));
  }
  const auto version = rpc_.call("state_getRuntimeVersion");
  check(version.is_object() && version.contains("specVersion") &&
            version.contains("transactionVersion"),
        "node {}: state_getRuntimeVersion returned no versions", rpc_.url());
  spec_version_ = version["specVersion"].get<uint32_t>();
  tx_version_ = version["transactionVersion"].get<uint32_t>();
  const auto genesis = rpc_.call("chain_getBlockHash", nlohmann::json::array({0}));
  check(genesis.is_string(), "node {}: no genesis hash", rpc_.url());
  genesis_ = scale::from_hex(genesis.get<std::string>(), "genesis hash");
  check(genesis_.size() == 32, "node {}: genesis hash is not 32 bytes", rpc_.url());
  for (const char* p : {"System", "SubtensorModule", "Commitments"}) metadata_.pallet(p);
}

uint64_t SubtensorChain::block() {
  const auto h = rpc_.call("chain_getHeader");
  check(h.is_object() && h.contains("number"), "node {}: chain_getHeader returned no number",
        rpc_.url());
  return hex_number(h["number"], "block number");
}

std::optional<uint64_t> SubtensorChain::timestamp_ms(uint64_t n) {
  const auto hash = rpc_.call("chain_getBlockHash", nlohmann::json::array({n}));
  if (!hash.is_string()) return std::nullopt;
  const auto raw =
      rpc_.call("state_getStorage",
                nlohmann::json::array({scale::to_hex(storage_key("Timestamp", "Now")), hash}));
  if (!raw.is_string()) return std::nullopt;
  const std::string bytes = scale::from_hex(raw.get<std::string>(), "Timestamp.Now");
  scale::Reader r(bytes, "Timestamp.Now");
  const uint64_t ms = r.u64();
  if (!r.done()) r.fail("trailing bytes after the timestamp");
  return ms;
}

double SubtensorChain::seconds_per_block() {
  const auto now = std::chrono::steady_clock::now();
  if (spb_ > 0 && now - spb_read_ < std::chrono::minutes(1)) return spb_;
  spb_read_ = now;
  const uint64_t head = block();
  const uint64_t back = std::min<uint64_t>(20, head > 0 ? head - 1 : 0);  // block 0 has no time
  const auto t1 = timestamp_ms(head);
  const auto t0 = back > 0 ? timestamp_ms(head - back) : std::nullopt;
  if (t1 && t0 && *t1 > *t0)
    spb_ = static_cast<double>(*t1 - *t0) / 1000.0 / static_cast<double>(back);
  return spb_ > 0 ? spb_ : 12.0;
}

BlockHash SubtensorChain::block_hash(uint64_t n) {
  const auto h = rpc_.call("chain_getBlockHash", nlohmann::json::array({n}));
  check(h.is_string(), "node {}: block {} does not exist yet", rpc_.url(), n);
  const std::string bytes = scale::from_hex(h.get<std::string>(), "block hash");
  check(bytes.size() == 32, "node {}: block hash is not 32 bytes", rpc_.url());
  BlockHash out;
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

std::string SubtensorChain::key(std::string_view pallet, std::string_view item,
                                const std::vector<std::string>& keys) const {
  const StorageEntry& e = metadata_.storage(pallet, item);
  check(keys.size() == e.hashers.size(), "subtensor: {}.{} takes {} keys, not {}", pallet, item,
        e.hashers.size(), keys.size());
  std::vector<std::pair<Hasher, std::string>> hk;
  for (size_t i = 0; i < keys.size(); ++i) hk.emplace_back(e.hashers[i], keys[i]);
  return storage_key(metadata_.pallet(pallet).storage_prefix, item, hk);
}

nlohmann::json SubtensorChain::read(std::string_view pallet, std::string_view item,
                                    const std::vector<std::string>& keys) {
  return read_many(pallet, item, {keys}).front();
}

std::vector<nlohmann::json> SubtensorChain::read_many(
    std::string_view pallet, std::string_view item,
    const std::vector<std::vector<std::string>>& keys) {
  const StorageEntry& e = metadata_.storage(pallet, item);
  std::vector<std::string> hex_keys;
  for (const auto& k : keys) hex_keys.push_back(scale::to_hex(key(pallet, item, k)));
  std::map<std::string, nlohmann::json> values;
  for (size_t start = 0; start < hex_keys.size(); start += 256) {
    nlohmann::json batch(std::vector<std::string>(
        hex_keys.begin() + static_cast<std::ptrdiff_t>(start),
        hex_keys.begin() + static_cast<std::ptrdiff_t>(std::min(hex_keys.size(), start + 256))));
    const auto r = rpc_.call("state_queryStorageAt", nlohmann::json::array({batch}));
    check(r.is_array(), "node {}: state_queryStorageAt returned no change sets", rpc_.url());
    for (const auto& set : r)
      for (const auto& change : set.value("changes", nlohmann::json::array()))
        if (change.is_array() && change.size() == 2 && change[0].is_string())
          values[change[0].get<std::string>()] = change[1];
  }
  std::vector<nlohmann::json> out;
  for (const auto& hk : hex_keys) {
    auto it = values.find(hk);
    std::string bytes = (it == values.end() || it->second.is_null())
                            ? e.default_value
                            : scale::from_hex(it->second.get<std::string>(), std::string(item));
    scale::Reader r(bytes, fmt::format("{}.{}", pallet, item));
    auto v = metadata_.decode_value(e.value, r);
    if (!r.done()) r.fail("trailing bytes after the value");
    out.push_back(std::move(v));
  }
  return out;
}

void SubtensorChain::require_subnet(uint16_t netuid) {
  if (!read("SubtensorModule", "NetworksAdded", {u16le(netuid)}).get<bool>())
    throw ChainError("SubnetNotExists",
                     fmt::format("subnet {} does not exist on {}", netuid, rpc_.url()));
}

Hyperparameters SubtensorChain::hyperparameters(uint16_t netuid) {
  require_subnet(netuid);
  Hyperparameters h;
  // SubnetInfoRuntimeApi (metadata v15) when the runtime has it: Option<SubnetHyperparams>.
  if (auto r = runtime_api("SubnetInfoRuntimeApi", "get_subnet_hyperparams", u16le(netuid))) {
    nlohmann::json v = *r;
    if (v.is_object() && v.value("name", "") == "Some" && !v["values"].empty()) v = v["values"][0];
    if (v.is_object() && !v.contains("name")) {
      auto take = [&](const char* name, auto& field) {
        if (!v.contains(name)) return;
        using T = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<T, bool>)
          field = v[name].get<bool>();
        else
          field = static_cast<T>(json_u64(v[name], name));
      };
      take("tempo", h.tempo);
      take("immunity_period", h.immunity_period);
      take("activity_cutoff", h.activity_cutoff);
      take("max_validators", h.max_validators);
      take("min_allowed_weights", h.min_allowed_weights);
      take("max_weights_limit", h.max_weight_limit);
      take("weights_rate_limit", h.weights_rate_limit);
      take("weights_version", h.weights_version_key);
      take("kappa", h.kappa);
      take("bonds_moving_avg", h.bonds_moving_average);
      take("alpha_low", h.alpha_low);
      take("alpha_high", h.alpha_high);
      take("liquid_alpha_enabled", h.liquid_alpha);
      take("commit_reveal_weights_enabled", h.commit_reveal);
      take("commit_reveal_period", h.reveal_period);
      take("yuma3_enabled", h.yuma3);
      take("bonds_penalty", h.bonds_penalty);
      return h;
    }
  }
  auto get = [&](const char* item) { return read("SubtensorModule", item, {u16le(netuid)}); };
  auto optional = [&](const char* item, auto& field) {
    if (!metadata_.find_storage("SubtensorModule", item)) return;  // not in this runtime
    auto v = get(item);
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, bool>)
      field = v.get<bool>();
    else
      field = static_cast<T>(json_u64(v, item));
  };
  optional("Tempo", h.tempo);
  optional("ImmunityPeriod", h.immunity_period);
  optional("ActivityCutoff", h.activity_cutoff);
  optional("MaxAllowedUids", h.max_uids);
  optional("MaxAllowedValidators", h.max_validators);
  optional("MinAllowedWeights", h.min_allowed_weights);
  optional("MaxWeightsLimit", h.max_weight_limit);
  optional("WeightsSetRateLimit", h.weights_rate_limit);
  optional("WeightsVersionKey", h.weights_version_key);
  optional("Kappa", h.kappa);
  optional("BondsPenalty", h.bonds_penalty);
  optional("BondsMovingAverage", h.bonds_moving_average);
  optional("Yuma3On", h.yuma3);
  optional("LiquidAlphaOn", h.liquid_alpha);
  optional("CommitRevealWeightsEnabled", h.commit_reveal);
  optional("RevealPeriodEpochs", h.reveal_period);
  return h;
}

std::optional<nlohmann::json> SubtensorChain::runtime_api(std::string_view api,
                                                          std::string_view method,
                                                          const std::string& args) {
  for (const auto& m : metadata_.runtime_apis()) {
    if (m.api != api || m.name != method) continue;
    const auto r =
        rpc_.call("state_call",
                  nlohmann::json::array({fmt::format("{}_{}", api, method), scale::to_hex(args)}));
    check(r.is_string(), "node {}: {}_{} returned no bytes", rpc_.url(), api, method);
    const std::string bytes = scale::from_hex(r.get<std::string>(), "runtime API result");
    scale::Reader rd(bytes, fmt::format("{}_{}", api, method));
    auto out = metadata_.decode_value(m.output, rd);
    if (!rd.done()) rd.fail("trailing bytes after the result");
    return out;
  }
  return std::nullopt;
}

Metagraph SubtensorChain::metagraph(uint16_t netuid) {
  require_subnet(netuid);
  Metagraph m;
  m.netuid = netuid;
  m.block = block();
  // NeuronInfoRuntimeApi (metadata v15) when the runtime has it; registration blocks from storage.
  if (auto lite = runtime_api("NeuronInfoRuntimeApi", "get_neurons_lite", u16le(netuid));
      lite && lite->is_array() && (lite->empty() || (*lite)[0].is_object())) {
    std::vector<std::vector<std::string>> uid_keys;
    for (const auto& n : *lite)
      uid_keys.push_back(
          {u16le(netuid), u16le(static_cast<uint16_t>(json_u64(n.at("uid"), "uid")))});
    const auto registered = read_many("SubtensorModule", "BlockAtRegistration", uid_keys);
    auto account = [](const nlohmann::json& v) {
      const std::string raw = scale::from_hex(v.get<std::string>(), "account");
      check(raw.size() == 32, "subtensor: an account is not 32 bytes");
      PublicKey pk;
      std::copy(raw.begin(), raw.end(), pk.begin());
      return ss58_encode(pk);
    };
    for (size_t i = 0; i < lite->size(); ++i) {
      const auto& n = (*lite)[i];
      Neuron x;
      x.uid = static_cast<uint16_t>(json_u64(n.at("uid"), "uid"));
      x.hotkey = account(n.at("hotkey"));
      x.coldkey = account(n.at("coldkey"));
      for (const auto& st : n.value("stake", nlohmann::json::array()))
        if (st.is_array() && st.size() == 2) x.stake += json_u64(st[1], "stake");
      x.active = n.value("active", true);
      x.validator_permit = n.value("validator_permit", false);
      x.incentive =
          static_cast<uint16_t>(json_u64(n.value("incentive", nlohmann::json(0)), "incentive"));
      x.dividends =
          static_cast<uint16_t>(json_u64(n.value("dividends", nlohmann::json(0)), "dividends"));
      x.consensus =
          static_cast<uint16_t>(json_u64(n.value("consensus", nlohmann::json(0)), "consensus"));
      x.trust = static_cast<uint16_t>(json_u64(n.value("trust", nlohmann::json(0)), "trust"));
      x.validator_trust = static_cast<uint16_t>(
          json_u64(n.value("validator_trust", nlohmann::json(0)), "validator_trust"));
      x.emission = json_u64(n.value("emission", nlohmann::json(0)), "emission");
      x.last_update = json_u64(n.value("last_update", nlohmann::json(0)), "last_update");
      x.block_at_registration = json_u64(registered[i], "BlockAtRegistration");
      m.neurons.push_back(std::move(x));
    }
    std::sort(m.neurons.begin(), m.neurons.end(),
              [](const Neuron& a, const Neuron& b) { return a.uid < b.uid; });
    return m;
  }
  const auto n = json_u64(read("SubtensorModule", "SubnetworkN", {u16le(netuid)}), "SubnetworkN");
  std::vector<std::vector<std::string>> uid_keys;
  for (uint64_t uid = 0; uid < n; ++uid)
    uid_keys.push_back({u16le(netuid), u16le(static_cast<uint16_t>(uid))});
  const auto hotkeys = read_many("SubtensorModule", "Keys", uid_keys);
  const auto registered = read_many("SubtensorModule", "BlockAtRegistration", uid_keys);
  std::vector<std::vector<std::string>> owner_keys, stake_keys;
  for (const auto& hk : hotkeys) {
    const std::string acct = scale::from_hex(hk.get<std::string>(), "hotkey");
    owner_keys.push_back({acct});
    stake_keys.push_back({acct, u16le(netuid)});
  }
  const auto owners = read_many("SubtensorModule", "Owner", owner_keys);
  std::vector<nlohmann::json> stakes(n, 0);
  if (metadata_.find_storage("SubtensorModule", "TotalHotkeyAlpha"))
    stakes = read_many("SubtensorModule", "TotalHotkeyAlpha", stake_keys);
  auto vec = [&](const char* item) { return read("SubtensorModule", item, {u16le(netuid)}); };
  const auto incentive = vec("Incentive"), dividends = vec("Dividends"),
             consensus = vec("Consensus"), vtrust = vec("ValidatorTrust"),
             permit = vec("ValidatorPermit"), active = vec("Active"),
             last_update = vec("LastUpdate"), emission = vec("Emission");
  auto at = [](const nlohmann::json& v, uint64_t i) {
    return i < v.size() ? v[i] : nlohmann::json();
  };
  for (uint64_t uid = 0; uid < n; ++uid) {
    Neuron x;
    x.uid = static_cast<uint16_t>(uid);
    auto hk = scale::from_hex(hotkeys[uid].get<std::string>(), "hotkey");
    PublicKey pk;
    std::copy(hk.begin(), hk.end(), pk.begin());
    x.hotkey = ss58_encode(pk);
    auto ck = scale::from_hex(owners[uid].get<std::string>(), "coldkey");
    std::copy(ck.begin(), ck.end(), pk.begin());
    x.coldkey = ss58_encode(pk);
    x.stake = json_u64(stakes[uid], "stake");
    x.block_at_registration = json_u64(registered[uid], "BlockAtRegistration");
    auto num = [&](const nlohmann::json& v) {
      return v.is_null() ? uint64_t{0} : json_u64(v, "metagraph value");
    };
    x.incentive = static_cast<uint16_t>(num(at(incentive, uid)));
    x.dividends = static_cast<uint16_t>(num(at(dividends, uid)));
    x.consensus = static_cast<uint16_t>(num(at(consensus, uid)));
    x.validator_trust = static_cast<uint16_t>(num(at(vtrust, uid)));
    x.last_update = num(at(last_update, uid));
    x.emission = num(at(emission, uid));
    x.validator_permit = at(permit, uid).is_boolean() && at(permit, uid).get<bool>();
    x.active = !at(active, uid).is_boolean() || at(active, uid).get<bool>();
    m.neurons.push_back(std::move(x));
  }
  return m;
}

void SubtensorChain::submit(const std::string& call, const Signer& signer,
                            const std::string& what) {
  const std::string who = ss58_encode(signer.public_key());
  TxContext tx;
  tx.spec_version = spec_version_;
  tx.tx_version = tx_version_;
  tx.genesis_hash = genesis_;
  tx.era_block = block();
  const auto eh = block_hash(tx.era_block);
  tx.era_block_hash = std::string(eh.begin(), eh.end());
  tx.era_period = options_.era_period;
  tx.nonce = json_u64(rpc_.call("system_accountNextIndex", nlohmann::json::array({who})), "nonce");
  const std::string xt = scale::to_hex(signed_extrinsic(metadata_, signer, call, tx));
  try {
    rpc_.call("author_submitExtrinsic", nlohmann::json::array({xt}));
  } catch (const RpcError& e) {
    throw ChainError("InvalidTransaction",
                     fmt::format("{} by {} refused by the node: {}", what, who, e.what()));
  }
  // Follow new blocks until one includes the extrinsic, then read its events.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(options_.inclusion_timeout_s);
  uint64_t next = tx.era_block;
  while (std::chrono::steady_clock::now() < deadline) {
    const uint64_t head = block();
    for (; next <= head; ++next) {
      const auto hash = rpc_.call("chain_getBlockHash", nlohmann::json::array({next}));
      if (!hash.is_string()) continue;
      const auto b = rpc_.call("chain_getBlock", nlohmann::json::array({hash}));
      const auto& exts = b["block"]["extrinsics"];
      if (!exts.is_array()) continue;
      for (size_t i = 0; i < exts.size(); ++i) {
        if (!exts[i].is_string() || exts[i].get<std::string>() != xt) continue;
        const std::string events_key = scale::to_hex(key("System", "Events", {}));
        const auto raw = rpc_.call("state_getStorage", nlohmann::json::array({events_key, hash}));
        const std::string bytes =
            raw.is_string() ? scale::from_hex(raw.get<std::string>(), "events") : "";
        scale::Reader r(bytes, "System.Events");
        const auto events = metadata_.decode_value(metadata_.storage("System", "Events").value, r);
        for (const auto& rec : events) {
          const auto& phase = rec["phase"];
          if (phase.value("name", "") != "ApplyExtrinsic" || phase["values"][0] != i) continue;
          const auto& ev = rec["event"];
          if (ev.value("name", "") != "System") continue;
          const auto& sys = ev["values"][0];
          if (sys.value("name", "") == "ExtrinsicSuccess") return;
          if (sys.value("name", "") == "ExtrinsicFailed") {
            const auto& err = sys["values"][0];
            if (err.value("name", "") == "Module") {
              const auto& me = err["values"][0];
              const std::string code = scale::from_hex(me["error"].get<std::string>(), "error");
              const std::string full =
                  metadata_.error_name(static_cast<uint8_t>(me["index"].get<int>()),
                                       code.empty() ? 0 : static_cast<uint8_t>(code[0]));
              throw ChainError(
                  full.substr(full.find('.') + 1),
                  fmt::format("{} by {} failed in block {}: {}", what, who, next, full));
            }
            throw ChainError(err.value("name", "DispatchError"),
                             fmt::format("{} by {} failed in block {}", what, who, next));
          }
        }
        fail("subtensor: {} was included in block {} but no outcome event was found", what, next);
      }
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.poll_s));
  }
  fail("subtensor: {} by {} was not included within {} s", what, who, options_.inclusion_timeout_s);
}

uint16_t SubtensorChain::register_neuron(uint16_t netuid, const Signer& coldkey,
                                         const std::string& hotkey) {
  if (auto uid = metagraph(netuid).uid_of(hotkey)) return *uid;
  submit(calls::burned_register(metadata_, netuid, account_bytes(hotkey)), coldkey,
         fmt::format("burned_register of {} on subnet {}", hotkey, netuid));
  auto uid = metagraph(netuid).uid_of(hotkey);
  check(uid.has_value(), "subtensor: {} is still not registered on subnet {}", hotkey, netuid);
  return *uid;
}

std::filesystem::path SubtensorChain::reveals_dir() {
  if (options_.reveals_dir) return *options_.reveals_dir;
  return bistro_home() / "reveals" / scale::to_hex(genesis_);
}

void SubtensorChain::set_commitment(uint16_t netuid, const Signer& hotkey,
                                    const std::string& data) {
  submit(calls::set_commitment(metadata_, netuid, data), hotkey,
         fmt::format("set_commitment on subnet {}", netuid));
}

std::map<std::string, std::string> SubtensorChain::commitments(uint16_t netuid) {
  const StorageEntry& e = metadata_.storage("Commitments", "CommitmentOf");
  const std::string prefix =
      scale::to_hex(storage_key(metadata_.pallet("Commitments").storage_prefix, "CommitmentOf",
                                {{e.hashers.at(0), u16le(netuid)}}));
  std::map<std::string, std::string> out;
  std::string start;
  for (int page = 0; page < 1000; ++page) {
    nlohmann::json params = {prefix, 1000};
    if (!start.empty()) params.push_back(start);
    const auto keys = rpc_.call("state_getKeysPaged", params);
    check(keys.is_array(), "node {}: state_getKeysPaged returned no keys", rpc_.url());
    if (keys.empty()) break;
    const auto values = rpc_.call("state_queryStorageAt", nlohmann::json::array({keys}));
    std::map<std::string, nlohmann::json> by_key;
    for (const auto& set : values)
      for (const auto& c : set.value("changes", nlohmann::json::array())) by_key[c[0]] = c[1];
    for (const auto& k : keys) {
      const std::string hk = k.get<std::string>();
      const std::string raw = scale::from_hex(hk, "storage key");
      // prefix (32) + netuid (2, Identity) + twox64 (8) + account (32)
      if (raw.size() != 32 + 2 + 8 + 32 || !by_key[hk].is_string()) continue;
      PublicKey pk;
      std::copy(raw.end() - 32, raw.end(), pk.begin());
      const std::string bytes = scale::from_hex(by_key[hk].get<std::string>(), "commitment");
      scale::Reader r(bytes, "Commitments.CommitmentOf");
      const auto reg = metadata_.decode_value(e.value, r);
      std::string data;
      for (const auto& f : reg["info"]["fields"]) data += data_bytes(f);
      out[ss58_encode(pk)] = data;
    }
    if (keys.size() < 1000) break;
    start = keys.back().get<std::string>();
  }
  return out;
}

}  // namespace bistro::chain
