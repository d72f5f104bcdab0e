// LocalChain: the SQLite chain shared by processes: registration, stake, weights with subtensor's
// errors, hash commit-reveal, commitments, epochs exactly once under concurrency, and bad chain
// files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "bistro/chain/local_chain.hpp"
#include "bistro/chain/yuma.hpp"
#include "bistro/identity/ss58.hpp"
#include "test_util.hpp"

using namespace bistro;
using namespace bistro::chain;

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("bistro-chain-" + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::unique_ptr<Signer> key(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  seed[1] = 0x5a;
  return ed25519_signer(seed);
}
std::string ss58(const Signer& s) {
  return ss58_encode(s.public_key());
}

// A chain with subnet 1, fast blocks and no rate limit unless a test sets one.
struct Fixture {
  std::filesystem::path dir, file;
  std::unique_ptr<LocalChain> chain;
  Hyperparameters h;
  explicit Fixture(const std::string& name, uint16_t tempo = 4) {
    dir = temp_dir(name);
    file = dir / "chain.db";
    LocalChain::create(file, {.block_time_ms = 60'000, .genesis_seed = 7});
    chain = std::make_unique<LocalChain>(file);
    h.tempo = tempo;
    h.weights_rate_limit = 0;
    h.max_validators = 4;
    chain->create_subnet(1, h);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST(LocalChain, CreateOpenAndRejectBadFiles) {
  Fixture f("files");
  EXPECT_THROW(LocalChain::create(f.file), Error);  // never overwrites a chain
  EXPECT_THROW(LocalChain(f.dir / "missing.db"), Error);
  std::ofstream(f.dir / "garbage.db") << std::string(4096, 'x');
  try {
    LocalChain bad(f.dir / "garbage.db");
    FAIL() << "a corrupt chain file opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.db"), std::string::npos) << e.what();
  }
  EXPECT_EQ(test::chain_error_name([&] { f.chain->metagraph(9); }), "SubnetNotExists");
  EXPECT_EQ(test::chain_error_name([&] { f.chain->create_subnet(1, {}); }), "SubnetExists");
}

TEST(LocalChain, BlocksAndHashesAreDeterministic) {
  Fixture f("blocks");
  uint64_t b0 = f.chain->block();
  f.chain->advance(10);
  EXPECT_EQ(f.chain->block(), b0 + 10);
  LocalChain other(f.file);  // a second process's view
  EXPECT_EQ(other.block(), b0 + 10);
  EXPECT_EQ(other.block_hash(3), f.chain->block_hash(3));
  EXPECT_NE(f.chain->block_hash(3), f.chain->block_hash(4));
  EXPECT_THROW(f.chain->block_hash(b0 + 1000), Error);
}

TEST(LocalChain, RegistrationAssignsUidsAndReplacesWhenFull) {
  Fixture f("register");
  Hyperparameters h = f.h;
  h.max_uids = 3;
  h.immunity_period = 0;
  f.chain->set_hyperparameters(1, h);
  auto cold = key(100);
  for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(f.chain->register_neuron(1, *cold, ss58(*key(i))), i);
  EXPECT_EQ(f.chain->register_neuron(1, *cold, ss58(*key(1))), 1);  // idempotent
  EXPECT_THROW(f.chain->register_neuron(1, *cold, "not-an-address"), Error);

  // uid 0 validates and puts all weight on uid 2; uid 1 earns nothing and is replaced.
  f.chain->add_stake(ss58(*key(0)), ss58(*cold), 1000);
  f.chain->advance(5);
  f.chain->metagraph(1);  // runs the epoch that grants the permit
  f.chain->set_weights(1, *key(0), {2}, {65535}, 0);
  f.chain->advance(5);
  Metagraph m = f.chain->metagraph(1);
  EXPECT_GT(m.neurons[2].emission, 0u);
  EXPECT_EQ(m.neurons[1].emission, 0u);
  EXPECT_EQ(f.chain->register_neuron(1, *cold, ss58(*key(3))), 1);
  m = f.chain->metagraph(1);
  ASSERT_EQ(m.neurons.size(), 3u);
  EXPECT_EQ(m.neurons[1].hotkey, ss58(*key(3)));
  EXPECT_EQ(m.neurons[1].block_at_registration, f.chain->block());
  EXPECT_EQ(m.uid_of(ss58(*key(1))), std::nullopt);
}

TEST(LocalChain, SetWeightsFollowsSubtensorRulesAndWritesNothingOnError) {
  Fixture f("weights");
  auto cold = key(100);
  for (uint8_t i = 0; i < 4; ++i) f.chain->register_neuron(1, *cold, ss58(*key(i)));
  f.chain->add_stake(ss58(*key(0)), ss58(*cold), 5000);
  auto v = key(0);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->set_weights(1, *key(50), {1}, {1}, 0); }),
            "HotKeyNotRegisteredInSubNet");
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 2}, {1, 1}, 0);
            }),
            "NeuronNoValidatorPermit");  // no epoch has granted a permit yet
  f.chain->advance(5);
  Metagraph before = f.chain->metagraph(1);
  ASSERT_TRUE(before.neurons[0].validator_permit);
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 2}, {1}, 0);
            }),
            "WeightVecNotEqualSize");
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 1}, {1, 1}, 0);
            }),
            "DuplicateUids");
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 7}, {1, 1}, 0);
            }),
            "UidVecContainInvalidOne");
  Hyperparameters h = f.h;
  h.min_allowed_weights = 2;
  h.weights_rate_limit = 3;
  h.weights_version_key = 5;
  f.chain->set_hyperparameters(1, h);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->set_weights(1, *v, {1}, {1}, 5); }),
            "WeightVecLengthIsLow");
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 2}, {1, 1}, 4);
            }),
            "IncorrectWeightVersionKey");
  // Nothing was written by the refused calls.
  Metagraph after = f.chain->metagraph(1);
  EXPECT_EQ(after.neurons[0].last_update, before.neurons[0].last_update);
  for (const auto& row : f.chain->weights(1)) EXPECT_TRUE(row.empty());
  f.chain->advance(3);
  f.chain->set_weights(1, *v, {1, 2}, {100, 50}, 5);
  // Read back as the chain stores them: one row per uid, max-upscaled u16 values.
  const auto rows = f.chain->weights(1);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::pair<uint16_t, uint16_t>>{{1, 65535}, {2, 32768}}));
  EXPECT_TRUE(rows[1].empty() && rows[2].empty() && rows[3].empty());
  EXPECT_EQ(test::chain_error_name([&] {
              f.chain->set_weights(1, *v, {1, 2}, {1, 1}, 5);
            }),
            "SettingWeightsTooFast");
  f.chain->advance(5);
  Metagraph m = f.chain->metagraph(1);
  EXPECT_GT(m.neurons[1].incentive, m.neurons[2].incentive);
  EXPECT_GT(m.neurons[2].incentive, 0);
  EXPECT_GT(m.neurons[0].dividends, 60000);
}

