// Neuron plumbing against real parts: a LocalChain file, file buckets, signed updates. A bad peer
// (garbage, wrong key, missing object, unreachable bucket) is skipped with its reason; good peers
// are gathered; hparams files are checked; protocol v2's records move a node's theta exactly as
// the master's, from the miner's bucket or the mirror, and a bad record resynchronises it.
#include <algorithm>
#include <fstream>
#include <set>

#include "bistro/chain/local_chain.hpp"
#include "bistro/compress/dct.hpp"
#include "bistro/compress/error_feedback.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/compress/sparse_loco.hpp"
#include "bistro/identity/sr25519.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/localnet/supervisor.hpp"
#include "bistro/miner/inner_loop.hpp"
#include "bistro/protocol/attestation.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/protocol/peers.hpp"
#include "bistro/storage/file_bucket.hpp"
#include "bistro/storage/sigv4.hpp"
#include "bistro/validator/scoring.hpp"
#include "model_test_util.hpp"

using namespace bistro;

namespace {
// A batch of random token rows (a model memorises them quickly: a clear own-page signal).
Batch random_batch(const LlamaConfig& c, int64_t rows, int64_t len, uint64_t seed) {
  torch::manual_seed(seed);
  const auto tokens = torch::randint(c.vocab_size, {rows, len + 1}, torch::kLong);
  return {tokens.slice(1, 0, len).contiguous(), tokens.slice(1, 1, len + 1).contiguous()};
}

std::unique_ptr<Signer> key(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  seed[5] = 0x77;
  return sr25519_signer(seed);
}
}  // namespace

TEST(Neurons, GatherKeepsGoodPeersAndNamesWhyTheOthersFailed) {
  test::TempDir dir("gather");
  const auto file = dir / "chain.db";
  chain::LocalChain::create(file, {.block_time_ms = 60'000});
  chain::LocalChain c(file);
  c.create_subnet(1, {});
  auto cold = key(200);
  std::vector<std::unique_ptr<Signer>> hot;
  for (uint8_t i = 0; i < 6; ++i) {
    hot.push_back(key(i));
    c.register_neuron(1, *cold, ss58_encode(hot[i]->public_key()));
  }
  NeuronHparams h;
  h.codec = "slice";
  h.compression = 50;
  const LlamaConfig config = preset("tiny");
  Llama model(config);
  model->init_weights(1);
  const uint64_t window = 3;
  const uint64_t skey = slice_key(window, c.block_hash(0));
  auto signed_update = [&](uint16_t uid, const Signer& signer) {
    Update u = slice_encode(model->ordered_parameters(), skey, h.compression);
    u.window = window;
    u.uid = uid;
    u.config_hash = config_hash(config);
    return encode_update(std::move(u), signer);
  };
  auto publish = [&](uint16_t uid, const std::string& bytes) {
    const std::string url = "file://" + (dir / ("b" + std::to_string(uid))).string();
    c.set_commitment(1, *hot[uid], url);
    FileBucket(dir / ("b" + std::to_string(uid)))
        .put(update_key(window, uid, ss58_encode(hot[uid]->public_key())), bytes);
  };
  publish(0, signed_update(0, *hot[0]));  // good
  publish(1, std::string(1000, 'x'));     // garbage
  publish(2, signed_update(2, *hot[3]));  // signed by someone else's key
  c.set_commitment(1, *hot[3], "file://" + (dir / "empty").string());  // committed, never uploaded
  setenv("AWS_ACCESS_KEY_ID", "k", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
  setenv("BISTRO_S3_ENDPOINT", "http://127.0.0.1:1", 1);  // nothing listens there
  c.set_commitment(1, *hot[4], "s3://unreachable");
  publish(5, signed_update(5, *hot[5]));  // good, but skipped by the caller

  GatherStats gs;
  auto got = gather_updates(c.metagraph(1), c.commitments(1), h, config, window, {5}, &gs);
  unsetenv("BISTRO_S3_ENDPOINT");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.begin()->first, 0);
  EXPECT_EQ(got.at(0).tensors.size(), parameter_specs(config).size());
  ASSERT_EQ(gs.rejected.size(), 4u);
  EXPECT_NE(gs.rejected.at(1).find("alformed"), std::string::npos) << gs.rejected.at(1);
  EXPECT_NE(gs.rejected.at(2).find("wrong-hotkey"), std::string::npos) << gs.rejected.at(2);
  EXPECT_EQ(gs.rejected.at(3), "missing");
  EXPECT_NE(gs.rejected.at(4).find("unreachable bucket"), std::string::npos) << gs.rejected.at(4);
  EXPECT_GT(gs.bytes, 0u);
}

TEST(Localnet, JsonlTailReadsOnlyWhatWasAppendedAndWaitsForTornLines) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("bistro-tail-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(file);
  localnet::JsonlTail tail(file);
  EXPECT_TRUE(tail.next().empty());  // no file yet
  { std::ofstream(file, std::ios::app) << "{\"window\": 1}\nnot json\n{\"window\": 2, \"x\""; }
  auto got = tail.next();
  ASSERT_EQ(got.size(), 1u);  // the bad line skipped, the torn one left for later
  EXPECT_EQ(got[0]["window"], 1);
  EXPECT_TRUE(tail.next().empty());
  { std::ofstream(file, std::ios::app) << ": 3}\n{\"window\": 4}\n"; }
  got = tail.next();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["x"], 3);
  EXPECT_EQ(got[1]["window"], 4);
  EXPECT_EQ(localnet::read_jsonl(file).size(), 3u);  // the whole-file reader agrees
  std::filesystem::remove(file);
}

TEST(Neurons, TheValidatorPicksRowsSpreadOverTheMicroBatches) {
  // 6 micro-batches of 4 rows; each row's tokens say (batch, row).
  std::vector<Batch> batches;
  for (int64_t b = 0; b < 6; ++b) {
    auto in = torch::zeros({4, 8}, torch::kLong);
    for (int64_t r = 0; r < 4; ++r) in[r].fill_(10 * b + r);
    batches.push_back({in, in + 1000});
  }
  const auto picked = pick_batches(batches, 2, 42);
  ASSERT_EQ(picked.size(), 2u);
  std::vector<int64_t> ids;
  std::set<int64_t> from;
  for (const auto& p : picked) {
    ASSERT_EQ(p.inputs.sizes(), batches[0].inputs.sizes());
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t id = p.inputs[r][0].item<int64_t>();
      EXPECT_EQ(p.targets[r][0].item<int64_t>(), id + 1000);  // a row keeps its targets
      ids.push_back(id), from.insert(id / 10);
    }
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 8u);  // no row twice
  EXPECT_GT(from.size(), 2u);                                       // not two whole micro-batches
  EXPECT_EQ(pick_batches(batches, 2, 42)[1].inputs[3][0].item<int64_t>(), ids[7]);  // keyed
  bool differs = false;
  for (uint64_t key = 1; key < 5 && !differs; ++key)
    differs = !torch::equal(pick_batches(batches, 2, key)[0].inputs, picked[0].inputs);
  EXPECT_TRUE(differs);
  EXPECT_EQ(pick_batches(batches, 6, 1).size(), 6u);  // all of them, as they are
  batches[3] = {torch::zeros({2, 8}, torch::kLong), torch::zeros({2, 8}, torch::kLong)};
  EXPECT_THROW(pick_batches(batches, 2, 42), Error);
}

