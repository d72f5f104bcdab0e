#include "bistro/neurons/localnet.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "bistro/chain/local_chain.hpp"
#include "bistro/core/files.hpp"
#include "bistro/core/runtime.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "bistro/neurons/arrivals.hpp"
#include "bistro/neurons/cheats.hpp"
#include "bistro/neurons/inner_loop.hpp"
#include "bistro/neurons/neuron.hpp"

namespace bistro {
namespace fs = std::filesystem;
namespace {

// The upper median (0 for none): the localnet's per-window figures.
double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The honest miners' updates that entered the records (of those sent), over the run and its last
// third; the record's latency after the last upload; the validator's bucket requests.
void summarize_admission(const std::vector<nlohmann::json>& report, const NeuronHparams& h,
                         double block_time, nlohmann::json& summary) {
  int sent = 0, in = 0, sent_late = 0, in_late = 0, skipped = 0;
  std::vector<double> latency, requests;
  for (size_t i = 0; i < report.size(); ++i) {
    const auto& line = report[i];
    const bool last_third = 3 * i >= 2 * report.size();
    skipped += line.value("skipped", false);
    for (auto& [uid, m] : line["miners"].items()) {
      const auto c = line["chain"].value(uid, nlohmann::json::object());
      if (c.value("kind", "") != "honest" || m.value("status", "missing") == "missing") continue;
      const bool accepted = m.value("accepted", false);
      ++sent, in += accepted;
      if (last_third) ++sent_late, in_late += accepted;
    }
    if (line.value("record_latency", -1.0) >= 0) latency.push_back(line["record_latency"]);
    requests.push_back(line.value("requests", 0.0));
  }
  const double window_s = block_time * static_cast<double>(h.blocks_per_window);
  summary["honest_admission"] = sent ? static_cast<double>(in) / sent : 0.0;
  summary["honest_admission_last_third"] =
      sent_late ? static_cast<double>(in_late) / sent_late : 0.0;
  summary["honest_updates_sent"] = sent;
  summary["record_latency_median"] = median(latency);
  summary["record_latency_share_of_window"] = window_s > 0 ? median(latency) / window_s : 0.0;
  summary["validator_requests_per_window"] = median(requests);
  // Windows that ended before their predecessor's record was out (the validator down or behind):
  // empty records, published at once.
  summary["windows_skipped"] = skipped;
  // The bound at 256 expected miners (arrivals.hpp): polls at most min(256 x 80, 50 x window)
  // plus one GET per update.
  summary["validator_requests_per_window_at_256_uids_bound"] =
      std::min(256.0 * 80.0, kMaxPollRate * window_s) + 256.0;
  fmt::print(
      "  honest updates in the records: {:.1f}% ({} of {}; last third {:.1f}%); record {:.2f}s "
      "({:.1f}% of a window) after the last upload (median)\n",
      100 * summary["honest_admission"].get<double>(), in, sent,
      100 * summary["honest_admission_last_third"].get<double>(), median(latency),
      100 * summary["record_latency_share_of_window"].get<double>());
}

struct Proc {
  std::string name, behaviour;
  std::vector<std::string> argv;
  pid_t pid = -1;
  int exit_code = -1;
  uint16_t uid = 0;
  std::string hotkey;
};

pid_t spawn(const Proc& p, const fs::path& log) {
  pid_t pid = fork();
  check(pid >= 0, "localnet: fork failed");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& s : p.argv) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  return pid;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::vector<nlohmann::json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// One SVG line chart: series name -> (x, y) points.
std::string svg_chart(const std::string& title,
                      const std::map<std::string, std::vector<std::pair<double, double>>>& series) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& [n, pts] : series)
    for (auto [x, y] : pts)
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (!std::isfinite(x0)) return "<p>" + title + ": no data</p>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1e-9, y0 -= 1e-9;
  const double W = 640, H = 300, L = 60, B = 30;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - 130); };
  auto py = [&](double y) { return 20 + (1 - (y - y0) / (y1 - y0)) * (H - 20 - B); };
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                 "#9467bd", "#8c564b", "#e377c2"};
  std::string s = fmt::format(
      "<h3>{}</h3><svg width='{}' height='{}' style='font:11px sans-serif'>"
      "<rect x='{}' y='20' width='{}' height='{}' fill='none' stroke='#999'/>"
      "<text x='2' y='24'>{:.4g}</text><text x='2' y='{}'>{:.4g}</text>"
      "<text x='{}' y='{}'>window {}</text><text x='{}' y='{}'>{}</text>",
      title, W, H, L, W - L - 130, H - 20 - B, y1, H - B, y0, L, H - 8, x0, W - 180, H - 8, x1);
  int c = 0;
  for (auto& [name, pts] : series) {
    std::string poly;
    for (auto [x, y] : pts) poly += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    const char* color = colors[c % 7];
    s += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2' points='{}'/>", color,
                     poly);
    s += fmt::format("<text x='{}' y='{}' fill='{}'>{}</text>", W - 120, 35 + 14 * c, color, name);
    ++c;
  }
  return s + "</svg>";
}