TEST(LocalChain, HashCommitRevealFollowsSubtensorRules) {
  Fixture f("reveal");
  auto cold = key(100);
  for (uint8_t i = 0; i < 3; ++i) f.chain->register_neuron(1, *cold, ss58(*key(i)));
  f.chain->add_stake(ss58(*key(0)), ss58(*cold), 5000);
  f.chain->advance(5);  // an epoch grants the permit
  auto v = key(0);
  const std::vector<uint16_t> uids{1, 2}, values{300, 100}, salt{7, 7, 7, 7, 7, 7, 7, 7};
  const std::string hash = weights_commit_hash(v->public_key(), 1, uids, values, salt, 0);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->commit_weights(1, *v, hash); }),
            "CommitRevealDisabled");
  Hyperparameters h = f.h;
  h.commit_reveal = true;
  f.chain->set_hyperparameters(1, h);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->reveal_weights(1, *v, uids, values, salt, 0); }),
            "NoWeightsCommitFound");
  EXPECT_EQ(test::chain_error_name([&] { f.chain->commit_weights(1, *key(50), hash); }),
            "HotKeyNotRegisteredInSubNet");
  f.chain->commit_weights(1, *v, hash);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->reveal_weights(1, *v, uids, values, salt, 0); }),
            "RevealTooEarly");
  const std::vector<uint16_t> other_salt{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(
      test::chain_error_name([&] { f.chain->reveal_weights(1, *v, uids, values, other_salt, 0); }),
      "InvalidRevealCommitHashNotMatch");
  for (const auto& row : f.chain->weights(1)) EXPECT_TRUE(row.empty());  // nothing revealed yet
  // The next epoch (tempo 4: five blocks) is the reveal epoch: the weights land as committed.
  auto to_next_epoch = [&] {
    const uint64_t e = epoch_index(1, h.tempo, f.chain->block());
    while (epoch_index(1, h.tempo, f.chain->block()) == e) f.chain->advance(1);
  };
  to_next_epoch();
  f.chain->reveal_weights(1, *v, uids, values, salt, 0);
  EXPECT_EQ(f.chain->weights(1)[0],
            (std::vector<std::pair<uint16_t, uint16_t>>{{1, 65535}, {2, 21845}}));
  EXPECT_EQ(test::chain_error_name([&] { f.chain->reveal_weights(1, *v, uids, values, salt, 0); }),
            "NoWeightsCommitFound");  // used up
  // A commit not revealed in its reveal epoch expires.
  f.chain->commit_weights(1, *v, hash);
  to_next_epoch();
  to_next_epoch();
  EXPECT_EQ(test::chain_error_name([&] { f.chain->reveal_weights(1, *v, uids, values, salt, 0); }),
            "ExpiredWeightCommit");
  // At most ten unrevealed commits.
  for (int i = 0; i < 10; ++i) f.chain->commit_weights(1, *v, hash);
  EXPECT_EQ(test::chain_error_name([&] { f.chain->commit_weights(1, *v, hash); }),
            "TooManyUnrevealedCommits");
}