TEST(Neurons, HparamsFilesAreChecked) {
  test::TempDir dir("hparams");
  std::ofstream(dir / "ok.json") << R"({"preset": "small", "blocks_per_window": 3})";
  EXPECT_EQ(load_hparams(dir / "ok.json").blocks_per_window, 3u);
  EXPECT_EQ(load_hparams(dir / "ok.json").preset, "small");
  std::ofstream(dir / "typo.json") << R"({"blocks_per_windw": 3})";
  EXPECT_THROW(load_hparams(dir / "typo.json"), Error);
  std::ofstream(dir / "neg.json") << R"({"blocks_per_window": -3})";
  EXPECT_THROW(load_hparams(dir / "neg.json"), Error);
  std::ofstream(dir / "zero.json") << R"({"blocks_per_window": 0})";
  EXPECT_THROW(load_hparams(dir / "zero.json"), Error);
  EXPECT_EQ(window_of(14, load_hparams(dir / "ok.json")), 4u);
  {  // window 4 of 3 blocks: blocks 12-14, its updates due by block 15 + grace
    auto h = load_hparams(dir / "ok.json");
    h.grace_blocks = 2;
    EXPECT_EQ(window_deadline_block(4, h), 17u);
    EXPECT_EQ(window_deadline_block(4, h) - window_deadline_block(3, h), 3u);
  }
  // The judgement's and the budgets' knobs, each refused out of range with its name.
  for (const char* bad :
       {R"({"harm_alpha": 0})", R"({"evidence_alpha": 0.5})", R"({"close_budget": 1.5})",
        R"({"judge_budget": -0.1})", R"({"score_random_batches": 0})", R"({"score_batches": 0})",
        R"({"max_inner_steps": 4})", R"({"trust_alpha": 0.001})", R"({"evidence_decay": 1})",
        R"({"pay_prior": -1})", R"({"null_reads": 2000000})", R"({"burn_uid": 70000})",
        R"({"burn_uid": -2})"}) {
    std::ofstream(dir / "bad.json") << bad;
    try {
      load_hparams(dir / "bad.json");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      const std::string key = std::string(bad).substr(2, std::string(bad).find('"', 2) - 2);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

// The validator compares losses measured at different times: a loss must depend on the weights
// and the batch only, never on which batches ran before.
TEST(Neurons, LossIsAPureFunctionOfWeightsAndBatch) {
  torch::manual_seed(0);
  Llama model(preset("tiny"));
  model->init_weights(3);
  const auto vocab = preset("tiny").vocab_size;
  auto batch = [&](int64_t rows, int64_t t) {
    auto x = torch::randint(vocab, {rows, t}, torch::kInt64);
    return Batch{x, torch::roll(x, -1, 1)};
  };
  Batch a = batch(8, 128), b = batch(3, 128), c = batch(8, 64);
  const double first = mean_loss(model, {a});
  mean_loss(model, {b});
  mean_loss(model, {c});
  EXPECT_EQ(mean_loss(model, {a}), first);
}

// A master validator (staked, "master:" bucket) and two miners on a LocalChain; the validator
// publishes record(5) naming both miners' updates; a follower's ModelSync must reach exactly the
// master's theta, and refuse (by name) every way the record or the files can be wrong.
TEST(Neurons, RecordsMoveEveryNodeToTheMastersTheta) {
  test::TempDir dir("sync");
  const auto file = dir / "chain.db";
  chain::LocalChain::create(file, {.block_time_ms = 60'000});
  chain::LocalChain c(file);
  c.create_subnet(1, {});
  auto cold = key(200);
  auto vkey = key(50);
  const std::string vhot = ss58_encode(vkey->public_key());
  c.register_neuron(1, *cold, vhot);
  c.add_stake(vhot, ss58_encode(cold->public_key()), 1'000'000'000);
  const std::string vurl = "file://" + (dir / "validator").string();
  c.set_commitment(1, *vkey, "master:" + vurl);
  FileBucket vbucket(dir / "validator");

  NeuronHparams h;  // sparseloco, the default
  const LlamaConfig config = preset("tiny");
  Llama master(config);
  master->init_weights(h.init_seed);
  const auto theta = parameter_tensors(master);
  const uint64_t u = 5;
  std::vector<std::string> files;
  std::vector<Update> updates;
  WindowRecord r;
  r.window = u;
  r.config_hash = config_hash(config);
  r.hparams_hash = hparams_hash(h);
  for (uint8_t m = 1; m <= 2; ++m) {
    auto hot = key(m);
    const std::string hk = ss58_encode(hot->public_key());
    const uint16_t uid = c.register_neuron(1, *cold, hk);
    const std::string url = "file://" + (dir / ("m" + std::to_string(m))).string();
    c.set_commitment(1, *hot, url);
    ErrorFeedback ef(master->ordered_parameters(), {.k = h.topk});
    std::vector<torch::Tensor> delta;
    torch::manual_seed(m);
    for (const auto& p : theta) delta.push_back(torch::randn_like(p) * 1e-3);
    Update up = ef.encode(delta);
    up.window = u;
    up.uid = uid;
    up.config_hash = config_hash(config);
    files.push_back(encode_update(up, *hot));
    FileBucket(dir / ("m" + std::to_string(m))).put(update_key(u, uid, hk), files.back());
    updates.push_back(decode_update(files.back(), update_expectation(h, config, u, uid, hk), "t"));
    r.accepted.push_back({uid, hk, sha256_hex(files.back())});
  }
  r.base_hash = params_hash(theta);
  vbucket.put(mirror_key(u, r.accepted[0].uid), files[0]);
  vbucket.put(mirror_key(u, r.accepted[1].uid), files[1]);
  outer_step(theta, {{r.accepted[0].uid, &updates[0]}, {r.accepted[1].uid, &updates[1]}},
             h.outer_lr);
  r.params_hash = params_hash(theta);
  ASSERT_NE(r.params_hash, r.base_hash);
  vbucket.put(record_key(u), encode_record(r, *vkey));

  std::vector<std::string> logged;
  ModelSync sync(c, 1, h, config, dir / "scratch",
                 [&](int, const std::string& m) { logged.push_back(m); });
  auto fresh = [&] {
    Llama m(config);
    m->init_weights(h.init_seed);
    return m;
  };
  auto error_of = [&](Llama& m) -> std::string {
    try {
      sync.apply_record(*sync.fetch_record(u), parameter_tensors(m));
    } catch (const SyncError& e) {
      return e.what();
    }
    return "applied";
  };
  {  // From the miners' buckets: the master's theta, bit for bit.
    Llama follower = fresh();
    EXPECT_EQ(error_of(follower), "applied");
    EXPECT_EQ(params_hash(parameter_tensors(follower)), r.params_hash);
  }
  {  // One miner's object gone: the mirror serves it.
    FileBucket(dir / "m1").remove(update_key(u, r.accepted[0].uid, r.accepted[0].hotkey));
    Llama follower = fresh();
    EXPECT_EQ(error_of(follower), "applied");
    EXPECT_EQ(params_hash(parameter_tensors(follower)), r.params_hash);
  }
  {  // ... and the mirror holding other bytes: refused, naming the window and uid.
    vbucket.put(mirror_key(u, r.accepted[0].uid), files[1]);
    Llama follower = fresh();
    const auto before = params_hash(parameter_tensors(follower));
    const auto e = error_of(follower);
    EXPECT_NE(e.find("window 5: uid " + std::to_string(r.accepted[0].uid)), std::string::npos) << e;
    EXPECT_NE(e.find("other bytes"), std::string::npos) << e;
    EXPECT_EQ(params_hash(parameter_tensors(follower)), before);  // untouched
    vbucket.put(mirror_key(u, r.accepted[0].uid), files[0]);
  }
  {  // A node on another theta is told it has diverged before anything is applied.
    Llama other(config);
    other->init_weights(h.init_seed + 1);
    EXPECT_NE(error_of(other).find("the record starts from"), std::string::npos);
  }
  {  // A record whose result hash is wrong: the node notices after the outer step.
    WindowRecord lie = r;
    lie.params_hash = std::string(32, '0');
    vbucket.put(record_key(u), encode_record(lie, *vkey));
    Llama follower = fresh();
    EXPECT_NE(error_of(follower).find("after the outer step"), std::string::npos);
    vbucket.put(record_key(u), encode_record(r, *vkey));
  }
  {  // A record signed by someone else: refused as published; never final (logged, skipped).
    vbucket.put(record_key(u), encode_record(r, *key(77)));
    EXPECT_THROW(sync.fetch_published(u), SyncError);
    EXPECT_FALSE(sync.fetch_record(u).has_value());
    vbucket.put(record_key(u), encode_record(r, *vkey));
    EXPECT_TRUE(sync.fetch_record(u).has_value());  // the lone validator's: final on its own
  }
  {  // catch_up: theta_5 -> theta_7 needs record(5) and record(6); with record(6) missing it
     // stops at 6, and a node with nothing loads the checkpoint of window 6 once it exists.
    Llama follower = fresh();
    EXPECT_EQ(sync.catch_up(follower, 5, 7, 0), std::optional<uint64_t>(6));
    EXPECT_EQ(params_hash(parameter_tensors(follower)), r.params_hash);
    // The record it applied is kept (a miner asks whether it holds its update: no second GET).
    ASSERT_TRUE(sync.last_applied().has_value());
    EXPECT_EQ(sync.last_applied()->window, u);
    EXPECT_EQ(sync.last_applied()->params_hash, r.params_hash);
    Llama late = fresh();
    EXPECT_EQ(sync.catch_up(late, std::nullopt, 6, 0), std::nullopt);  // nothing published yet
    publish_checkpoint(vbucket, master, 6, dir / "pub");
    EXPECT_EQ(sync.catch_up(late, std::nullopt, 6, 0), std::optional<uint64_t>(6));
    EXPECT_EQ(params_hash(parameter_tensors(late)), r.params_hash);
  }
}

// Failover (docs/protocol.md): while the lead's turn lasts a follower reads only the lead's
// published record; past it, the next validator in stake order's record(u) is taken, checked
// against that validator's key, and that validator is read first from then on. The final record
// (what nodes apply) is the backup's once the lead, with no statement of recent windows, is not
// active: a dead lead cannot stall the subnet.
TEST(Neurons, AFollowerWaitsForRecordsUntilEveryFailoverTurnHadItsChance) {
  NeuronHparams h;  // 5 blocks a window, grace 1, failover 5: D(u) = 5u + 11
  ASSERT_EQ(failover_block(2, h), 21u);
  // Alone (no other validator), or with one turn: until the last turn's record had a failover
  // period, and never before the deadline of window u+1.
  EXPECT_EQ(record_wait_block(2, h, 0), 21u);
  EXPECT_EQ(record_wait_block(2, h, 1), 27u);
  EXPECT_EQ(record_wait_block(2, h, 2), 32u);
  // The first failover turn begins at D(u) + 1: a follower must still be waiting then.
  for (uint64_t c = 1; c < 4; ++c)
    EXPECT_GT(record_wait_block(2, h, c), failover_block(2, h) + (c - 1) * h.failover_blocks + 1);
  h.failover_blocks = 1;  // short turns: the deadline of window u+1 bounds the wait
  EXPECT_EQ(record_wait_block(2, h, 2), 21u);
}

TEST(Neurons, AFailoverRecordComesFromTheNextValidatorInStakeOrder) {
  test::TempDir dir("failover");
  NeuronHparams h;
  const LlamaConfig config = preset("tiny");
  auto cold = key(201);
  auto lead = key(60), backup = key(61);
  const std::string lead_hk = ss58_encode(lead->public_key());
  const std::string backup_hk = ss58_encode(backup->public_key());
  // 60 s blocks: the clock stands still for the test, at window 0 unless advanced.
  auto make_chain = [&](const std::string& name) {
    const auto file = dir / name;
    chain::LocalChain::create(file, {.block_time_ms = 60'000});
    auto c = std::make_unique<chain::LocalChain>(file);
    c->create_subnet(1, {});
    const std::string coldkey = ss58_encode(cold->public_key());
    c->register_neuron(1, *cold, backup_hk);  // uid 0: the order is by stake, not uid
    c->register_neuron(1, *cold, lead_hk);
    c->add_stake(lead_hk, coldkey, 1000'000'000'000);
    c->add_stake(backup_hk, coldkey, 500'000'000'000);
    c->set_commitment(1, *lead, "master:file://" + (dir / "lead").string());
    c->set_commitment(1, *backup, "master:file://" + (dir / "backup").string());
    return c;
  };
  Llama theta(config);
  theta->init_weights(h.init_seed);
  WindowRecord r;  // an empty record: theta_4 = theta_3
  r.window = 3;
  r.config_hash = config_hash(config);
  r.hparams_hash = hparams_hash(h);
  r.base_hash = r.params_hash = params_hash(parameter_tensors(theta));
  FileBucket(dir / "lead").put("placeholder", "x");  // the lead's bucket exists, without record(3)
  FileBucket(dir / "backup").put(record_key(3), encode_record(r, *backup));

  {  // Within the lead's turn: the backup's record is not read as the published one.
    auto c = make_chain("lead_turn.db");
    ModelSync sync(*c, 1, h, config, dir / "s1", [](int, const std::string&) {});
    EXPECT_EQ(sync.master()->hotkey_ss58, lead_hk);
    EXPECT_FALSE(sync.fetch_published(3).has_value());
    EXPECT_EQ(sync.master()->hotkey_ss58, lead_hk);
    // What a miner trains on before finality: the lead's record only, never another's.
    EXPECT_FALSE(sync.fetch_lead_record(3).has_value());
    FileBucket(dir / "lead").put(record_key(3), encode_record(r, *lead));
    const auto published = sync.fetch_lead_record(3);
    ASSERT_TRUE(published.has_value());
    EXPECT_EQ(published->params_hash, r.params_hash);
    FileBucket(dir / "lead").remove(record_key(3));
    // The lead with a statement of window 2 is active: 500 of 1500 is no quorum.
    FileBucket(dir / "lead").put(attestation_key(2), "x");
    EXPECT_FALSE(sync.fetch_record(3).has_value());
    FileBucket(dir / "lead").remove(attestation_key(2));
  }
  // Just past window 3's failover block, held there: the active set is then read at window 4
  // (statements of windows 2 and 3), where the backup's record(3) is the only one. A moving
  // clock made this depend on the machine's load: a few windows later nobody is active, every
  // validator counts, and 500 of 1500 is no quorum.
  auto c = make_chain("past_failover.db");
  c->advance(failover_block(3, h) + 1 - c->block());
  ASSERT_EQ(window_of(c->block(), h), 5u);
  const auto order = validator_order(*c, 1);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0].hotkey_ss58, lead_hk);
  EXPECT_EQ(order[1].hotkey_ss58, backup_hk);
  std::vector<std::string> logged;
  ModelSync sync(*c, 1, h, config, dir / "s2",
                 [&](int, const std::string& m) { logged.push_back(m); });
  // Past the failover block too, the lead's record alone: nothing, and no one else leads.
  EXPECT_FALSE(sync.fetch_lead_record(3).has_value());
  EXPECT_EQ(sync.master()->hotkey_ss58, lead_hk);
  const auto got = sync.fetch_published(3);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->params_hash, r.params_hash);
  EXPECT_EQ(sync.master()->hotkey_ss58, backup_hk);  // read first from now on
  ASSERT_FALSE(logged.empty());
  EXPECT_NE(logged.at(logged.size() - 2).find("failover"), std::string::npos) << logged.front();
  // The lead whose turn passed without a record was passed over: it rests before leading again.
  EXPECT_NE(logged.back().find(lead_hk + " rests 4 windows"), std::string::npos) << logged.back();
  {  // What a node applies: the backup's record is final, the silent lead not being active.
    ModelSync fresh_sync(*c, 1, h, config, dir / "s3",
                         [&](int, const std::string& m) { logged.push_back(m); });
    const auto final_record = fresh_sync.fetch_record(3);
    ASSERT_TRUE(final_record.has_value());
    EXPECT_EQ(final_record->params_hash, r.params_hash);
    EXPECT_EQ(fresh_sync.master()->hotkey_ss58, backup_hk);
    EXPECT_NE(logged.back().find("takes the turn of the lead " + lead_hk), std::string::npos)
        << logged.back();
    // A node catching up replays windows older than every view it cached: reading window 3
    // again after four newer windows must still find the record (its cached view once freed
    // itself, and the buckets were opened at garbage paths).
    for (uint64_t u = 10; u < 15; ++u) EXPECT_TRUE(fresh_sync.records_of(u).empty());
    const auto again = fresh_sync.records_of(3);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_TRUE(again[0].finality.final);
    EXPECT_EQ(again[0].publisher_ss58, backup_hk);
    EXPECT_EQ(again[0].record.params_hash, r.params_hash);
  }
  // The next record from the backup's bucket signed by another key: refused, naming the source.
  r.window = 4;
  FileBucket(dir / "backup").put(record_key(4), encode_record(r, *key(99)));
  EXPECT_FALSE(sync.fetch_record(4).has_value());  // never final
  try {
    sync.fetch_published(4);
    FAIL() << "a record signed by a validator that did not publish it was accepted";
  } catch (const SyncError& e) {
    EXPECT_NE(std::string(e.what()).find(backup_hk), std::string::npos) << e.what();
  }
}

// The inner loop runs H steps unless the deadline check says stop (always after the first), and
// its pseudo-gradient is exactly start - end; the error-feedback state survives a save and load.
TEST(Neurons, InnerLoopStopsForTheDeadlineAndYieldsThePseudoGradient) {
  torch::manual_seed(0);
  const LlamaConfig config = preset("tiny");
  Llama model(config);
  model->init_weights(5);
  auto x = torch::randint(config.vocab_size, {4, 32}, torch::kInt64);
  const std::vector<Batch> batches = {{x, torch::roll(x, -1, 1)}};
  Trainer trainer(std::move(model), {});
  const auto params = parameter_tensors(trainer.model());
  std::vector<torch::Tensor> start;
  for (const auto& p : params) start.push_back(p.detach().clone());
  int asked = 0;
  auto r = inner_loop(trainer, batches, 5, [&](double per_step) {
    EXPECT_GT(per_step, 0.0);
    return ++asked < 2;  // room for one more step after the first
  });
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(trainer.steps(), 2);
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_EQ(inner_loop(trainer, batches, 3).steps, 3);
  const auto d = pseudo_gradient(start, params);
  double moved = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_TRUE(torch::equal(d[i], start[i] - params[i].detach()));
    moved += d[i].abs().sum().item<double>();
  }
  EXPECT_GT(moved, 0);

  test::TempDir dir("ef");
  ErrorFeedback ef(trainer.model()->ordered_parameters(), {});
  const Update sent = ef.encode(d);
  ef.save(dir / "ef.safetensors");
  ErrorFeedback again(trainer.model()->ordered_parameters(), {});
  ASSERT_TRUE(again.load(dir / "ef.safetensors"));
  for (size_t i = 0; i < d.size(); ++i) EXPECT_TRUE(torch::equal(ef.buffer(i), again.buffer(i)));
  EXPECT_FALSE(again.load(dir / "missing.safetensors"));
  // The buffer plus what was sent is the pseudo-gradient (e started at zero).
  const auto& t0 = sent.tensors[0];
  EXPECT_EQ(t0.levels.size(), 4u);
  const ChunkPlan plan = chunk_plan(d[0].sizes().vec());
  auto rebuilt = ef.buffer(0).clone().view(-1);
  float* R = rebuilt.data_ptr<float>();
  for (int64_t c = 0; c < t0.rows; ++c)
    for (int64_t s = 0; s < t0.k; ++s)
      R[sparse_loco::element_of(plan, c, t0.idx[c * t0.k + s])] += t0.val[c * t0.k + s];
  EXPECT_TRUE(torch::allclose(rebuilt.view(d[0].sizes()), d[0], 1e-5, 1e-7));
}

// The record guard's test, as the lead runs it over the admitted updates and as a follower asks
// it before naming an update a record left out: a step that raises the loss on the random rows by
// significantly more than the guard's share is refused; theta is restored either way.
TEST(Neurons, TheGuardRefusesAStepThatRaisesTheLossPastItsShare) {
  NeuronHparams h;
  const LlamaConfig config = preset("tiny");
  Llama theta(config);
  theta->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta);
  const std::string before = params_hash(params);
  auto update_of = [&](double scale, int seed) {
    ErrorFeedback ef(theta->ordered_parameters(), {.k = h.topk});
    std::vector<torch::Tensor> delta;
    torch::manual_seed(seed);
    for (const auto& p : params) delta.push_back(torch::randn_like(p) * scale);
    return ef.encode(delta);
  };
  const Update tiny = update_of(1e-7, 1), wild = update_of(3.0, 2);
  const std::vector<Batch> random = {random_batch(config, 8, 16, 7)};
  const auto base = sequence_losses(theta, random);
  EXPECT_FALSE(guard_refuses(theta, {{1, &tiny}}, 1.0, random, base, 0.02, 0.01));
  EXPECT_EQ(params_hash(params), before);
  EXPECT_TRUE(guard_refuses(theta, {{2, &wild}}, 1.0, random, base, 0.02, 0.01));
  EXPECT_EQ(params_hash(params), before);
  // Beside the tiny one, the wild update is clipped to the peers' median norm (the outer step's
  // rule): a scaled-up update buys no larger step, and the guard lets the pair through.
  EXPECT_FALSE(guard_refuses(theta, {{2, &wild}, {1, &tiny}}, 1.0, random, base, 0.02, 0.01));
  // The lead's guard: a step it refuses leaves theta alone; one it passes is taken.
  EXPECT_TRUE(guarded_outer_step(theta, {{2, &wild}}, 1.0, random, base, 0.02, 0.01).empty());
  EXPECT_EQ(params_hash(params), before);
  // Two wild updates and a tiny one: the lower median norm is a wild one's, so the three
  // together rise past the guard. The halves are ranked by what each does alone, so the tiny one
  // is kept, though the judge's order put the wild ones first (a prefix kept nothing).
  const Update wilder = update_of(3.0, 3);
  EXPECT_EQ(guarded_outer_step(theta, {{2, &wild}, {3, &wilder}, {1, &tiny}}, 1.0, random, base,
                               0.02, 0.01),
            std::vector<uint64_t>{1});
  EXPECT_NE(params_hash(params), before);
}

// The gauntlet's scoring applies an update alone, sparsely, as the outer step would with this one
// peer; the own-page margin reads it against other miners' updates on the same pages.
TEST(Neurons, ScoringAppliesAnUpdateAloneAsTheOuterStepWouldAndRestoresTheta) {
  NeuronHparams h;
  const LlamaConfig config = preset("tiny");
  Llama theta(config), stepped(config);
  theta->init_weights(h.init_seed);
  stepped->init_weights(h.init_seed);
  const auto params = parameter_tensors(theta), sp = parameter_tensors(stepped);
  ErrorFeedback ef(theta->ordered_parameters(), {.k = h.topk});
  std::vector<torch::Tensor> delta;
  torch::manual_seed(3);
  for (const auto& p : params) delta.push_back(torch::randn_like(p) * 1e-2);
  const Update u = ef.encode(delta);
  const std::string before = params_hash(params);
  outer_step(sp, {{1, &u}}, 0.7);
  std::vector<Batch> batch = {random_batch(config, 2, 16, 11)};
  const double expect = mean_loss(stepped, batch);
  const auto got = losses_with(theta, u, 0.7, std::vector<double>(params.size(), 1.0), {&batch});
  EXPECT_NEAR(got[0], expect, 1e-5);
  EXPECT_EQ(params_hash(params), before);  // restored bit for bit
  // The index-op path (a validator whose theta is on a GPU) writes and restores the same bits.
  {
    const std::vector<double> ones(params.size(), 1.0);
    auto saved = apply_alone(params, u, 0.7, ones);
    const std::string raw = params_hash(params);
    EXPECT_NE(raw, before);
    restore_alone(params, u, saved);
    saved = apply_alone(params, u, 0.7, ones, /*index_ops=*/true);
    EXPECT_EQ(params_hash(params), raw);
    restore_alone(params, u, saved);
    EXPECT_EQ(params_hash(params), before);
  }

  // A window: two honest-like updates made from each miner's own batch, one trained elsewhere.
  // Each update's own batch improves most under its own update.
  std::vector<std::vector<Batch>> own;
  std::vector<Update> ups;
  for (int m = 0; m < 3; ++m) {
    own.push_back({random_batch(config, 2, 16, 100 + m)});
    Llama work(config);
    work->init_weights(h.init_seed);
    Trainer t(work, inner_train_options(h));
    std::vector<Batch> train =
        m == 2 ? std::vector<Batch>{random_batch(config, 2, 16, 999)} : own.back();
    for (int s = 0; s < 4; ++s) t.step(train);
    ErrorFeedback e(theta->ordered_parameters(), {.k = h.topk});
    ups.push_back(e.encode(pseudo_gradient(params, parameter_tensors(work))));
  }
  std::vector<ScoreInput> in;
  std::vector<Observation> obs;
  for (int m = 0; m < 3; ++m) {
    in.push_back({static_cast<uint16_t>(m + 1), &ups[m], own[m]});
    obs.push_back({static_cast<uint16_t>(m + 1), "hk", "ok"});
  }
  const std::vector<Batch> random = {random_batch(config, 2, 16, 500)};
  // All at once on two threads, and one at a time as they land: the same observations.
  auto obs_one = obs;
  std::vector<double> all_clip;
  {
    WindowScorer all(theta, config, random, 1.0);
    all.add_all(in, 2);
    all.observe(obs, {}, 2);
    all_clip = all.median_norms();
  }
  EXPECT_EQ(params_hash(params), before);
  EXPECT_GT(obs[0].margin(), 0);
  EXPECT_GT(obs[1].margin(), 0);
  EXPECT_GT(obs[0].margin(), 5 * std::fabs(obs[2].margin()));
  EXPECT_FALSE(std::isnan(obs[2].d_cross));
  // Per sequence: 2 rows each; the honest margins are paired over them.
  EXPECT_EQ(obs[0].own_margin.n, 2u);
  EXPECT_EQ(obs[0].random.n, 2u);
  EXPECT_NEAR(obs[0].own_margin.mean, obs[0].margin(), 1e-9);
  // The test's null on uid 2's pages: its two references (uids 1 and 3, the strong ones),
  // neither trained on them, read one against the other, show a fraction of uid 2's own work.
  // uid 1 has one reference (uid 2 is too weak to serve), so no null to read.
  EXPECT_EQ(obs[1].placebo.n, 2u);
  EXPECT_LT(std::fabs(obs[1].placebo.mean), obs[1].margin() / 4);
  EXPECT_EQ(obs[0].placebo.n, 0u);
  WindowScorer one(theta, config, random, 1.0);
  one.set_clip(all_clip);
  for (const auto& x : in) one.add(x.uid, x.update, x.own);
  one.observe(obs_one, {});
  EXPECT_EQ(params_hash(params), before);
  for (size_t i = 0; i < obs.size(); ++i) {
    EXPECT_NEAR(obs_one[i].d_own, obs[i].d_own, 1e-6);
    EXPECT_NEAR(obs_one[i].d_random, obs[i].d_random, 1e-6);
    EXPECT_GT(obs_one[i].own_margin.n, 0u);
  }
  // A reference that turns out rejected is replaced at the close: with uid 1 excluded, uid 2's
  // only possible reference is uid 3 (unclipped here).
  WindowScorer ex(theta, config, random, 1.0);
  ex.set_clip(std::vector<double>(params.size(), 1e30));
  for (const auto& x : in) ex.add(x.uid, x.update, x.own);
  auto obs_ex = obs_one;
  ex.observe(obs_ex, {1});
  if (!std::isnan(obs_ex[1].d_cross)) {
    const double by3 =
        losses_with(theta, ups[2], 1.0, std::vector<double>(params.size(), 1.0), {&own[1]})[0];
    EXPECT_NEAR(obs_ex[1].d_cross, mean_loss(theta, own[1]) - by3, 1e-4);
  }
  // An update measured alone gets another as a reference measured on the random pages only:
  // its margin is then read against it (as with both measured), and the reference counts as
  // measured only once add() measures it, on its own pages too.
  {
    WindowScorer lone(theta, config, random, 1.0);
    lone.set_clip(all_clip);
    lone.add(1, &ups[0], own[0]);
    auto obs_lone = obs_one;
    lone.observe(obs_lone, {});
    EXPECT_TRUE(std::isnan(obs_lone[0].d_cross));  // no reference: read against random pages
    EXPECT_EQ(obs_lone[0].placebo.n, 0u);          // nor a null to read
    // (the validator asks for one while exactly one strong update is in, whatever else is)
    const size_t strong_alone = lone.strong_count({});
    EXPECT_EQ(strong_alone, obs[0].d_random > 0 ? 1u : 0u);
    lone.add_reference(2, &ups[1]);
    EXPECT_FALSE(lone.has(2));
    EXPECT_TRUE(lone.is_reference(2));
    EXPECT_EQ(lone.size(), 1u);
    EXPECT_EQ(lone.strong_count({2}), strong_alone);
    obs_lone = obs_one;
    lone.observe(obs_lone, {});
    const double by2 =
        losses_with(theta, ups[1], 1.0, std::vector<double>(params.size(), 1.0), {&own[0]})[0];
    EXPECT_NEAR(obs_lone[0].d_cross, mean_loss(theta, own[0]) - by2, 1e-4);
    EXPECT_NEAR(obs_lone[0].d_random_ref, obs[1].d_random, 1e-4);
    lone.add(2, &ups[1], own[1]);  // the reference measured in full
    EXPECT_TRUE(lone.has(2));
    EXPECT_FALSE(lone.is_reference(2));
    EXPECT_EQ(lone.size(), 2u);
    obs_lone = obs_one;
    lone.observe(obs_lone, {});
    EXPECT_NEAR(obs_lone[1].d_own, obs[1].d_own, 1e-6);
    EXPECT_FALSE(std::isnan(obs_lone[1].d_cross));
    EXPECT_EQ(params_hash(params), before);
  }
  // Per-sequence losses average to the batch loss when every row counts the same targets.
  const auto seq = sequence_losses(theta, random);
  ASSERT_EQ(seq.size(), 2u);
  EXPECT_NEAR(0.5 * (seq[0] + seq[1]), mean_loss(theta, random), 1e-4);
}
