#include "bistro/protocol/peers.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "bistro/chain/weights.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/metrics.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/storage/s3_bucket.hpp"

namespace bistro {
namespace {
WalletPaths wallet(const NeuronArgs& a) {
  return {a.wallet_path.empty() ? default_wallet_root() : std::filesystem::path(a.wallet_path),
          a.wallet_name, a.wallet_hotkey};
}
}  // namespace

std::unique_ptr<Signer> load_hotkey(const NeuronArgs& a) {
  return sr25519_signer(read_keyfile(wallet(a).hotkey_file(), std::nullopt).mini_secret);
}

std::unique_ptr<Signer> load_coldkey(const NeuronArgs& a) {
  std::optional<std::string> pw;
  if (const char* env = std::getenv("BISTRO_WALLET_PASSWORD")) pw = env;
  return sr25519_signer(read_keyfile(wallet(a).coldkey(), pw).mini_secret);
}

uint16_t ensure_registered(chain::Chain& chain, const NeuronArgs& a, const Signer& hotkey) {
  const std::string hk = ss58_encode(hotkey.public_key());
  if (auto uid = chain.metagraph(a.netuid).uid_of(hk)) return *uid;
  check(a.register_neuron,
        "hotkey {} is not registered on subnet {} (pass --register to register it with the "
        "wallet's coldkey)",
        hk, a.netuid);
  return chain.register_neuron(a.netuid, *load_coldkey(a), hk);
}

std::unique_ptr<Bucket> commit_bucket(chain::Chain& chain, const NeuronArgs& a,
                                      const Signer& hotkey, const std::string& prefix) {
  auto bucket = open_bucket(a.bucket);
  const std::string hk = ss58_encode(hotkey.public_key());
  if (chain.commitments(a.netuid)[hk] != prefix + a.bucket)
    chain.set_commitment(a.netuid, hotkey, prefix + a.bucket);
  return bucket;
}

std::filesystem::path neuron_state_dir(const NeuronArgs& a, const std::string& role,
                                       const std::string& hotkey) {
  const std::filesystem::path dir =
      a.state_dir.empty() ? bistro_home() / role / hotkey : std::filesystem::path(a.state_dir);
  std::filesystem::create_directories(dir);
  return dir;
}

FetchedUpdate fetch_update(Bucket& bucket, const NeuronHparams& h, const LlamaConfig& config,
                           uint64_t window, uint16_t uid, const std::string& hotkey,
                           bool keep_bytes, const std::optional<ObjectInfo>& known) {
  FetchedUpdate r;
  std::string bytes;
  const auto key = update_key(window, uid, hotkey);
  try {
    const auto info = known ? known : bucket.head(key);
    if (!info) {
      r.reason = "missing";
      return r;
    }
    r.uploaded_ms = info->modified_ms;
    bytes = bucket.get(key);
  } catch (const NotFound&) {
    r.reason = "missing";
    return r;
  } catch (const std::exception& e) {
    r.reason = fmt::format("unreachable bucket: {}", e.what());
    return r;
  }
  r.bytes = bytes.size();
  const auto verify_start = std::chrono::steady_clock::now();
  try {
    r.update = decode_update(bytes, update_expectation(h, config, window, uid, hotkey),
                             fmt::format("uid {} window {}", uid, window));
  } catch (const UpdateError& e) {
    r.reason = e.what();
  } catch (const std::exception& e) {
    r.reason = fmt::format("Malformed: {}", e.what());
  }
  r.verify = std::chrono::duration<double>(std::chrono::steady_clock::now() - verify_start).count();
  if (r.update && keep_bytes) r.file = std::move(bytes);
  return r;
}

std::map<uint16_t, Update> gather_updates(const chain::Metagraph& m,
                                          const std::map<std::string, std::string>& commits,
                                          const NeuronHparams& h, const LlamaConfig& config,
                                          uint64_t window, const std::vector<uint16_t>& skip,
                                          GatherStats* stats) {
  auto start = std::chrono::steady_clock::now();
  struct Job {
    uint16_t uid;
    std::string hotkey, bucket;
  };
  std::vector<Job> jobs;
  for (const auto& n : m.neurons) {
    if (std::find(skip.begin(), skip.end(), n.uid) != skip.end()) continue;
    auto it = commits.find(n.hotkey);
    if (it == commits.end()) continue;                  // not a miner (no bucket)
    if (it->second.rfind("master:", 0) == 0) continue;  // a validator's master bucket
    jobs.push_back({n.uid, n.hotkey, it->second});
  }
  auto fetch = [&](const Job& j) {
    std::unique_ptr<Bucket> b;
    try {
      b = open_bucket(j.bucket);
    } catch (const std::exception& e) {
      FetchedUpdate r;
      r.reason = fmt::format("unreachable bucket: {}", e.what());
      return r;
    }
    return fetch_update(*b, h, config, window, j.uid, j.hotkey, stats && stats->keep_bytes);
  };
  std::map<uint16_t, Update> out;
  constexpr size_t kInFlight = 8;
  for (size_t i = 0; i < jobs.size(); i += kInFlight) {
    std::vector<std::future<FetchedUpdate>> futures;
    for (size_t k = i; k < std::min(jobs.size(), i + kInFlight); ++k)
      futures.push_back(std::async(std::launch::async, fetch, jobs[k]));
    for (size_t k = 0; k < futures.size(); ++k) {
      FetchedUpdate r = futures[k].get();
      const uint16_t uid = jobs[i + k].uid;
      if (stats) stats->bytes += r.bytes, stats->verify_seconds += r.verify;
      if (stats) stats->uploaded_ms[uid] = r.uploaded_ms;
      if (r.update && stats && stats->keep_bytes) stats->files[uid] = std::move(r.file);
      if (r.update)
        out.emplace(uid, std::move(*r.update));
      else if (stats)
        stats->rejected[uid] = r.reason;
    }
  }
  if (stats)
    stats->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::optional<std::string> master_bucket(chain::Chain& chain, uint16_t netuid) {
  if (auto m = find_master(chain, netuid)) return m->bucket_url;
  return std::nullopt;
}

std::string set_softmax_weights(chain::Chain& chain, uint16_t netuid, const Signer& hotkey,
                                size_t neurons, nlohmann::json& miners, double temperature,
                                bool due, const std::function<void(const std::string&)>& log) {
  double top = -INFINITY, total = 0;
  for (auto& [uid, j] : miners.items()) top = std::max(top, j["score"].get<double>() * temperature);
  for (auto& [uid, j] : miners.items()) {
    j["weight"] = std::exp(j["score"].get<double>() * temperature - top);
    total += j["weight"].get<double>();
  }
  for (auto& [uid, j] : miners.items()) j["weight"] = j["weight"].get<double>() / total;
  return set_chain_weights(chain, netuid, hotkey, neurons, miners, due, log);
}

std::string set_chain_weights(chain::Chain& chain, uint16_t netuid, const Signer& hotkey,
                              size_t neurons, const nlohmann::json& miners, bool due,
                              const std::function<void(const std::string&)>& log,
                              const std::map<uint16_t, double>& extra) {
  std::vector<double> weights(neurons, 0.0);
  double total = 0;
  for (auto& [uid, j] : miners.items()) {
    const auto i = std::stoul(uid);
    if (i < neurons) weights[i] = j.value("weight", 0.0), total += weights[i];
  }
  for (const auto& [uid, x] : extra)
    if (uid < neurons && x > 0) weights[uid] += x, total += x;
  if (miners.empty() || !due) return "not due";
  if (!(total > 0)) return "no positive weight";
  const auto wv = chain::weights_from_scores(weights);
  try {
    chain.set_weights(netuid, hotkey, wv.uids, wv.values,
                      chain.hyperparameters(netuid).weights_version_key);
    return "set";
  } catch (const chain::ChainError& e) {
    log(fmt::format("set_weights refused: {}", e.what()));
    return e.name();
  }
}

std::unique_ptr<MetricsServer> start_metrics(const NeuronArgs& a, Metrics& m,
                                             const std::function<void(const std::string&)>& log) {
  if (a.metrics_port < 0) return nullptr;
  m.describe("bistro_window", "the last window this neuron finished", "gauge");
  m.describe("bistro_bytes_down_total", "update bytes downloaded from peers", "counter");
  m.describe("bistro_gather_seconds", "wall time of the last gather", "gauge");
  m.describe("bistro_rejections_total", "peer updates rejected, by reason", "counter");
  auto server = std::make_unique<MetricsServer>(m, a.metrics_port);
  log(fmt::format("metrics on http://127.0.0.1:{}/metrics", server->port()));
  return server;
}

void record_gather(Metrics& m, const GatherStats& gs) {
  m.add("bistro_bytes_down_total", static_cast<double>(gs.bytes));
  m.set("bistro_gather_seconds", gs.seconds);
  for (const auto& [uid, reason] : gs.rejected) {
    std::string r = reason.substr(0, reason.find(':'));
    for (char& c : r)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    m.add("bistro_rejections_total", 1, "reason=\"" + r + "\"");
  }
}

void append_line(const std::filesystem::path& file, const std::string& line) {
  std::ofstream out(file, std::ios::app);
  check(out.good(), "cannot append to {}", file.string());
  out << line << '\n';
}

void Timer::lap(const std::string& name) {
  auto now = std::chrono::steady_clock::now();
  laps_.emplace_back(name, std::chrono::duration<double>(now - last_).count());
  last_ = now;
}

nlohmann::json Timer::laps() const {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [n, s] : laps_) j[n] = j.value(n, 0.0) + s;  // a repeated name sums
  return j;
}

double Timer::total() const {
  return std::chrono::duration<double>(last_ - start_).count();
}

}  // namespace bistro
