// An in-process JSON-RPC node for the subtensor client's tests: it answers each call the client
// makes with SCALE data built from the spec (the runtime in subtensor_runtime.hpp), checks every
// submitted extrinsic's sr25519 signature against the payload it reconstructs, executes
// set_weights / burned_register / set_commitment on its storage, and produces one block per
// extrinsic with System events. Tests can make it reject the next extrinsic, fail it with a
// module error, or drop the connection (stop and restart on the same port).
#pragma once

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

#include "bistro/identity/signer.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/substrate/hashing.hpp"
#include "bistro/substrate/metadata.hpp"
#include "bistro/substrate/scale.hpp"
#include "bistro/substrate/websocket.hpp"
#include "subtensor_runtime.hpp"

namespace bistro::test {

class SubstrateNode {
 public:
  explicit SubstrateNode(uint8_t metadata_version = 14, bool epoch_counter = true)
      : runtime_(subtensor_runtime(metadata_version, epoch_counter)),
        epoch_counter_(epoch_counter),
        metadata_(substrate::Metadata::decode(runtime_.blob)) {
    blocks_.push_back({hash_of(0), {}, ""});
    set_plain("SubtensorModule", "NetworksAdded", {u16(1)}, std::string(1, '\1'));
    set_plain("SubtensorModule", "SubnetworkN", {u16(1)}, u16(0));
    set_plain("SubtensorModule", "Tempo", {u16(1)}, u16(99));
    set_plain("SubtensorModule", "WeightsSetRateLimit", {u16(1)}, scale::Writer().u64(7).take());
    start(0);
    start_websocket();
  }
  ~SubstrateNode() {
    stop();
    ws_stop_ = true;
    shutdown(ws_listen_, SHUT_RDWR);
    close(ws_listen_);
    drop_websockets();
    if (ws_accept_.joinable()) ws_accept_.join();
    for (auto& t : ws_threads_) t.join();
  }