TEST(LocalChain, SetWeightsOnACommitRevealSubnetRevealsLaterEvenAfterARestart) {
  Fixture f("reveal-later");
  auto cold = key(100);
  for (uint8_t i = 0; i < 3; ++i) f.chain->register_neuron(1, *cold, ss58(*key(i)));
  f.chain->add_stake(ss58(*key(0)), ss58(*cold), 5000);
  f.chain->advance(5);
  Hyperparameters h = f.h;
  h.commit_reveal = true;
  f.chain->set_hyperparameters(1, h);
  auto v = key(0);
  f.chain->set_weights(1, *v, {1, 2}, {100, 300}, 0);  // a commit: nothing visible
  for (const auto& row : f.chain->weights(1)) EXPECT_TRUE(row.empty());
  const auto file = f.file.string() + ".reveals/" + ss58(*v) + ".json";
  ASSERT_TRUE(std::filesystem::exists(file));  // the salt outlives the process
  const uint64_t e = epoch_index(1, h.tempo, f.chain->block());
  while (epoch_index(1, h.tempo, f.chain->block()) == e) f.chain->advance(1);
  {
    LocalChain restarted(f.file);  // a new process: reveals the first commit, commits the second
    restarted.set_weights(1, *v, {1, 2}, {500, 100}, 0);
  }
  EXPECT_EQ(f.chain->weights(1)[0],
            (std::vector<std::pair<uint16_t, uint16_t>>{{1, 21845}, {2, 65535}}));
  // A corrupt store is refused with its name, whatever is wrong with it.
  for (const char* bad :
       {"{not json", "[{\"netuid\": 1}]", "[{\"netuid\": \"x\"}]",
        "[{\"netuid\": 1, \"hotkey\": \"h\", \"version_key\": 0, \"uids\": [1], "
        "\"values\": [70000], \"salt\": []}]",
        "[{\"netuid\": 1, \"mecid\": \"x\", \"hotkey\": \"h\", \"version_key\": 0, "
        "\"uids\": [], \"values\": [], \"salt\": []}]",
        "[{\"netuid\": 1, \"mecid\": 300, \"hotkey\": \"h\", \"version_key\": 0, "
        "\"uids\": [], \"values\": [], \"salt\": []}]"}) {
    std::ofstream(file) << bad;
    try {
      LocalChain again(f.file);
      again.set_weights(1, *v, {1}, {1}, 0);
      FAIL() << "a corrupt reveals file was read: " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(".json"), std::string::npos) << e.what();
    }
  }
}

TEST(CommitReveal, EpochIndexIsSubtensors) {
  EXPECT_EQ(epoch_index(1, 360, 0), 0u);
  EXPECT_EQ(epoch_index(1, 360, 358), 0u);
  EXPECT_EQ(epoch_index(1, 360, 359), 1u);  // (359 + 2) / 361
  EXPECT_EQ(epoch_index(3, 99, 96), 1u);    // (96 + 4) / 100
  EXPECT_EQ(epoch_index(3, 99, 95), 0u);
}