// Seconds one inner step takes here with `concurrent` miners training at once (one thread each,
// the hparams' micro-batch), timed in process: the contention the miner processes will meet.
double time_inner_step(const NeuronHparams& h, int concurrent) {
  NeuronData data("", h);
  auto batches = data.batches(pages(local_pages_key(0, 0), h.pages_per_window, data.configs), 2);
  std::vector<double> seconds(static_cast<size_t>(concurrent));
  std::vector<std::thread> threads;
  for (int i = 0; i < concurrent; ++i)
    threads.emplace_back([&, i] {
      Llama model(preset(h.preset));
      model->init_weights(h.init_seed);
      Trainer trainer(std::move(model), {});
      inner_loop(trainer, batches, 2);  // warm the allocator and the kernels
      const auto t0 = std::chrono::steady_clock::now();
      inner_loop(trainer, batches, 6);
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 6;
    });
  for (auto& t : threads) t.join();
  return *std::max_element(seconds.begin(), seconds.end());
}

// The single-node reference: one AdamW model on the union of the miners' pages, the same inner
// steps (each on every honest miner's micro-batch of that step), evaluated on the validator's
// held-out pages after each window. Returns (window, loss) points.
std::vector<std::pair<double, double>> run_baseline(const NeuronHparams& h,
                                                    const std::vector<uint16_t>& uids,
                                                    uint64_t first, uint64_t windows) {
  NeuronData data("", h);
  const auto eval = data.held_out(h);
  Llama model(preset(h.preset));
  model->init_weights(h.init_seed);
  Trainer trainer(std::move(model), inner_train_options(h));
  std::vector<std::pair<double, double>> out;
  for (uint64_t w = first; w < first + windows; ++w) {
    std::vector<std::vector<Batch>> per_miner;
    for (uint16_t uid : uids)
      per_miner.push_back(data.batches(
          pages(local_pages_key(w, uid), h.pages_per_window, data.configs), h.max_micro_batches));
    for (int64_t i = 0; i < h.inner_steps; ++i) {
      std::vector<Batch> step;
      for (const auto& b : per_miner)
        if (!b.empty()) step.push_back(b[static_cast<size_t>(i) % b.size()]);
      if (!step.empty()) trainer.step(step);
    }
    out.emplace_back(static_cast<double>(w), mean_loss(trainer.model(), eval));
    fmt::print("baseline: window {} held-out loss {:.4f}\n", w, out.back().second);
    std::fflush(stdout);
  }
  return out;
}

}  // namespace

