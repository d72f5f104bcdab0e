#include "bistro/localnet/localnet.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "bistro/chain/local_chain.hpp"
#include "bistro/cheats/cheats.hpp"
#include "bistro/core/files.hpp"
#include "bistro/data/corpus.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/identity/wallet.hpp"
#include "bistro/localnet/live_table.hpp"
#include "bistro/localnet/report.hpp"
#include "bistro/localnet/supervisor.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/runtime/runtime.hpp"

namespace bistro {
namespace fs = std::filesystem;
using localnet::Proc;
using localnet::Supervisor;

namespace {

// --cheat KIND:N, each a cheating kind of cheats.hpp and a count.
std::vector<std::pair<Behaviour, int>> parse_cheats(const std::vector<std::string>& specs) {
  std::vector<std::pair<Behaviour, int>> cheats;
  for (const auto& c : specs) {
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
  return cheats;
}

fs::path run_directory(const LocalnetOptions& o, int64_t stamp) {
  fs::path dir = o.dir;
  if (dir.empty()) dir = bistro_home() / "localnet" / fmt::format("run-{}", stamp / 1'000'000);
  check(!fs::exists(dir / "chain.db"), "localnet: {} already holds a run", dir.string());
  for (auto sub : {"logs", "state", "buckets", "wallets", "report"})
    fs::create_directories(dir / sub);
  return dir;
}

// Seconds one inner step takes here with `concurrent` miners training at once (one thread each,
// the hparams' micro-batch), timed in process: the contention the miner processes will meet.
double time_inner_step(const NeuronHparams& h, int concurrent, const Compute& c) {
  NeuronData data("", h);
  auto batches = data.batches(pages(local_pages_key(0, 0), h.pages_per_window, data.configs), 2);
  std::vector<double> seconds(static_cast<size_t>(concurrent));
  std::vector<std::thread> threads;
  for (int i = 0; i < concurrent; ++i)
    threads.emplace_back([&, i] {
      Llama model(preset(h.preset));
      model->init_weights(h.init_seed);
      model->to(c.device);
      model->set_bf16(c.bf16);
      Trainer trainer(std::move(model), {});
      inner_loop(trainer, batches, 2);  // warm the allocator and the kernels
      const auto t0 = std::chrono::steady_clock::now();
      inner_loop(trainer, batches, 6);
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 6;
    });
  for (auto& t : threads) t.join();
  return *std::max_element(seconds.begin(), seconds.end());
}

// A validator's compute a window in inner-step units (docs/benchmarks.md, the cost model): per
// measured update, (2 + 2 references) x score_batches own-page micro-batch forwards (twice for an
// untrusted miner, counted here for one update in four: a subnet's first windows, a lost trust)
// plus score_random_batches random ones; per window the random pages' losses before, the held-out
// eval (6) and the guard (2). A forward costs about a third of a training step.
double validator_steps(const NeuronHparams& h, int miners) {
  const double own = 4.0 * static_cast<double>(h.score_batches);
  const double per_update = own * 1.25 + static_cast<double>(h.score_random_batches);
  const double per_window = static_cast<double>(h.score_random_batches) + 6 + 2;
  return (miners * per_update + per_window) / 3;
}

// v2 without --block-time: every process's work a window (a miner's H inner steps, a validator's
// measurements), shared among them, timed with them all training at once, should fill ~95% of a
// window; never less than H steps (the miners train for the whole window whatever it is).
double calibrate_block_time(const LocalnetOptions& o, const NeuronHparams& h,
                            const std::vector<std::pair<Behaviour, int>>& cheats) {
  if (o.block_time > 0) return o.block_time;
  if (h.codec != "sparseloco") return 1.0;
  init_runtime(1);
  // Lazy and garbage miners' updates are refused before any forward pass; every other one is
  // measured.
  int miners = o.miners - o.lazy - o.garbage, measured = miners;
  for (const auto& [kind, n] : cheats) miners += behaviour_trains(kind) ? n : 0, measured += n;
  const int validators = o.validators + static_cast<int>(o.validator_cheats.size());
  // An honest miner's extra ranks each take a micro-batch of every step, at once.
  const int ranks = (o.miners - o.lazy - o.garbage) * (std::max(1, o.miner_ranks) - 1);
  // A validator's extra ranks share its measurements: more processes, the same work.
  const int validator_ranks = o.validators * (std::max(1, o.validator_ranks) - 1);
  const int processes = miners + ranks + validators + validator_ranks;
  const double step = time_inner_step(h, processes, parse_compute(o.device, o.dtype));
  const double H = static_cast<double>(h.inner_steps);
  // Dishonest validators measure nothing: they only apply the records (a slow one measures).
  int judging = o.validators;
  for (const auto& kind : o.validator_cheats)
    judging += judges_honestly(parse_validator_behaviour(kind)) ? 1 : 0;
  const double demand = ((miners + ranks) * H + judging * validator_steps(h, measured)) / processes;
  double block_time = std::max(H, demand) * step / 0.95 / static_cast<double>(h.blocks_per_window);
  block_time = std::ceil(block_time * 20) / 20;  // to 50 ms
  fmt::print(
      "localnet: one inner step takes {:.3f} s here with {} processes at once; a window's work is "
      "{:.1f} steps each -> {:.2f} s blocks\n",
      step, processes, std::max(H, demand), block_time);
  return block_time;
}

// The windows between start-up and the first window: some 6 s, for every process to load.
uint64_t lead_windows(const NeuronHparams& h, double block_time) {
  return static_cast<uint64_t>(
      std::ceil(6.0 / (static_cast<double>(h.blocks_per_window) * block_time)));
}

// The chain (epochs every two windows; weights may be set every block), the wallets (unencrypted:
// a local test subnet), each node's registration and arguments, and the validator's stake. The
// validator is procs[0]; the honest, lazy and garbage miners follow, then the cheats (a copier's
// default victim is the lowest uid, miner-0).
class SubnetBuilder {
 public:
  SubnetBuilder(const LocalnetOptions& o, const NeuronHparams& h, fs::path dir, int64_t stamp,
                double block_time)
      : o_(o), dir_(std::move(dir)), stamp_(stamp), chain_file_(dir_ / "chain.db") {
    chain::LocalChain::create(chain_file_,
                              {.block_time_ms = static_cast<uint64_t>(block_time * 1000),
                               .genesis_seed = static_cast<uint64_t>(stamp)});
    chain_ = std::make_unique<chain::LocalChain>(chain_file_);
    // Another draw of the miners' pages: the clock moved on to just before the first window,
    // before the subnet exists (no epochs to catch up).
    const uint64_t lead = lead_windows(h, block_time);
    if (o.first_window > lead + 1)
      chain_->advance((o.first_window - lead - 1) * h.blocks_per_window);
    chain::Hyperparameters ch;
    ch.tempo = static_cast<uint16_t>(std::max<uint64_t>(1, 2 * h.blocks_per_window - 1));
    ch.weights_rate_limit = 1;
    ch.max_validators =
        static_cast<uint16_t>(std::max<size_t>(1, o.validators + o.validator_cheats.size()));
    ch.commit_reveal = o.commit_reveal;
    chain_->create_subnet(1, ch);
  }
  chain::LocalChain& chain() { return *chain_; }
  const fs::path& chain_file() const { return chain_file_; }

  std::vector<Proc> nodes(const std::vector<std::pair<Behaviour, int>>& cheats) {
    // The honest validators' ranks (dishonest kinds measure nothing).
    auto ranked = [&] {
      if (o_.validator_ranks > 1)
        procs_.back().argv.insert(procs_.back().argv.end(),
                                  {"--ranks", std::to_string(o_.validator_ranks)});
    };
    add("validator", "validator", "validator");
    if (!o_.dishonest_lead.empty()) {
      procs_.back().kind = o_.dishonest_lead;
      procs_.back().argv.insert(procs_.back().argv.end(), {"--behaviour", o_.dishonest_lead});
    } else {
      ranked();
    }
    for (int i = 0; i < o_.miners; ++i) {
      std::string b = i >= o_.miners - o_.garbage             ? "garbage"
                      : i >= o_.miners - o_.garbage - o_.lazy ? "lazy"
                                                              : "honest";
      add(fmt::format("miner-{}", i), "miner", b);
    }
    int named = o_.miners;
    for (const auto& [kind, n] : cheats) {
      int leader = -1;  // a sybil operator's first uid trains; the others send its update
      for (int i = 0; i < n; ++i) {
        add(fmt::format("miner-{}", named++), "miner", behaviour_name(kind),
            kind == Behaviour::Sybil ? leader : -1);
        if (kind == Behaviour::Sybil && leader < 0) leader = procs_.back().uid;
      }
    }
    // The followers last, so that procs[0] is the lead and procs[1] miner-0 whatever their number.
    for (int i = 1; i < o_.validators; ++i) {
      add(fmt::format("validator-{}", i), "validator", "validator");
      ranked();
    }
    for (size_t i = 0; i < o_.validator_cheats.size(); ++i) {
      add(fmt::format("validator-{}", o_.validators + static_cast<int>(i)), "validator",
          "validator");
      procs_.back().kind = o_.validator_cheats[i];
      procs_.back().argv.insert(procs_.back().argv.end(), {"--behaviour", o_.validator_cheats[i]});
    }
    return std::move(procs_);
  }

 private:
  void add(const std::string& name, const std::string& role, const std::string& behaviour,
           int copy_uid = -1) {
    const WalletPaths wp{dir_ / "wallets", name, "default"};
    auto seed = [&](const std::string& what) {
      std::string s = fmt::format("bistro-localnet/{}/{}/{}", stamp_, name, what);
      return sha256({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    };
    Keyfile cold = keyfile_from_seed(seed("coldkey")), hot = keyfile_from_seed(seed("hotkey"));
    write_coldkey(wp, cold, std::nullopt, false);
    write_keyfile(wp.hotkey_file(), hot, std::nullopt, false);
    Proc p;
    p.name = name;
    p.behaviour = behaviour;
    p.hotkey = hot.ss58_address;
    p.uid = chain_->register_neuron(1, *sr25519_signer(cold.mini_secret), hot.ss58_address);
    const std::string bucket = o_.bucket_url.empty()
                                   ? "file://" + (dir_ / "buckets" / name).string()
                                   : o_.bucket_url + "-" + name;
    p.argv = {"bistro",
              role,
              "--wallet.path",
              (dir_ / "wallets").string(),
              "--wallet.name",
              name,
              "--subtensor.network",
              "file:" + chain_file_.string(),
              "--netuid",
              "1",
              "--bucket",
              bucket,
              "--hparams",
              (dir_ / "hparams.json").string(),
              "--state",
              (dir_ / "state" / name).string(),
              "--threads",
              std::to_string(o_.threads),
              "--device",
              o_.device,
              "--dtype",
              o_.dtype};
    if (role == "miner") p.argv.insert(p.argv.end(), {"--behaviour", behaviour});
    if (role == "miner" && behaviour == "honest" && o_.miner_ranks > 1)
      p.argv.insert(p.argv.end(), {"--ranks", std::to_string(o_.miner_ranks)});
    if (copy_uid >= 0) p.argv.insert(p.argv.end(), {"--copy-uid", std::to_string(copy_uid)});
    if (role == "validator") p.argv.insert(p.argv.end(), {"--scoring", o_.scoring});
    if (role == "validator") {
      const size_t k = static_cast<size_t>(validators_++);
      const double tao = k < o_.stakes.size() ? o_.stakes[k] : 1000.0 / std::pow(2.0, k) + 0.2 * k;
      p.stake = static_cast<uint64_t>(tao * 1e9);
      chain_->add_stake(hot.ss58_address, cold.ss58_address, p.stake);
    }
    procs_.push_back(std::move(p));
  }

  const LocalnetOptions& o_;
  fs::path dir_;
  int64_t stamp_;
  fs::path chain_file_;
  std::unique_ptr<chain::LocalChain> chain_;
  std::vector<Proc> procs_;
  int validators_ = 0;
};

// The validators' lines by window: for each, the line of the validator that led it (published its
// record), the first in process order; read as the files grow.
class LeadLines {
 public:
  const std::map<uint64_t, nlohmann::json>& update(const fs::path& state,
                                                   const std::vector<Proc>& procs) {
    for (size_t k = 0; k < procs.size(); ++k) {
      if (procs[k].behaviour != "validator") continue;
      auto tail = tails_.try_emplace(k, state / procs[k].name / "metrics.jsonl").first;
      for (auto& line : tail->second.next()) {
        if (line.value("role", "lead") != "lead" || !line["window"].is_number_unsigned()) continue;
        const uint64_t w = line["window"].get<uint64_t>();
        auto [it, fresh] = from_.try_emplace(w, k);
        if (fresh || k < it->second) it->second = k, lines_[w] = std::move(line);
      }
    }
    return lines_;
  }

 private:
  std::map<size_t, localnet::JsonlTail> tails_;  // by process index
  std::map<uint64_t, size_t> from_;              // window -> the process its line came from
  std::map<uint64_t, nlohmann::json> lines_;
};

// The resilience checks: at half the run, SIGKILL the validator (v2: back two windows later, and
// it must reach the present in one step; v1: back at once, counting the windows left) and
// miner-0 (back two windows later: it must catch up).
struct Kills {
  const LocalnetOptions& o;
  bool loco;
  double window_s;
  bool validator_killed = false, miner_killed = false;

  void after_window(Supervisor& sup, size_t done) {
    const size_t half = std::max<uint64_t>(1, o.windows / 2);
    const auto later =
        Supervisor::Clock::now() + std::chrono::duration_cast<Supervisor::Clock::duration>(
                                       std::chrono::duration<double>(2 * window_s));
    // A validator of the several (the lead, or the follower validator-1), back in three windows.
    auto kill_for_three_windows = [&](const std::string& name, const char* role) {
      for (size_t i = 0; i < sup.procs().size(); ++i) {
        if (sup.procs()[i].name != name) continue;
        fmt::print("\nlocalnet: SIGKILL to the {} {} (pid {}); it restarts in three windows\n",
                   role, name, sup.procs()[i].pid);
        validator_killed = true;
        sup.kill_now(
            i, Supervisor::Clock::now() + std::chrono::duration_cast<Supervisor::Clock::duration>(
                                              std::chrono::duration<double>(3 * window_s)));
      }
    };
    if (o.kill_lead && !validator_killed && done == half)
      kill_for_three_windows(sup.procs()[0].name, "lead");
    if (o.kill_follower && !validator_killed && done == half)
      kill_for_three_windows("validator-1", "follower");
    if (o.kill_validator && !validator_killed && done == half) {
      fmt::print("\nlocalnet: SIGKILL to the validator (pid {}); it restarts {}\n",
                 sup.procs()[0].pid, loco ? "in two windows" : "at once");
      validator_killed = true;
      if (!loco) sup.procs()[0].argv.back() = std::to_string(o.windows - done);
      sup.kill_now(0, loco ? later : Supervisor::Clock::now());
    }
    if (o.kill_miner && sup.procs().size() > 1 && !miner_killed && done == half) {
      fmt::print("\nlocalnet: SIGKILL to {} (pid {}); it restarts in two windows\n",
                 sup.procs()[1].name, sup.procs()[1].pid);
      miner_killed = true;
      sup.kill_now(1, later);
    }
  }
};

// The honest validators and the dishonest ones.
size_t validator_count(const LocalnetOptions& o) {
  return static_cast<size_t>(o.validators) + o.validator_cheats.size();
}

// The options' own consistency, before anything is written: one clear error each.
void check_options(const LocalnetOptions& o) {
  check(o.miners >= 1 && o.miners <= 64, "localnet: --miners must be 1..64");
  check(o.lazy + o.garbage < o.miners, "localnet: at least one miner must be honest");
  check(o.windows >= 1 && o.block_time >= 0,
        "localnet: --windows must be positive and --block-time not negative");
  check(o.validators >= 1 && o.validators <= 16, "localnet: --validators must be 1..16");
  check(!o.kill_lead || o.validators >= 2, "localnet: --kill-lead needs --validators 2 or more");
  check(!o.kill_follower || o.validators >= 2,
        "localnet: --kill-follower needs --validators 2 or more");
  check(!(o.kill_lead && o.kill_follower), "localnet: --kill-lead or --kill-follower, not both");
  const size_t all_validators = validator_count(o);
  check(o.stakes.empty() || o.stakes.size() == all_validators,
        "localnet: --stakes gives {} stakes for {} validators", o.stakes.size(), all_validators);
  check(o.dishonest_lead.empty() ||
            parse_validator_behaviour(o.dishonest_lead) != ValidatorBehaviour::Honest,
        "localnet: --dishonest-lead {}: want a dishonest kind (admit-all, censor, stall)",
        o.dishonest_lead);
  for (const auto& kind : o.validator_cheats)
    check(parse_validator_behaviour(kind) != ValidatorBehaviour::Honest,
          "localnet: --validator-cheat {}: want a dishonest or slow kind (self-weight, "
          "weight-copier, slow)",
          kind);
  for (size_t i = 1; i < o.stakes.size(); ++i)
    check(o.stakes[i] < o.stakes[0] && o.stakes[i] > 0,
          "localnet: --stakes: the first validator (the lead) must hold the most stake, and every "
          "stake must be positive");
  check(o.bucket_url.empty() || o.bucket_url.rfind("s3://", 0) == 0,
        "localnet: --bucket-url must be s3://PREFIX (got '{}')", o.bucket_url);
}

}  // namespace

int run_localnet(const LocalnetOptions& o) {
  const auto cheats = parse_cheats(o.cheats);
  check_options(o);
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  const fs::path dir = run_directory(o, stamp);
  NeuronHparams h = load_hparams(o.hparams_file);
  const bool loco = h.codec == "sparseloco";
  check(loco || validator_count(o) == 1, "localnet: {} validators need protocol v2 (codec {})",
        validator_count(o), h.codec);
  write_file_atomic(dir / "hparams.json", to_json(h).dump(2));
  build_default_corpus(default_corpus_dir(), {}, false);  // once, before the processes race for it
  const double block_time = calibrate_block_time(o, h, cheats);
  fmt::print(
      "localnet: {} miners + {} validator(s), {} windows of {} blocks x {} s, preset {}, codec {}, "
      "in {}\n",
      o.miners, o.validators, o.windows, h.blocks_per_window, block_time, h.preset, h.codec,
      dir.string());
  SubnetBuilder subnet(o, h, dir, stamp, block_time);
  Supervisor sup(dir / "logs", subnet.nodes(cheats));
  auto& chain = subnet.chain();

  // Start a little ahead so every process has loaded before its first window.
  const double window_s = static_cast<double>(h.blocks_per_window) * block_time;
  const uint64_t start =
      std::max(window_of(chain.block(), h) + 1 + lead_windows(h, block_time), o.first_window);
  for (size_t i = 0; i < sup.procs().size(); ++i) {
    sup.procs()[i].argv.insert(sup.procs()[i].argv.end(), {"--start-window", std::to_string(start),
                                                           "--windows", std::to_string(o.windows)});
    sup.start(i);
  }
  if (o.first_window > 0 && start != o.first_window)
    fmt::print(
        "localnet: --first-window {}: the chain is past it at start-up; the run starts at "
        "window {}\n",
        o.first_window, start);
  fmt::print("localnet: chain {}; windows {}..{}; logs in {}\n", subnet.chain_file().string(),
             start, start + o.windows - 1, (dir / "logs").string());
  std::fflush(stdout);

  // Watch: one live table per window the validator finishes, until it has finished them all.
  localnet::LiveTable table(dir / "state", loco);
  Kills kills{o, loco, window_s};
  std::vector<nlohmann::json> report;
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration<double>(60 + (start - window_of(chain.block(), h) + o.windows + 3) *
                                             window_s * 3);
  // Each window's line is the lead's: whichever validator published its record (a failover
  // moves the lead). A window nobody published is passed over once a later one is in.
  uint64_t next = start;
  auto validators_alive = [&] {
    for (const auto& p : sup.procs())
      if (p.behaviour == "validator" && p.pid >= 0) return true;
    return false;
  };
  LeadLines leads;
  while (next < start + o.windows && validators_alive()) {
    sup.poll();
    const auto& lines = leads.update(dir / "state", sup.procs());
    for (auto it = lines.lower_bound(next); it != lines.end(); ++it) {
      next = it->first + 1;
      report.push_back(table.add(it->second, chain.metagraph(1), sup.procs()));
      kills.after_window(sup, report.size());
    }
    check(std::chrono::steady_clock::now() < deadline, "localnet: the run took too long; see {}",
          (dir / "logs").string());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  // Miners finish their last gather shortly after the validator; then any straggler is stopped.
  sup.stop(3 * window_s + 10);

  localnet::RunRecord run{dir,
                          o,
                          h,
                          block_time,
                          start,
                          sup.procs(),
                          std::move(report),
                          kills.validator_killed,
                          kills.miner_killed,
                          table.agree(),
                          table.compared()};
  localnet::write_report(run);
  check(run.report.size() + (o.kill_lead ? 2 : 0) >= o.windows,
        "localnet: the validators finished {} of {} windows; see {}", run.report.size(), o.windows,
        (dir / "logs" / "validator.log").string());
  return 0;
}

}  // namespace bistro
