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
#include "bistro/data/corpus.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "bistro/neurons/neuron.hpp"

namespace bistro {
namespace fs = std::filesystem;
namespace {

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

}  // namespace

int run_localnet(const LocalnetOptions& o) {
  check(o.miners >= 1 && o.miners <= 64, "localnet: --miners must be 1..64");
  check(o.lazy + o.garbage < o.miners, "localnet: at least one miner must be honest");
  check(o.windows >= 1 && o.block_time > 0,
        "localnet: --windows and --block-time must be positive");
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
  write_file_atomic(dir / "hparams.json", to_json(h).dump(2));
  fmt::print(
      "localnet: {} miners + 1 validator, {} windows of {} blocks x {} s, preset {}, in {}\n",
      o.miners, o.windows, h.blocks_per_window, o.block_time, h.preset, dir.string());
  build_default_corpus(default_corpus_dir(), {}, false);  // once, before the processes race for it

  // The chain: epochs every two windows; weights may be set every block.
  const fs::path chain_file = dir / "chain.db";
  chain::LocalChain::create(chain_file,
                            {.block_time_ms = static_cast<uint64_t>(o.block_time * 1000),
                             .genesis_seed = static_cast<uint64_t>(stamp)});
  chain::LocalChain chain(chain_file);
  chain::Hyperparameters ch;
  ch.tempo = static_cast<uint16_t>(std::max<uint64_t>(1, 2 * h.blocks_per_window - 1));
  ch.weights_rate_limit = 1;
  ch.max_validators = 1;
  chain.create_subnet(1, ch);

  // Wallets (unencrypted: a local test subnet), registration and the validator's stake.
  std::vector<Proc> procs;
  auto make = [&](const std::string& name, const std::string& role, const std::string& behaviour) {
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
              "file://" + (dir / "buckets" / name).string(),
              "--hparams",
              (dir / "hparams.json").string(),
              "--state",
              (dir / "state" / name).string(),
              "--threads",
              std::to_string(o.threads)};
    if (role == "miner") p.argv.insert(p.argv.end(), {"--behaviour", behaviour});
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

  // Start a little ahead so every process has loaded before its first window.
  const double window_s = static_cast<double>(h.blocks_per_window) * o.block_time;
  const uint64_t start =
      window_of(chain.block(), h) + 1 + static_cast<uint64_t>(std::ceil(6.0 / window_s));
  for (auto& p : procs) {
    p.argv.insert(p.argv.end(), {"--start-window", std::to_string(start), "--windows",
                                 std::to_string(o.windows)});
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
      std::chrono::duration<double>(60 + (start - window_of(chain.block(), h) + o.windows + 2) *
                                             window_s * 3);
  while (true) {
    reap(false);
    auto lines = read_jsonl(vmetrics);
    for (size_t i = report.size(); i < lines.size(); ++i) {
      auto& line = lines[i];
      const uint64_t w = line["window"].get<uint64_t>();
      const chain::Metagraph m = chain.metagraph(1);
      fmt::print(
          "\nwindow {} (block {}): master loss {:.4f} (before merge {:.4f}), {} updates accepted, "
          "weights {}\n",
          w, m.block, line["master_loss"].get<double>(), line["base_loss"].get<double>(),
          line["accepted"].get<int>(), line["weights"].get<std::string>());
      fmt::print("  {:<9} {:>4} {:<8} {:>8} {:>10} {:>8} {:>9} {:>11}  {}\n", "miner", "uid",
                 "kind", "loss", "score", "weight", "incentive", "emission(τ)", "status");
      nlohmann::json chain_view = nlohmann::json::object();
      for (size_t k = 1; k < procs.size(); ++k) {
        const Proc& p = procs[k];
        double loss = NAN;
        for (auto& ml : read_jsonl(dir / "state" / p.name / "metrics.jsonl"))
          if (ml["window"].get<uint64_t>() == w && ml["loss"].is_number())
            loss = ml["loss"].get<double>();
        auto mj = line["miners"].value(std::to_string(p.uid), nlohmann::json::object());
        const auto& n = m.neurons.at(p.uid);
        fmt::print("  {:<9} {:>4} {:<8} {:>8.4f} {:>10.5f} {:>8.3f} {:>9.4f} {:>11.4f}  {}\n",
                   p.name, p.uid, p.behaviour, loss, mj.value("score", 0.0),
                   mj.value("weight", 0.0), n.incentive / 65535.0, n.emission / 1e9,
                   mj.value("status", "-"));
        chain_view[std::to_string(p.uid)] = {
            {"name", p.name},         {"kind", p.behaviour},
            {"loss", loss},           {"incentive", n.incentive / 65535.0},
            {"emission", n.emission}, {"dividends", n.dividends / 65535.0}};
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
        auto argv = validator.argv;
        argv[argv.size() - 1] = std::to_string(o.windows - report.size());
        Proc again = validator;
        again.argv = argv;
        validator.pid = spawn(again, dir / "logs" / "validator.log");
      }
    }
    if (report.size() >= o.windows || validator.pid < 0) break;
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
  std::string jsonl, csv = "window,uid,name,kind,loss,score,weight,incentive,emission_rao,status\n";
  std::map<std::string, std::vector<std::pair<double, double>>> master_loss, scores, incentive;
  for (const auto& line : report) {
    jsonl += line.dump() + "\n";
    const double w = line["window"].get<double>();
    master_loss["master (held-out pages)"].emplace_back(w, line["master_loss"].get<double>());
    for (auto& [uid, c] : line["chain"].items()) {
      auto mj = line["miners"].value(uid, nlohmann::json::object());
      const std::string label =
          c["name"].get<std::string>() + " (" + c["kind"].get<std::string>() + ")";
      scores[label].emplace_back(w, mj.value("score", 0.0));
      incentive[label].emplace_back(w, c["incentive"].get<double>());
      csv +=
          fmt::format("{},{},{},{},{},{},{},{},{},\"{}\"\n", line["window"].get<uint64_t>(), uid,
                      c["name"].get<std::string>(), c["kind"].get<std::string>(),
                      c["loss"].is_number() ? c["loss"].get<double>() : NAN, mj.value("score", 0.0),
                      mj.value("weight", 0.0), c["incentive"].get<double>(),
                      c["emission"].get<uint64_t>(), mj.value("status", "-"));
    }
  }
  nlohmann::json summary = {{"windows", report.size()},
                            {"validator_restarted", killed},
                            {"processes", nlohmann::json::array()}};
  if (!report.empty()) {
    summary["first_master_loss"] = report.front()["base_loss"];
    summary["last_master_loss"] = report.back()["master_loss"];
    summary["final"] = report.back()["chain"];
    summary["final_scores"] = report.back()["miners"];
  }
  for (const auto& p : procs)
    summary["processes"].push_back(
        {{"name", p.name}, {"uid", p.uid}, {"kind", p.behaviour}, {"exit", p.exit_code}});
  // Per-window time split (median over windows; miners pooled) and validator throughput.
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::map<std::string, std::vector<double>> miner_laps, validator_laps;
  for (size_t k = 1; k < procs.size(); ++k)
    for (auto& ml : read_jsonl(dir / "state" / procs[k].name / "metrics.jsonl")) {
      for (auto& [stage, sec] : ml["seconds"].items())
        miner_laps[stage].push_back(sec.get<double>());
      miner_laps["verify (within gather)"].push_back(ml.value("verify_seconds", 0.0));
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
  write_file_atomic(rdir / "metrics.jsonl", jsonl);
  write_file_atomic(rdir / "metrics.csv", csv);
  write_file_atomic(rdir / "summary.json", summary.dump(2));
  std::string html =
      "<!doctype html><html><head><meta charset='utf-8'><title>bistro localnet</title></head>"
      "<body style='font-family:sans-serif'><h2>bistro localnet</h2>";
  html += fmt::format("<p>{} miners, {} windows, run directory {}</p>", o.miners, report.size(),
                      dir.string());
  html += svg_chart("Master loss per window (fixed held-out pages)", master_loss);
  html += svg_chart("Score per miner (EMA of loss improvement)", scores);
  html += svg_chart("Incentive per miner (Yuma)", incentive);
  html += "</body></html>\n";
  write_file_atomic(rdir / "report.html", html);
  fmt::print("\nlocalnet: report in {} (report.html, metrics.csv, metrics.jsonl, summary.json)\n",
             rdir.string());
  check(report.size() == o.windows, "localnet: the validator finished {} of {} windows; see {}",
        report.size(), o.windows, (dir / "logs" / "validator.log").string());
  return 0;
}

}  // namespace bistro