int run_localnet(const LocalnetOptions& o) {
  // --cheat KIND:N, each a cheating kind of cheats.hpp and a count.
  std::vector<std::pair<Behaviour, int>> cheats;
  for (const auto& c : o.cheats) {
    const auto colon = c.find(':');
    check(colon != std::string::npos, "localnet: --cheat wants KIND:N (got '{}')", c);
    const Behaviour kind = parse_behaviour(c.substr(0, colon));
    int n = 0;
    try {
      n = std::stoi(c.substr(colon + 1));
    } catch (const std::exception&) {
    }
    check(kind != Behaviour::Honest && n > 0,
          "localnet: --cheat {}: want a cheating kind and N > 0", c);
    cheats.emplace_back(kind, n);
  }
  check(o.miners >= 1 && o.miners <= 64, "localnet: --miners must be 1..64");
  check(o.lazy + o.garbage < o.miners, "localnet: at least one miner must be honest");
  check(o.windows >= 1 && o.block_time >= 0,
        "localnet: --windows must be positive and --block-time not negative");
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  fs::path dir = o.dir;
  if (dir.empty()) {
    const char* home = std::getenv("BISTRO_HOME");
    const char* user = std::getenv("HOME");
    fs::path base = home ? home : fs::path(user ? user : ".") / ".bistro";
    dir = base / "localnet" / fmt::format("run-{}", stamp / 1'000'000);
  }
  check(!fs::exists(dir / "chain.db"), "localnet: {} already holds a run", dir.string());
  for (auto sub : {"logs", "state", "buckets", "wallets", "report"})
    fs::create_directories(dir / sub);

  NeuronHparams h = load_hparams(o.hparams_file);
  const bool loco = h.codec == "sparseloco";
  write_file_atomic(dir / "hparams.json", to_json(h).dump(2));
  build_default_corpus(default_corpus_dir(), {}, false);  // once, before the processes race for it
  double block_time = o.block_time;
  if (block_time == 0 && loco) {
    // H inner steps, timed with every training miner at once plus one more for the validator
    // (its scoring costs about one miner's compute here), should fill ~95% of a window.
    init_runtime(1);
    int training = o.miners - o.lazy - o.garbage + 1;
    for (const auto& [kind, n] : cheats) training += behaviour_trains(kind) ? n : 0;
    const double step = time_inner_step(h, training);
    block_time =
        static_cast<double>(h.inner_steps) * step / 0.95 / static_cast<double>(h.blocks_per_window);
    block_time = std::ceil(block_time * 20) / 20;  // to 50 ms
    fmt::print(
        "localnet: one inner step takes {:.3f} s here with {} processes training at once "
        "-> {:.2f} s blocks\n",
        step, training, block_time);
  } else if (block_time == 0) {
    block_time = 1.0;
  }
  fmt::print(
      "localnet: {} miners + 1 validator, {} windows of {} blocks x {} s, preset {}, codec {}, "
      "in {}\n",
      o.miners, o.windows, h.blocks_per_window, block_time, h.preset, h.codec, dir.string());
  check(o.bucket_url.empty() || o.bucket_url.rfind("s3://", 0) == 0,
        "localnet: --bucket-url must be s3://PREFIX (got '{}')", o.bucket_url);

  // The chain: epochs every two windows; weights may be set every block.
  const fs::path chain_file = dir / "chain.db";
  chain::LocalChain::create(chain_file, {.block_time_ms = static_cast<uint64_t>(block_time * 1000),
                                         .genesis_seed = static_cast<uint64_t>(stamp)});
  chain::LocalChain chain(chain_file);
  chain::Hyperparameters ch;
  ch.tempo = static_cast<uint16_t>(std::max<uint64_t>(1, 2 * h.blocks_per_window - 1));
  ch.weights_rate_limit = 1;
  ch.max_validators = 1;
  chain.create_subnet(1, ch);

  // Wallets (unencrypted: a local test subnet), registration and the validator's stake.
  std::vector<Proc> procs;
  auto make = [&](const std::string& name, const std::string& role, const std::string& behaviour,
                  int copy_uid = -1) {
    const WalletPaths wp{dir / "wallets", name, "default"};
    auto seed = [&](const std::string& what) {
      std::string s = fmt::format("bistro-localnet/{}/{}/{}", stamp, name, what);
      return sha256({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    };
    Keyfile cold = keyfile_from_seed(seed("coldkey")), hot = keyfile_from_seed(seed("hotkey"));
    write_coldkey(wp, cold, std::nullopt, false);
    write_keyfile(wp.hotkey_file(), hot, std::nullopt, false);
    Proc p;
    p.name = name;
    p.behaviour = behaviour;
    p.hotkey = hot.ss58_address;
    p.uid = chain.register_neuron(1, *sr25519_signer(cold.mini_secret), hot.ss58_address);
    p.argv = {"bistro",
              role,
              "--wallet.path",
              (dir / "wallets").string(),
              "--wallet.name",
              name,
              "--subtensor.network",
              "file:" + chain_file.string(),
              "--netuid",
              "1",
              "--bucket",
              o.bucket_url.empty() ? "file://" + (dir / "buckets" / name).string()
                                   : o.bucket_url + "-" + name,
              "--hparams",
              (dir / "hparams.json").string(),
              "--state",
              (dir / "state" / name).string(),
              "--threads",
              std::to_string(o.threads)};
    if (role == "miner") p.argv.insert(p.argv.end(), {"--behaviour", behaviour});
    if (copy_uid >= 0) p.argv.insert(p.argv.end(), {"--copy-uid", std::to_string(copy_uid)});
    if (role == "validator") p.argv.insert(p.argv.end(), {"--scoring", o.scoring});
    if (role == "validator") chain.add_stake(hot.ss58_address, cold.ss58_address, 1000'000'000'000);
    procs.push_back(std::move(p));
  };
  make("validator", "validator", "validator");
  for (int i = 0; i < o.miners; ++i) {
    std::string b = i >= o.miners - o.garbage            ? "garbage"
                    : i >= o.miners - o.garbage - o.lazy ? "lazy"
                                                         : "honest";
    make(fmt::format("miner-{}", i), "miner", b);
  }
  // The cheats, after the honest miners (a copier's default victim is the lowest uid, miner-0).
  int named = o.miners;
  for (const auto& [kind, n] : cheats) {
    int leader = -1;  // a sybil operator's first uid trains; the others send its update
    for (int i = 0; i < n; ++i) {
      make(fmt::format("miner-{}", named++), "miner", behaviour_name(kind),
           kind == Behaviour::Sybil ? leader : -1);
      if (kind == Behaviour::Sybil && leader < 0) leader = procs.back().uid;
    }
  }

  // Start a little ahead so every process has loaded before its first window.
  const double window_s = static_cast<double>(h.blocks_per_window) * block_time;
  const uint64_t start =
      window_of(chain.block(), h) + 1 + static_cast<uint64_t>(std::ceil(6.0 / window_s));
  const uint64_t validator_windows = o.windows;
  for (auto& p : procs) {
    const bool is_validator = &p == &procs[0];
    p.argv.insert(p.argv.end(), {"--start-window", std::to_string(start), "--windows",
                                 std::to_string(is_validator ? validator_windows : o.windows)});
    p.pid = spawn(p, dir / "logs" / (p.name + ".log"));
  }
  fmt::print("localnet: chain {}; windows {}..{}; logs in {}\n", chain_file.string(), start,
             start + o.windows - 1, (dir / "logs").string());
  std::fflush(stdout);

  // Live view: one table per window the validator finishes.
  Proc& validator = procs[0];
  const fs::path vmetrics = dir / "state" / "validator" / "metrics.jsonl";
  std::vector<nlohmann::json> report;
  bool killed = false;
  auto reap = [&](bool block) {
    for (auto& p : procs) {
      if (p.pid <= 0) continue;
      int status = 0;
      if (waitpid(p.pid, &status, block ? 0 : WNOHANG) == p.pid) {
        p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        p.pid = -1;
      }
    }
  };
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration<double>(60 + (start - window_of(chain.block(), h) + o.windows + 3) *
                                             window_s * 3);
  // Protocol v2: the master's hash of theta_w, from its lines (base_hash of line u is theta_u,
  // params_hash theta_{u+1}), against each miner's hash of the theta_w it trained from.
  std::map<uint64_t, std::string> master_hash;
  uint64_t agree = 0, compared = 0;
  bool miner_killed = false;
  size_t miner_restart_at = 0;
  // When a killed validator comes back (never, until one is killed).
  auto validator_back = std::chrono::steady_clock::time_point::max();
  while (true) {
    reap(false);
    if (std::chrono::steady_clock::now() >= validator_back) {
      fmt::print("\nlocalnet: restarting the validator\n");
      validator.pid = spawn(validator, dir / "logs" / "validator.log");
      validator_back = std::chrono::steady_clock::time_point::max();
    }
    auto lines = read_jsonl(vmetrics);
    for (size_t i = report.size(); i < lines.size(); ++i) {
      auto& line = lines[i];
      const uint64_t w = line["window"].get<uint64_t>();
      if (loco) {
        master_hash[w] = line.value("base_hash", "");
        master_hash[w + 1] = line.value("params_hash", "");
      }
      const chain::Metagraph m = chain.metagraph(1);
      fmt::print(
          "\nwindow {} (block {}): master loss {:.4f} ({} {:.4f}), {} updates accepted, "
          "weights {}\n",
          w, m.block, line["master_loss"].get<double>(),
          loco ? "before the outer step" : "before merge", line["base_loss"].get<double>(),
          line["accepted"].get<int>(), line["weights"].get<std::string>());
      fmt::print("  {:<9} {:>4} {:<16} {:>8} {:>10} {:>7} {:>8} {:>9} {:>11} {:>7}  {}\n", "miner",
                 "uid", "kind", "loss", "score", "rating", "weight", "incentive", "emission(τ)",
                 loco ? "theta" : "", "status");
      nlohmann::json chain_view = nlohmann::json::object();
      for (size_t k = 1; k < procs.size(); ++k) {
        const Proc& p = procs[k];
        double loss = NAN;
        std::string hash;
        for (auto& ml : read_jsonl(dir / "state" / p.name / "metrics.jsonl")) {
          if (ml["window"].get<uint64_t>() != w) continue;
          if (ml["loss"].is_number()) loss = ml["loss"].get<double>();
          hash = ml.value("params_hash", "");
        }
        std::string sync = "";
        if (loco) {
          auto mh = master_hash.find(w);
          if (hash.empty() || mh == master_hash.end() || mh->second.empty()) {
            sync = "-";
          } else {
            sync = hash == mh->second ? "same" : "DIFFER";
            ++compared;
            agree += hash == mh->second;
          }
        }
        auto mj = line["miners"].value(std::to_string(p.uid), nlohmann::json::object());
        const auto& n = m.neurons.at(p.uid);
        std::string status = mj.value("status", "-");
        if (status == "ok" && !mj.value("reason", "").empty()) status = mj.value("reason", "");
        fmt::print(
            "  {:<9} {:>4} {:<16} {:>8.4f} {:>10.5f} {:>7.3f} {:>8.3f} {:>9.4f} {:>11.4f} {:>7}  "
            "{}\n",
            p.name, p.uid, p.behaviour, loss, mj.value("score", 0.0), mj.value("rating", 0.0),
            mj.value("weight", 0.0), n.incentive / 65535.0, n.emission / 1e9, sync,
            status.substr(0, 70));
        chain_view[std::to_string(p.uid)] = {
            {"name", p.name},         {"kind", p.behaviour},
            {"loss", loss},           {"incentive", n.incentive / 65535.0},
            {"emission", n.emission}, {"dividends", n.dividends / 65535.0},
            {"theta", sync}};
      }
      std::fflush(stdout);  // the live view must reach a pipe or file as it happens
      line["chain"] = chain_view;
      line["validator_dividends"] = m.neurons.at(validator.uid).dividends / 65535.0;
      report.push_back(line);
      if (o.kill_validator && !killed && report.size() == std::max<uint64_t>(1, o.windows / 2)) {
        fmt::print("\nlocalnet: SIGKILL to the validator (pid {}), restarting it\n", validator.pid);
        kill(validator.pid, SIGKILL);
        waitpid(validator.pid, nullptr, 0);
        killed = true;
        // v2: the validator stays down for two windows (it must reach the present in one step
        // when it is back) and ends at the same fixed window. v1 restarts at once and counts the
        // windows left.
        if (loco) {
          validator.pid = 0;
          validator_back = std::chrono::steady_clock::now() +
                           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(2 * window_s));
        } else {
          Proc again = validator;
          again.argv[again.argv.size() - 1] = std::to_string(o.windows - report.size());
          validator.pid = spawn(again, dir / "logs" / "validator.log");
        }
      }
      if (o.kill_miner && procs.size() > 1) {
        Proc& victim = procs[1];
        if (!miner_killed && report.size() == std::max<uint64_t>(1, o.windows / 2)) {
          fmt::print("\nlocalnet: SIGKILL to {} (pid {}); it restarts in two windows\n",
                     victim.name, victim.pid);
          kill(victim.pid, SIGKILL);
          waitpid(victim.pid, nullptr, 0);
          victim.pid = -1;
          miner_killed = true;
          miner_restart_at = report.size() + 2;
        } else if (miner_killed && report.size() == miner_restart_at) {
          fmt::print("\nlocalnet: restarting {}\n", victim.name);
          victim.pid = spawn(victim, dir / "logs" / (victim.name + ".log"));
        }
      }
    }
    if (report.size() >= validator_windows || validator.pid < 0) break;
    check(std::chrono::steady_clock::now() < deadline, "localnet: the run took too long; see {}",
          (dir / "logs").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // Miners finish their last gather shortly after the validator; stop any straggler.
  auto stop_by =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(3 * window_s + 10);
  while (std::chrono::steady_clock::now() < stop_by) {
    reap(false);
    bool any = false;
    for (auto& p : procs) any |= p.pid > 0;
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& p : procs)
    if (p.pid > 0) kill(p.pid, SIGTERM);
  reap(true);

  // The report.
  const fs::path rdir = dir / "report";
  std::string jsonl,
      csv = "window,uid,name,kind,loss,score,rating,weight,incentive,emission_rao,theta,status\n";
  std::map<std::string, std::vector<std::pair<double, double>>> master_loss, scores, ratings,
      weights, incentive;
  std::map<std::string, std::pair<double, int>> kind_incentive;  // kind -> (sum, uid-windows)
  for (const auto& line : report) {
    jsonl += line.dump() + "\n";
    const double w = line["window"].get<double>();
    master_loss["master (held-out pages)"].emplace_back(w, line["master_loss"].get<double>());
    for (auto& [uid, c] : line["chain"].items()) {
      auto mj = line["miners"].value(uid, nlohmann::json::object());
      const std::string label =
          c["name"].get<std::string>() + " (" + c["kind"].get<std::string>() + ")";
      scores[label].emplace_back(w, mj.value("score", 0.0));
      ratings[label].emplace_back(w, mj.value("rating", 0.0));
      weights[label].emplace_back(w, mj.value("weight", 0.0));
      incentive[label].emplace_back(w, c["incentive"].get<double>());
      auto& ki = kind_incentive[c["kind"].get<std::string>()];
      ki.first += c["incentive"].get<double>(), ++ki.second;
      csv += fmt::format(
          "{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n", line["window"].get<uint64_t>(), uid,
          c["name"].get<std::string>(), c["kind"].get<std::string>(),
          c["loss"].is_number() ? c["loss"].get<double>() : NAN, mj.value("score", 0.0),
          mj.value("rating", 0.0), mj.value("weight", 0.0), c["incentive"].get<double>(),
          c["emission"].get<uint64_t>(), c.value("theta", ""), mj.value("status", "-"));
    }
  }
  nlohmann::json summary = {{"windows", report.size()},
                            {"codec", h.codec},
                            {"block_time", block_time},
                            {"validator_restarted", killed},
                            {"miner_restarted", miner_killed},
                            {"theta_compared", compared},
                            {"theta_agree", agree},
                            {"processes", nlohmann::json::array()}};
  if (!report.empty()) {
    summary["first_master_loss"] = report.front()["base_loss"];
    summary["last_master_loss"] = report.back()["master_loss"];
    summary["final"] = report.back()["chain"];
    summary["final_scores"] = report.back()["miners"];
    summary["kind_incentive"] = nlohmann::json::object();
    for (auto& [kind, ki] : kind_incentive)
      summary["kind_incentive"][kind] = ki.second ? ki.first / ki.second : 0.0;
  }
  for (const auto& p : procs)
    summary["processes"].push_back(
        {{"name", p.name}, {"uid", p.uid}, {"kind", p.behaviour}, {"exit", p.exit_code}});
  // Per-window time split (median over windows; miners pooled) and validator throughput.
  std::map<std::string, std::vector<double>> miner_laps, validator_laps;
  std::vector<double> inner_share;  // honest miners, their first window (start-up) left out
  for (size_t k = 1; k < procs.size(); ++k) {
    const auto lines = read_jsonl(dir / "state" / procs[k].name / "metrics.jsonl");
    for (size_t i = 0; i < lines.size(); ++i) {
      const auto& ml = lines[i];
      for (auto& [stage, sec] : ml["seconds"].items())
        miner_laps[stage].push_back(sec.get<double>());
      if (!loco) miner_laps["verify (within gather)"].push_back(ml.value("verify_seconds", 0.0));
      if (loco && i > 0 && procs[k].behaviour == "honest")
        inner_share.push_back(ml.value("inner_share", 0.0));
    }
  }
  double scored = 0, busy = 0;
  for (const auto& line : report) {
    for (auto& [stage, sec] : line["seconds"].items()) {
      validator_laps[stage].push_back(sec.get<double>());
      busy += sec.get<double>();
    }
    validator_laps["verify (within gather)"].push_back(line.value("verify_seconds", 0.0));
    scored += line["accepted"].get<double>();
  }
  nlohmann::json split = {{"miner", nlohmann::json::object()},
                          {"validator", nlohmann::json::object()}};
  fmt::print("\ntime per window (median seconds)\n");
  for (auto& [stage, v] : miner_laps) {
    split["miner"][stage] = median(v);
    fmt::print("  miner     {:<24} {:8.3f}\n", stage, median(v));
  }
  for (auto& [stage, v] : validator_laps) {
    split["validator"][stage] = median(v);
    fmt::print("  validator {:<24} {:8.3f}\n", stage, median(v));
  }
  const double per_minute = busy > 0 ? scored / busy * 60.0 : 0.0;
  fmt::print("  validator throughput: {:.1f} updates scored per minute of validator work\n",
             per_minute);
  summary["time_split"] = split;
  summary["updates_scored_per_minute"] = per_minute;
  if (loco) {
    summary["inner_share_median"] = median(inner_share);
    double encode_outer = 0, total = 0;
    for (const char* stage : {"sync", "encode"}) encode_outer += split["miner"].value(stage, 0.0);
    for (auto& [stage, v] : split["miner"].items()) total += v.get<double>();
    summary["encode_and_outer_share"] = total > 0 ? encode_outer / total : 0.0;
    fmt::print(
        "  miners spent {:.1f}% of their wall time in inner steps (median window), "
        "{:.1f}% in encode + outer step\n",
        100 * median(inner_share), 100 * summary["encode_and_outer_share"].get<double>());
    fmt::print("  parameter hashes: {} of {} miner windows equal the master's\n", agree, compared);
    summarize_admission(report, h, block_time, summary);
    std::vector<double> record_gets;
    for (size_t k = 1; k < procs.size(); ++k)
      for (const auto& ml : read_jsonl(dir / "state" / procs[k].name / "metrics.jsonl"))
        record_gets.push_back(ml.value("record_requests", 0.0));
    summary["miner_record_requests_per_window"] = median(record_gets);
  }
  if (o.baseline) {
    std::vector<uint16_t> honest;
    for (size_t k = 1; k < procs.size(); ++k)
      if (procs[k].behaviour == "honest") honest.push_back(procs[k].uid);
    fmt::print("\nlocalnet: the single-node AdamW baseline on the union of {} miners' pages\n",
               honest.size());
    init_runtime(o.threads);
    auto points = run_baseline(h, honest, start, o.windows);
    master_loss["single-node AdamW (union of pages)"] = points;
    if (!points.empty()) summary["baseline_last_loss"] = points.back().second;
  }
  write_file_atomic(rdir / "metrics.jsonl", jsonl);
  write_file_atomic(rdir / "metrics.csv", csv);
  write_file_atomic(rdir / "summary.json", summary.dump(2));
  std::string html =
      "<!doctype html><html><head><meta charset='utf-8'><title>bistro localnet</title></head>"
      "<body style='font-family:sans-serif'><h2>bistro localnet</h2>";
  html += fmt::format("<p>{} miners, {} windows, codec {}, run directory {}</p>", o.miners,
                      report.size(), h.codec, dir.string());
  if (loco) {
    html += fmt::format(
        "<p>Parameter hashes: <b>{} of {}</b> miner windows held exactly the master's theta. "
        "Honest miners spent a median <b>{:.1f}%</b> of each window in inner steps.</p>",
        agree, compared, 100 * summary.value("inner_share_median", 0.0));
    html +=
        "<h3>theta per window (miner's hash vs the master's)</h3><table border='1' "
        "cellpadding='3' style='border-collapse:collapse'><tr><th>window</th>";
    for (size_t k = 1; k < procs.size(); ++k) html += "<th>" + procs[k].name + "</th>";
    html += "</tr>";
    for (const auto& line : report) {
      html += fmt::format("<tr><td>{}</td>", line["window"].get<uint64_t>());
      for (size_t k = 1; k < procs.size(); ++k) {
        const std::string t = line["chain"]
                                  .value(std::to_string(procs[k].uid), nlohmann::json::object())
                                  .value("theta", "-");
        html += fmt::format("<td style='background:{}'>{}</td>",
                            t == "same"     ? "#cfc"
                            : t == "DIFFER" ? "#fcc"
                                            : "#fff",
                            t);
      }
      html += "</tr>";
    }
    html += "</table>";
  }
  html += svg_chart("Master loss per window (fixed held-out pages)", master_loss);
  // Who earned what, by kind: the cheats should end with nothing.
  html +=
      "<h3>Mean incentive per uid and window, by kind</h3><table border='1' cellpadding='3' "
      "style='border-collapse:collapse'><tr><th>kind</th><th>mean incentive</th></tr>";
  for (auto& [kind, ki] : kind_incentive)
    html += fmt::format("<tr><td>{}</td><td>{:.4f}</td></tr>", kind,
                        ki.second ? ki.first / ki.second : 0.0);
  html += "</table>";
  html += svg_chart(
      loco ? "Window score per miner (gauntlet)" : "Score per miner (EMA of loss improvement)",
      scores);
  if (loco) html += svg_chart("Rating per miner (EMA of window scores)", ratings);
  html += svg_chart("Weight per miner (this validator)", weights);
  html += svg_chart("Incentive per miner (Yuma)", incentive);
  html += "</body></html>\n";
  write_file_atomic(rdir / "report.html", html);
  fmt::print("\nlocalnet: report in {} (report.html, metrics.csv, metrics.jsonl, summary.json)\n",
             rdir.string());
  check(report.size() == validator_windows,
        "localnet: the validator finished {} of {} windows; see {}", report.size(),
        validator_windows, (dir / "logs" / "validator.log").string());
  return 0;
}

}  // namespace bistro