TEST(LocalChain, CommitmentsNeedRegistrationAndFitTheLimit) {
  Fixture f("commit");
  auto cold = key(100);
  f.chain->register_neuron(1, *cold, ss58(*key(0)));
  EXPECT_EQ(test::chain_error_name([&] { f.chain->set_commitment(1, *key(9), "x"); }),
            "AccountNotAllowedCommit");
  EXPECT_EQ(
      test::chain_error_name([&] { f.chain->set_commitment(1, *key(0), std::string(385, 'a')); }),
      "TooManyFieldsInCommitmentInfo");
  std::string bucket = "s3://bucket-0?endpoint=http://127.0.0.1:9000";
  f.chain->set_commitment(1, *key(0), bucket);
  auto all = f.chain->commitments(1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[ss58(*key(0))], bucket);
}

// Eight processes hammer one chain file at once; every write lands and each epoch runs once.
TEST(LocalChain, ConcurrentProcessesShareOneChain) {
  Fixture f("procs", 1);
  f.chain->advance(1);  // epochs every 2 blocks from here
  auto cold = key(100);
  const int kProcs = 8, kWrites = 20;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        LocalChain c(f.file);
        auto hk = key(static_cast<uint8_t>(p));
        c.register_neuron(1, *cold, ss58(*hk));
        for (int w = 0; w < kWrites; ++w) {
          c.set_commitment(1, *hk, "write-" + std::to_string(w));
          if (w % 5 == 0) c.advance(1);  // everyone moves the clock: epochs race
        }
      } catch (const std::exception& e) {
        fprintf(stderr, "child %d: %s\n", p, e.what());
        rc = 1;
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  Metagraph m = f.chain->metagraph(1);
  EXPECT_EQ(m.neurons.size(), static_cast<size_t>(kProcs));
  auto all = f.chain->commitments(1);
  EXPECT_EQ(all.size(), static_cast<size_t>(kProcs));
  for (auto& [hk, data] : all) EXPECT_EQ(data, "write-" + std::to_string(kWrites - 1));
  // One record per epoch block, none skipped, none twice.
  auto epochs = f.chain->epochs(1);
  ASSERT_GE(epochs.size(), 10u);
  for (size_t k = 1; k < epochs.size(); ++k) EXPECT_EQ(epochs[k].block - epochs[k - 1].block, 2u);
  EXPECT_TRUE(is_epoch_block(epochs.back().block, 1, 1));
}

TEST(Hyperparameters, JsonRoundTripAndClearErrors) {
  Hyperparameters h;
  h.tempo = 10;
  h.liquid_alpha = true;
  Hyperparameters back = hyperparameters_from_json(to_json(h), "test");
  EXPECT_EQ(to_json(back), to_json(h));
  EXPECT_THROW(hyperparameters_from_json(nlohmann::json{{"tempo", -1}}, "cfg"), Error);
  EXPECT_THROW(hyperparameters_from_json(nlohmann::json{{"tempo", 70000}}, "cfg"), Error);
  EXPECT_THROW(hyperparameters_from_json(nlohmann::json{{"tempo", 0}}, "cfg"), Error);
  try {
    hyperparameters_from_json(nlohmann::json{{"tempoo", 1}}, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tempoo"), std::string::npos);
  }
}

// The metrics endpoint: a real HTTP server on loopback, read with our libcurl client.
#include "bistro/core/metrics.hpp"
#include "bistro/data/http.hpp"

TEST(Metrics, PrometheusTextOverHttp) {
  Metrics m;
  m.describe("bistro_window", "the window being worked on", "gauge");
  m.set("bistro_window", 42);
  m.add("bistro_rejections_total", 1, "reason=\"BadSignature\"");
  m.add("bistro_rejections_total", 2, "reason=\"BadSignature\"");
  MetricsServer server(m, 0);
  auto r = http_get(fmt::format("http://127.0.0.1:{}/metrics", server.port()));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE bistro_window gauge\nbistro_window 42\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("bistro_rejections_total{reason=\"BadSignature\"} 3\n"), std::string::npos)
      << r.body;
}
