// Neuron plumbing against real parts: a LocalChain file, file buckets, signed updates. A bad peer
// (garbage, wrong key, missing object, unreachable bucket) is skipped with its reason; good peers
// are gathered; hparams files are checked.
#include <fstream>

#include "bistro/chain/local_chain.hpp"
#include "bistro/compress/dct.hpp"
#include "bistro/compress/slices.hpp"
#include "bistro/identity/sr25519.hpp"
#include "bistro/identity/ss58.hpp"
#include "bistro/neurons/peers.hpp"
#include "bistro/storage/file_bucket.hpp"
#include "model_test_util.hpp"

using namespace bistro;

namespace {
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
