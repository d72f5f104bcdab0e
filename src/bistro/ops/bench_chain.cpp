#include "bistro/ops/bench_chain.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "bistro/chain/local_chain.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/core/error.hpp"
#include "bistro/core/rng.hpp"
#include "bistro/identity/ss58.hpp"

namespace bistro {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median_epoch_ms(chain::EpochParams p, const chain::EpochState& s, int runs) {
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    auto t = Clock::now();
    auto res = chain::run_epoch(p, s);
    ms.push_back(since(t) * 1e3);
    check(res.incentive.size() == s.stake.size(), "bench chain: epoch returned the wrong size");
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::unique_ptr<Signer> bench_key(int n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = static_cast<uint8_t>(n);
  seed[1] = static_cast<uint8_t>(n >> 8);
  seed[2] = 0xbe;
  return ed25519_signer(seed);
}

// Runs `op` in `processes` forked children for `seconds`; returns the total operations per second.
template <typename Op>
double hammer(int processes, double seconds, const std::filesystem::path& dir, Op op) {
  std::vector<pid_t> kids;
  for (int p = 0; p < processes; ++p) {
    pid_t pid = fork();
    check(pid >= 0, "bench chain: fork failed");
    if (pid == 0) {
      uint64_t count = 0;
      int rc = 0;
      try {
        auto start = Clock::now();
        while (since(start) < seconds) op(p, count++);
      } catch (const std::exception& e) {
        fprintf(stderr, "bench chain: process %d: %s\n", p, e.what());
        rc = 1;
      }
      std::ofstream(dir / ("count-" + std::to_string(p))) << count;
      _exit(rc);
    }
    kids.push_back(pid);
  }
  uint64_t total = 0;
  for (int p = 0; p < processes; ++p) {
    int status = 0;
    waitpid(kids[p], &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "bench chain: a writer process failed");
    uint64_t n = 0;
    std::ifstream(dir / ("count-" + std::to_string(p))) >> n;
    total += n;
  }
  return static_cast<double>(total) / seconds;
}

}  // namespace

ChainBenchResult run_chain_bench(const std::filesystem::path& dir, int uids, int validators,
                                 int processes, double seconds) {
  check(uids > 0 && uids <= 4096 && validators > 0 && validators <= uids,
        "bench chain: need 0 < validators <= uids <= 4096");
  ChainBenchResult r;
  r.processes = processes;

  // A full subnet: every validator has stake, a permit and a dense weight row over all uids.
  rng::Stream rng(rng::derive(0xbe7c4, "bench-chain"));
  chain::EpochParams p;
  p.block = 10'000;
  p.tempo = 360;
  p.max_validators = static_cast<uint16_t>(validators);
  chain::EpochState s;
  for (int i = 0; i < uids; ++i) {
    s.stake.push_back(i < validators ? 1'000'000'000 + rng.below(1'000'000'000'000) : 0);
    s.last_update.push_back(9'000);
    s.block_at_registration.push_back(100);
    s.validator_permit.push_back(i < validators);
    chain::SparseRow w, b;
    if (i < validators)
      for (int j = 0; j < uids; ++j) {
        w.emplace_back(j, static_cast<uint16_t>(1 + rng.below(65535)));
        b.emplace_back(j, static_cast<uint16_t>(rng.below(65536)));
      }
    s.weights.push_back(std::move(w));
    s.bonds.push_back(std::move(b));
  }
  p.yuma3 = true;
  r.epoch_ms_yuma3 = median_epoch_ms(p, s, 15);
  p.liquid_alpha = true;
  r.epoch_ms_liquid = median_epoch_ms(p, s, 15);
  p.yuma3 = p.liquid_alpha = false;
  r.epoch_ms_classic = median_epoch_ms(p, s, 15);

  // The SQLite chain under concurrent writers.
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto file = dir / "chain.db";
  chain::LocalChain::create(file, {.block_time_ms = 3'600'000});
  {
    chain::LocalChain c(file);
    chain::Hyperparameters h;
    h.weights_rate_limit = 0;
    h.tempo = 65535;  // no epoch inside the measurement
    h.max_validators = static_cast<uint16_t>(processes);
    c.create_subnet(1, h);
    auto cold = bench_key(4000);
    for (int i = 0; i < uids; ++i)
      c.register_neuron(1, *cold, ss58_encode(bench_key(i)->public_key()));
    for (int i = 0; i < processes; ++i)
      c.add_stake(ss58_encode(bench_key(i)->public_key()), ss58_encode(cold->public_key()), 1000);
    // Grant permits with one epoch at a short tempo, then stop epochs again.
    h.tempo = 1;
    c.set_hyperparameters(1, h);
    c.advance(3);
    c.metagraph(1);
    h.tempo = 65535;
    c.set_hyperparameters(1, h);
  }
  std::vector<uint16_t> all(static_cast<size_t>(uids));
  for (int j = 0; j < uids; ++j) all[j] = static_cast<uint16_t>(j);
  r.set_weights_per_s = hammer(processes, seconds, dir, [&](int p, uint64_t n) {
    static thread_local std::unique_ptr<chain::LocalChain> c;
    static thread_local std::unique_ptr<Signer> k;
    if (!c) c = std::make_unique<chain::LocalChain>(file), k = bench_key(p);
    std::vector<uint16_t> w(all.size(), static_cast<uint16_t>(1 + n % 1000));
    c->set_weights(1, *k, all, w, 0);
  });
  r.commitments_per_s = hammer(processes, seconds, dir, [&](int p, uint64_t n) {
    static thread_local std::unique_ptr<chain::LocalChain> c;
    static thread_local std::unique_ptr<Signer> k;
    if (!c) c = std::make_unique<chain::LocalChain>(file), k = bench_key(p);
    c->set_commitment(1, *k, "s3://bucket-" + std::to_string(p) + "/" + std::to_string(n));
  });
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace bistro