  std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(ws_port_); }
  // Closes every open WebSocket connection (the client must reconnect).
  void drop_websockets() {
    std::lock_guard lock(ws_mu_);
    for (int fd : ws_clients_) shutdown(fd, SHUT_RDWR);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Stops answering (connections refused) and answers again on the same port after `ms`.
  void drop_connection_for(int ms) {
    stop();
    restart_ = std::thread([this, ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      start(port_);
    });
  }
  void reject_next(std::string why) { reject_ = std::move(why); }
  void fail_next(std::string error_name) { fail_ = std::move(error_name); }
  size_t submitted() const { return submitted_; }
  // SCALE args (netuid, uids, values, salt, version) of each successful reveal.
  std::vector<std::string> revealed() {
    std::lock_guard lock(mu_);
    return revealed_;
  }
  // The arguments of every commit_timelocked_weights accepted, in order.
  std::vector<std::string> timelocked() {
    std::lock_guard lock(mu_);
    return timelocked_;
  }
  // The arguments of every set_mechanism_weights accepted, in order.
  std::vector<std::string> mechanism_weights() {
    std::lock_guard lock(mu_);
    return mechanism_weights_;
  }

  // Storage written with the runtime's own hashers.
  void set_plain(const char* pallet, const char* item, const std::vector<std::string>& keys,
                 const std::string& value) {
    const auto& e = metadata_.storage(pallet, item);
    std::vector<std::pair<substrate::Hasher, std::string>> hk;
    for (size_t i = 0; i < keys.size(); ++i) hk.emplace_back(e.hashers.at(i), keys[i]);
    std::lock_guard lock(mu_);
    storage_[scale::to_hex(substrate::storage_key(pallet, item, hk))] = value;
  }
  static std::string u16(uint16_t v) { return scale::Writer().u16(v).take(); }
  static std::string u64(uint64_t v) { return scale::Writer().u64(v).take(); }
  // Seals `n` blocks without extrinsics.
  void advance(uint64_t n) {
    std::lock_guard lock(mu_);
    for (uint64_t i = 0; i < n; ++i)
      blocks_.push_back({hash_of(blocks_.size()), {}, std::string(1, '\0')});
  }
  uint64_t head() {
    std::lock_guard lock(mu_);
    return blocks_.size() - 1;
  }
  // The time between the blocks' timestamps (Timestamp.Now), ms.
  void set_block_ms(uint64_t ms) {
    std::lock_guard lock(mu_);
    block_ms_ = ms;
  }

 private:
  struct Block {
    std::string hash;
    std::vector<std::string> extrinsics;  // 0x hex
    std::string events;                   // SCALE Vec<EventRecord>
  };

  static std::string hash_of(uint64_t n) {
    return substrate::blake2_256("test-block" + std::to_string(n));
  }

  void start(int port) {
    server_ = std::make_unique<httplib::Server>();
    server_->Post("/", [this](const httplib::Request& req, httplib::Response& res) {
      auto j = nlohmann::json::parse(req.body);
      nlohmann::json reply = {{"jsonrpc", "2.0"}, {"id", j["id"]}};
      try {
        reply["result"] = answer(j["method"].get<std::string>(), j["params"]);
      } catch (const nlohmann::json& err) {
        reply["error"] = err;
      } catch (const std::exception& e) {
        reply["error"] = {{"code", -32603}, {"message", std::string("test node: ") + e.what()}};
      }
      res.set_content(reply.dump(), "application/json");
    });
    port_ = port == 0 ? server_->bind_to_any_port("127.0.0.1")
                      : (server_->bind_to_port("127.0.0.1", port) ? port : -1);
    thread_ = std::thread([s = server_.get()] { s->listen_after_bind(); });
  }
  // A minimal RFC 6455 server: the upgrade, masked client frames in, unmasked text frames out.
  void start_websocket() {
    ws_listen_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(ws_listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(ws_listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    ws_port_ = ntohs(addr.sin_port);
    listen(ws_listen_, 8);
    ws_accept_ = std::thread([this] {
      while (!ws_stop_) {
        int fd = accept(ws_listen_, nullptr, nullptr);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard lock(ws_mu_);
        ws_clients_.push_back(fd);
        ws_threads_.emplace_back([this, fd] { serve_websocket(fd); });
      }
    });
  }
  static bool read_n(int fd, std::string& buf, size_t n) {
    char chunk[4096];
    while (buf.size() < n) {
      ssize_t got = ::read(fd, chunk, sizeof chunk);
      if (got <= 0) return false;
      buf.append(chunk, static_cast<size_t>(got));
    }
    return true;
  }
  void serve_websocket(int fd) {
    std::string buf;
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos)
      if (!read_n(fd, buf, buf.size() + 1)) return;
    const std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    const size_t k = head.find("Sec-WebSocket-Key: ");
    const std::string key = head.substr(k + 19, head.find("\r\n", k) - k - 19);
    const std::string reply =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        substrate::websocket_accept(key) + "\r\n\r\n";
    if (::write(fd, reply.data(), reply.size()) < 0) return;
    for (;;) {
      if (!read_n(fd, buf, 2)) return;
      const uint8_t opcode = buf[0] & 0x0f;
      uint64_t n = static_cast<uint8_t>(buf[1]) & 0x7f;
      size_t at = 2;
      if (n == 126) {
        if (!read_n(fd, buf, 4)) return;
        n = (static_cast<uint64_t>(static_cast<uint8_t>(buf[2])) << 8) |
            static_cast<uint8_t>(buf[3]);
        at = 4;
      } else if (n == 127) {
        if (!read_n(fd, buf, 10)) return;
        n = 0;
        for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<uint8_t>(buf[2 + i]);
        at = 10;
      }
      if (!read_n(fd, buf, at + 4 + n)) return;
      std::string payload = buf.substr(at + 4, n);
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= buf[at + i % 4];
      buf.erase(0, at + 4 + n);
      if (opcode == 0x8) return;
      if (opcode != 0x1) continue;
      auto j = nlohmann::json::parse(payload);
      nlohmann::json out = {{"jsonrpc", "2.0"}, {"id", j["id"]}};
      try {
        out["result"] = answer(j["method"].get<std::string>(), j["params"]);
      } catch (const nlohmann::json& err) {
        out["error"] = err;
      }
      // A notification first: the client must skip what is not its reply. Both in one write.
      std::string frames;
      for (const std::string& text :
           {std::string(R"({"jsonrpc":"2.0","method":"chain_newHead","params":{}})"), out.dump()}) {
        std::string f(1, '\x81');
        if (text.size() < 126) {
          f.push_back(static_cast<char>(text.size()));
        } else {
          f.push_back(static_cast<char>(126));
          f.push_back(static_cast<char>(text.size() >> 8));
          f.push_back(static_cast<char>(text.size() & 0xff));
          if (text.size() >= 65536) {
            f.resize(1);
            f.push_back(static_cast<char>(127));
            for (int i = 7; i >= 0; --i)
              f.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
          }
        }
        frames += f + text;
      }
      if (::write(fd, frames.data(), frames.size()) < 0) return;
    }
  }

  void stop() {
    if (restart_.joinable()) restart_.join();
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  nlohmann::json answer(const std::string& method, const nlohmann::json& p) {
    std::lock_guard lock(mu_);
    const uint64_t head = blocks_.size() - 1;
    if (method == "state_getMetadata") return scale::to_hex(runtime_.blob);
    if (method == "state_getRuntimeVersion")
      return {{"specVersion", 425}, {"transactionVersion", 1}};
    if (method == "chain_getHeader") return {{"number", fmt::format("0x{:x}", head)}};
    if (method == "chain_getBlockHash") {
      uint64_t n = p.empty() ? head : p[0].get<uint64_t>();
      if (n > head) return nullptr;
      return scale::to_hex(blocks_[n].hash);
    }
    if (method == "chain_getBlock") {
      for (const auto& b : blocks_)
        if (scale::to_hex(b.hash) == p[0].get<std::string>()) {
          nlohmann::json out;
          out["block"]["extrinsics"] = b.extrinsics;
          return out;
        }
      return nullptr;
    }
    if (method == "state_getStorage") {
      const std::string k = p[0].get<std::string>();
      // Timestamp.Now: block n (n >= 1) was sealed at kGenesisMs + n x block_ms_.
      if (k == scale::to_hex(substrate::storage_key("Timestamp", "Now")) && p.size() > 1) {
        for (size_t n = 1; n < blocks_.size(); ++n)
          if (scale::to_hex(blocks_[n].hash) == p[1].get<std::string>())
            return scale::to_hex(scale::Writer().u64(1'700'000'000'000ull + n * block_ms_).take());
        return nullptr;
      }
      if (k == scale::to_hex(substrate::storage_key("System", "Events"))) {
        for (const auto& b : blocks_)
          if (p.size() > 1 && scale::to_hex(b.hash) == p[1].get<std::string>())
            return scale::to_hex(b.events);
        return nullptr;
      }
      auto it = storage_.find(k);
      return it == storage_.end() ? nlohmann::json(nullptr)
                                  : nlohmann::json(scale::to_hex(it->second));
    }
    if (method == "state_queryStorageAt") {
      nlohmann::json changes = nlohmann::json::array();
      for (const auto& k : p[0]) {
        auto it = storage_.find(k.get<std::string>());
        changes.push_back({k, it == storage_.end() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(scale::to_hex(it->second))});
      }
      return nlohmann::json::array(
          {{{"block", scale::to_hex(blocks_.back().hash)}, {"changes", changes}}});
    }
    if (method == "state_getKeysPaged") {
      const std::string prefix = p[0].get<std::string>();
      const std::string after = p.size() > 2 ? p[2].get<std::string>() : "";
      nlohmann::json keys = nlohmann::json::array();
      for (const auto& [k, v] : storage_)
        if (k.rfind(prefix, 0) == 0 && k > after && keys.size() < p[1].get<size_t>())
          keys.push_back(k);
      return keys;
    }
    if (method == "state_call")
      return state_call(p[0].get<std::string>(), scale::from_hex(p[1].get<std::string>(), "args"));
    if (method == "system_accountNextIndex")
      return nonces_.value(p[0].get<std::string>(), uint64_t{0});
    if (method == "author_submitExtrinsic") return submit(p[0].get<std::string>());
    throw nlohmann::json{{"code", -32601}, {"message", "Method not found"}};
  }

  nlohmann::json state_call(const std::string& name, const std::string& args) {
    if (name == "Metadata_metadata_at_version" && metadata_.version() == 15)
      return scale::to_hex(scale::Writer().u8(1).bytes(runtime_.blob).take());
    if (name == "NeuronInfoRuntimeApi_get_neurons_lite" && metadata_.version() == 15) {
      scale::Reader r(args, "netuid");
      const uint16_t netuid = r.u16();
      const uint16_t n = read_u16("SubtensorModule", "SubnetworkN", {u16(netuid)});
      scale::Writer w;
      w.compact(n);
      for (uint16_t uid = 0; uid < n; ++uid) {
        const std::string hot = get("SubtensorModule", "Keys", {u16(netuid), u16(uid)});
        const std::string cold = get("SubtensorModule", "Owner", {hot});
        w.raw(hot).raw(cold).compact(uid).compact(netuid).u8(1);
        w.compact(1).raw(cold).compact(5'000'000'000ull + uid);  // stake
        w.compact(123 + uid).compact(7).compact(0).compact(0).compact(0).compact(9).compact(42).u8(
            1);
      }
      return scale::to_hex(w.take());
    }
    if (name == "SubnetInfoRuntimeApi_get_subnet_hyperparams" && metadata_.version() == 15) {
      scale::Reader r(args, "netuid");
      if (r.u16() != 1) return scale::to_hex(std::string(1, '\0'));  // None
      return scale::to_hex(
          scale::Writer().u8(1).compact(12345).compact(33).compact(77).u8(0).take());
    }
    throw nlohmann::json{
        {"code", -32000},
        {"message", "Client error: Execution failed: Exported method " + name + " is not found"}};
  }

  nlohmann::json submit(const std::string& hex) {
    ++submitted_;
    if (!reject_.empty()) {
      std::string why = std::move(reject_);
      reject_.clear();
      throw nlohmann::json{{"code", 1010}, {"message", "Invalid Transaction"}, {"data", why}};
    }
    const std::string xt = scale::from_hex(hex, "extrinsic");
    scale::Reader r(xt, "extrinsic");
    if (r.length() != r.remaining() || r.u8() != 0x84 || r.u8() != 0x00)
      throw nlohmann::json{{"code", 1002}, {"message", "Could not decode extrinsic"}};
    const std::string account(r.raw(32));
    if (r.u8() != 0x01) throw nlohmann::json{{"code", 1010}, {"message", "not sr25519"}};
    const std::string sig(r.raw(64));
    const size_t extra_start = r.position();
    const uint16_t era = r.u16();
    const uint64_t nonce = static_cast<uint64_t>(r.compact());
    r.compact();  // tip
    if (r.u8() != 0) throw nlohmann::json{{"code", 1010}, {"message", "metadata hash mode"}};
    const std::string extra = xt.substr(extra_start, r.position() - extra_start);
    const std::string call(r.raw(r.remaining()));
    // Rebuild the signed payload: the era's birth block from its period and phase.
    const uint64_t period = uint64_t{2} << (era & 15),
                   phase = (era >> 4) * std::max<uint64_t>(period >> 12, 1);
    const uint64_t head = blocks_.size() - 1;
    const uint64_t birth = (head - phase) / period * period + phase;
    std::string payload = call + extra + scale::Writer().u32(425).u32(1).take() + blocks_[0].hash +
                          blocks_.at(birth).hash + std::string(1, '\0');
    if (payload.size() > 256) payload = substrate::blake2_256(payload);
    PublicKey pk;
    Signature s;
    std::copy(account.begin(), account.end(), pk.begin());
    std::copy(sig.begin(), sig.end(), s.begin());
    if (!verify_signature("sr25519", pk,
                          {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, s))
      throw nlohmann::json{{"code", 1010},
                           {"message", "Invalid Transaction"},
                           {"data", "Transaction has a bad signature"}};
    const std::string who = scale::to_hex(account);
    std::string ss58 = ss58_of(account);
    if (nonce != nonces_.value(ss58, uint64_t{0}))
      throw nlohmann::json{
          {"code", 1010}, {"message", "Invalid Transaction"}, {"data", "Transaction is outdated"}};
    nonces_[ss58] = nonce + 1;
    // Execute, then seal a block with the outcome event.
    std::optional<std::string> error =
        fail_.empty() ? std::nullopt : std::optional<std::string>(fail_);
    fail_.clear();
    if (!error) error = execute(call, account, head + 1);
    scale::Writer ev;
    ev.compact(1).u8(0).u32(0).u8(0);  // ApplyExtrinsic(0), RuntimeEvent::System
    if (error) {
      uint8_t pallet = 7, code = 0;
      for (const auto& pn : {"SubtensorModule", "Commitments"}) {
        const auto& pal = metadata_.pallet(pn);
        for (const auto& v : metadata_.type(*pal.errors).variants)
          if (v.name == *error) pallet = pal.index, code = v.index;
      }
      ev.u8(1).u8(3).u8(pallet).u8(code).u8(0).u8(0).u8(0);
    } else {
      ev.u8(0);
    }
    ev.u64(1000).compact(0);
    blocks_.push_back({hash_of(blocks_.size()), {hex}, ev.take()});
    return scale::to_hex(substrate::blake2_256(xt));
  }

  static std::string ss58_of(const std::string& account) {
    PublicKey pk;
    std::copy(account.begin(), account.end(), pk.begin());
    return ss58_encode(pk);
  }

  // Applies a call to storage; returns the module error name on failure.
  std::optional<std::string> execute(const std::string& call, const std::string& account,
                                     uint64_t block) {
    scale::Reader r(call, "call");
    const uint8_t pallet = r.u8(), index = r.u8();
    if (pallet == 7 && index == 7) {  // burned_register(netuid, hotkey)
      const uint16_t netuid = r.u16();
      const std::string hotkey(r.raw(32));
      uint16_t n = read_u16("SubtensorModule", "SubnetworkN", {u16(netuid)});
      for (uint16_t uid = 0; uid < n; ++uid)
        if (get("SubtensorModule", "Keys", {u16(netuid), u16(uid)}) == hotkey)
          return "HotKeyAlreadyRegisteredInSubNet";
      put("SubtensorModule", "Keys", {u16(netuid), u16(n)}, hotkey);
      put("SubtensorModule", "BlockAtRegistration", {u16(netuid), u16(n)},
          scale::Writer().u64(block).take());
      put("SubtensorModule", "Owner", {hotkey}, account);
      put("SubtensorModule", "SubnetworkN", {u16(netuid)}, u16(static_cast<uint16_t>(n + 1)));
      return std::nullopt;
    }
    if (pallet == 7 && index == 0) {  // set_weights: only the registration and length rules here
      const uint16_t netuid = r.u16();
      const size_t a = r.length(2);
      for (size_t i = 0; i < a; ++i) r.u16();
      const size_t b = r.length(2);
      if (a != b) return "WeightVecNotEqualSize";
      uint16_t n = read_u16("SubtensorModule", "SubnetworkN", {u16(netuid)});
      for (uint16_t uid = 0; uid < n; ++uid)
        if (get("SubtensorModule", "Keys", {u16(netuid), u16(uid)}) == account) return std::nullopt;
      return "HotKeyNotRegisteredInSubNet";
    }
    if (pallet == 7 && index == 119) {  // set_mechanism_weights(netuid, mecid, ...)
      const uint16_t netuid = r.u16();
      const uint8_t mecid = r.u8();
      const std::string count = get("SubtensorModule", "MechanismCountCurrent", {u16(netuid)});
      if (mecid >= (count.empty() ? 1 : static_cast<uint8_t>(count[0])))
        return "MechanismDoesNotExist";
      mechanism_weights_.push_back(call.substr(2));
      return std::nullopt;
    }
    if (pallet == 7 && index == 113) {  // commit_timelocked_weights(netuid, commit, round, version)
      timelocked_.push_back(call.substr(2));
      return std::nullopt;
    }
    if (pallet == 7 && index == 99) {  // commit_crv3_weights(netuid, commit, round)
      timelocked_.push_back(call.substr(2));
      return std::nullopt;
    }
    // Hash commit-reveal with subtensor's rules (pallets/subtensor weights.rs): each commit is
    // stored in WeightCommits with its epoch (spec 423: SubnetEpochIndex, plus one where an
    // epoch fires in the block) or its block (before: epoch = (block + netuid + 1) / (tempo + 1));
    // a reveal is accepted only in epoch commit_epoch + RevealPeriodEpochs.
    if (pallet == 7 && (index == 96 || index == 115)) {  // commit_(mechanism_)weights
      const uint16_t netuid = r.u16();
      const uint8_t mecid = index == 115 ? r.u8() : 0;
      const uint16_t at = static_cast<uint16_t>(netuid + 4096 * mecid);
      auto commits = weight_commits(at, account);
      const uint64_t tag = epoch_counter_ ? epoch_of(netuid, block) : block;
      commits.push_back({std::string(r.raw(32)), tag, epoch_counter_ ? block : 0});
      put_weight_commits(at, account, commits);
      return std::nullopt;
    }
    if (pallet == 7 && (index == 97 || index == 116)) {  // reveal_(mechanism_)weights
      // The hash, rebuilt here byte by byte: over the mechanism's storage index (netuid +
      // 4096 * mecid) in place of the netuid and mecid.
      std::string args(call.substr(2));
      const uint16_t netuid = r.u16();
      const uint8_t mecid = index == 116 ? r.u8() : 0;
      const uint16_t at = static_cast<uint16_t>(netuid + 4096 * mecid);
      if (index == 116) args = u16(at) + args.substr(3);
      const std::string hash = substrate::blake2_256(account + args);
      auto commits = weight_commits(at, account);
      const uint64_t now = epoch_of(netuid, block), period = read_u64_or(netuid, 1);
      auto commit_epoch = [&](const WeightCommit& c) {
        return epoch_counter_ ? c.tag : epoch_of(netuid, c.tag);
      };
      std::vector<std::string> expired;
      while (!commits.empty() && now > commit_epoch(commits.front()) + period) {
        expired.push_back(commits.front().hash);
        commits.erase(commits.begin());
      }
      const bool was_expired = std::find(expired.begin(), expired.end(), hash) != expired.end();
      if (commits.empty()) return was_expired ? "ExpiredWeightCommit" : "NoWeightsCommitFound";
      for (size_t k = 0; k < commits.size(); ++k) {
        if (commits[k].hash != hash) continue;
        if (now != commit_epoch(commits[k]) + period) return "RevealTooEarly";
        commits.erase(commits.begin(), commits.begin() + static_cast<std::ptrdiff_t>(k + 1));
        put_weight_commits(at, account, commits);
        revealed_.push_back(args);
        return std::nullopt;
      }
      return was_expired ? "ExpiredWeightCommit" : "InvalidRevealCommitHashNotMatch";
    }
    if (pallet == 18 && index == 0) {  // set_commitment(netuid, info)
      const uint16_t netuid = r.u16();
      const std::string info(r.raw(r.remaining()));
      put("Commitments", "CommitmentOf", {u16(netuid), account},
          scale::Writer().u128(0).u32(static_cast<uint32_t>(block)).raw(info).take());
      return std::nullopt;
    }
    return "BadOrigin";
  }

  std::string key_of(const char* pallet, const char* item, const std::vector<std::string>& keys) {
    const auto& e = metadata_.storage(pallet, item);
    std::vector<std::pair<substrate::Hasher, std::string>> hk;
    for (size_t i = 0; i < keys.size(); ++i) hk.emplace_back(e.hashers.at(i), keys[i]);
    return scale::to_hex(substrate::storage_key(pallet, item, hk));
  }
  std::string get(const char* pallet, const char* item, const std::vector<std::string>& keys) {
    auto it = storage_.find(key_of(pallet, item, keys));
    return it == storage_.end() ? "" : it->second;
  }
  void put(const char* pallet, const char* item, const std::vector<std::string>& keys,
           const std::string& v) {
    storage_[key_of(pallet, item, keys)] = v;
  }
  uint16_t read_u16(const char* pallet, const char* item, const std::vector<std::string>& keys) {
    std::string v = get(pallet, item, keys);
    return v.size() == 2
               ? static_cast<uint16_t>(static_cast<uint8_t>(v[0]) | static_cast<uint8_t>(v[1]) << 8)
               : 0;
  }

  struct WeightCommit {
    std::string hash;
    uint64_t tag, block;  // (epoch, block) with the epoch counter, (block, 0) without
  };
  std::vector<WeightCommit> weight_commits(uint16_t at, const std::string& account) {
    std::vector<WeightCommit> out;
    const std::string v = get("SubtensorModule", "WeightCommits", {u16(at), account});
    if (v.empty()) return out;
    scale::Reader r(v, "WeightCommits");
    for (size_t n = r.length(); n > 0; --n) {
      WeightCommit c{std::string(r.raw(32)), r.u64(), r.u64()};
      r.u64();
      out.push_back(c);
    }
    return out;
  }
  void put_weight_commits(uint16_t at, const std::string& account,
                          const std::vector<WeightCommit>& commits) {
    scale::Writer w;
    w.compact(commits.size());
    for (const auto& c : commits) w.raw(c.hash).u64(c.tag).u64(c.block).u64(0);
    put("SubtensorModule", "WeightCommits", {u16(at), account}, w.take());
  }
  uint64_t read_u64(const char* item, uint16_t netuid, uint64_t otherwise = 0) {
    const std::string v = get("SubtensorModule", item, {u16(netuid)});
    if (v.size() != 8) return otherwise;
    scale::Reader r(v, item);
    return r.u64();
  }
  uint64_t read_u64_or(uint16_t netuid, uint64_t otherwise) {
    return read_u64("RevealPeriodEpochs", netuid, otherwise);
  }
  // The epoch a call in `block` belongs to, as the runtime counts it.
  uint64_t epoch_of(uint16_t netuid, uint64_t block) {
    const uint64_t tempo = read_u16("SubtensorModule", "Tempo", {u16(netuid)});
    if (!epoch_counter_) return (block + netuid + 1) / (tempo + 1);
    const uint64_t pending = read_u64("PendingEpochAt", netuid),
                   last = read_u64("LastEpochBlock", netuid);
    const bool fires = tempo > 0 && ((pending > 0 && block >= pending) ||
                                     (block >= last && block - last >= tempo));
    return read_u64("SubnetEpochIndex", netuid) + (fires ? 1 : 0);
  }

  SubtensorRuntime runtime_;
  bool epoch_counter_ = true;
  substrate::Metadata metadata_;
  uint64_t block_ms_ = 2000;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_, restart_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<Block> blocks_;
  std::map<std::string, std::string> storage_;  // 0x-hex key -> raw value
  nlohmann::json nonces_ = nlohmann::json::object();
  int ws_listen_ = -1, ws_port_ = 0;
  std::atomic<bool> ws_stop_{false};
  std::thread ws_accept_;
  std::mutex ws_mu_;
  std::vector<int> ws_clients_;
  std::vector<std::thread> ws_threads_;
  std::string reject_, fail_;
  std::vector<std::string> revealed_;
  std::vector<std::string> mechanism_weights_;  // set_mechanism_weights' arguments
  std::vector<std::string> timelocked_;         // commit_timelocked_weights' arguments
  size_t submitted_ = 0;
};

}  // namespace bistro::test
