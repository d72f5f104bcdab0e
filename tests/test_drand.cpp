// drand timelock encryption (drand/timelock.hpp) and the timelocked weights commit
// (chain/timelocked_weights.hpp): quicknet round 1000's published signature opens what bistro
// encrypts to round 1000; bittensor-drand, the SDK's implementation, opens bistro's ciphertext and
// bistro opens bittensor-drand's; hostile ciphertexts are refused by name.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "bistro/chain/timelocked_weights.hpp"
#include "bistro/core/error.hpp"
#include "bistro/drand/timelock.hpp"
#include "bistro/substrate/scale.hpp"
#include "test_util.hpp"

namespace bistro {
namespace {
namespace fs = std::filesystem;

// Quicknet round 1000, from subtensor's pallets/drand tests (the beacon's published pulse); a
// pulse those tests reject for round 1000 (no point of G1); and the negated round-1000
// signature (its sign bit flipped): a point of G1 that is no round's signature.
const std::string kRound1000Signature =
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e"
    "39";
const std::string kBadPulse =
    "b0a8b04e009cf72534321aca0f50048da596a3feec1172a0244d9a4a623a3123d0402da79854d4c705e94bc73224c3"
    "41";
const std::string kNegatedRound1000 = "94" + kRound1000Signature.substr(2);  // 0xb4 - 0x20

std::string source_dir() {
  const char* d = std::getenv("BISTRO_SOURCE_DIR");
  return d ? d : ".";
}

std::string unhex(const std::string& h) {
  return scale::from_hex("0x" + h, "test vector");
}

std::array<uint8_t, 32> seed(uint8_t x) {
  std::array<uint8_t, 32> s{};
  s.fill(x);
  return s;
}

TEST(Drand, Round1000SignatureOpensWhatIsEncryptedToRound1000) {
  const std::string msg = "weights for round 1000";
  const std::string a = drand::timelock_encrypt(msg, 1000, seed(1));
  EXPECT_EQ(drand::timelock_decrypt(a, unhex(kRound1000Signature)), msg);
  EXPECT_EQ(drand::timelock_encrypt(msg, 1000, seed(1)), a);  // a seed fixes the ciphertext
  const std::string b = drand::timelock_encrypt(msg, 1000);   // fresh randomness each time
  EXPECT_NE(b, a);
  EXPECT_EQ(drand::timelock_decrypt(b, unhex(kRound1000Signature)), msg);
  // Round 1001's ciphertext is not opened by round 1000's signature, nor is anything by a wrong
  // signature; a signature that is no point of G1 is named as such.
  const std::string c = drand::timelock_encrypt(msg, 1001, seed(2));
  EXPECT_NE(test::error_of([&] {
              drand::timelock_decrypt(c, unhex(kRound1000Signature));
            }).find("does not open"),
            std::string::npos);
  const std::string wrong =
      test::error_of([&] { drand::timelock_decrypt(a, unhex(kNegatedRound1000)); });
  EXPECT_NE(wrong.find("does not open"), std::string::npos) << wrong;
  EXPECT_NE(test::error_of([&] {
              drand::timelock_decrypt(a, unhex(kBadPulse));
            }).find("not a compressed point of G1"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              drand::timelock_decrypt(a, std::string(48, '\x01'));
            }).find("not a compressed point of G1"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              drand::timelock_encrypt(msg, 1000, seed(1), std::string(192, '1'));
            }).find("not a point of G2"),
            std::string::npos);
}

// A ciphertext is a peer's bytes: truncated, lengthened, or with a length field that claims more
// than is there (or an absurd amount), it is refused with an Error; never an abort.
TEST(Drand, HostileCiphertextsAreRefused) {
  const std::string good = drand::timelock_encrypt("abc", 1000, seed(3));
  const std::string sig = unhex(kRound1000Signature);
  for (size_t n = 0; n < good.size(); n += 7)
    EXPECT_NE(
        test::error_of([&] { drand::timelock_decrypt(good.substr(0, n), sig); }).find("malformed"),
        std::string::npos)
        << n;
  EXPECT_NE(test::error_of([&] { drand::timelock_decrypt(good + "x", sig); }).find("malformed"),
            std::string::npos);
  std::string huge = good;
  for (int i = 0; i < 8; ++i) huge[96 + i] = '\xff';  // v's length
  EXPECT_NE(test::error_of([&] { drand::timelock_decrypt(huge, sig); }).find("malformed"),
            std::string::npos);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int refused = 0;
  for (int round = 0; round < 40; ++round) {
    std::string bad = good;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    bad[x % bad.size()] ^= static_cast<char>(1 + (x >> 32) % 255);
    refused += test::error_of([&] { drand::timelock_decrypt(bad, sig); }) != "(no error)";
  }
  EXPECT_EQ(refused, 40);  // any changed byte: malformed, or the AEAD or IBE check fails
}

TEST(Drand, QuicknetRounds) {
  const double g = static_cast<double>(drand::kQuicknetGenesis);
  EXPECT_EQ(drand::quicknet_round_at(g - 100), 1u);
  EXPECT_EQ(drand::quicknet_round_at(g + 3000), 1000u);
  EXPECT_EQ(drand::quicknet_round_at(g + 3002.9), 1000u);  // rounded down: never a future round
  EXPECT_EQ(drand::quicknet_round_at(g + 3003), 1001u);
}

// Runs bittensor-drand (tests/reference/drand_ref.py in .venv-drand, made by scripts/setup); the
// test fails, never skips, without it.
std::string drand_ref(const std::string& args, const fs::path& out) {
  const auto python = fs::path(source_dir()) / ".venv-drand" / "bin" / "python";
  EXPECT_TRUE(fs::exists(python)) << python << " is missing: run scripts/setup";
  const std::string cmd = fmt::format("'{}' '{}/tests/reference/drand_ref.py' {} > '{}'",
                                      python.string(), source_dir(), args, out.string());
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream f(out);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Drand, BittensorDrandOpensBistrosCiphertextAndBistroOpensItsOwn) {
  test::ScratchDir tmp("drand");
  const std::string msg = "timelocked weights, version 4";
  const std::string ours = drand::timelock_encrypt(msg, 1000);
  std::ofstream(tmp / "ours.bin", std::ios::binary) << ours;
  std::string plain =
      drand_ref("decrypt " + kRound1000Signature + " '" + (tmp / "ours.bin").string() + "'",
                tmp / "plain.txt");
  while (!plain.empty() && std::isspace(static_cast<unsigned char>(plain.back()))) plain.pop_back();
  EXPECT_EQ(plain, scale::to_hex(msg).substr(2));

  drand_ref(
      "encrypt 1000 " + scale::to_hex(msg).substr(2) + " '" + (tmp / "theirs.bin").string() + "'",
      tmp / "log.txt");
  std::ifstream f(tmp / "theirs.bin", std::ios::binary);
  const std::string theirs((std::istreambuf_iterator<char>(f)), {});
  ASSERT_FALSE(theirs.empty());
  EXPECT_EQ(drand::timelock_decrypt(theirs, unhex(kRound1000Signature)), msg);
  EXPECT_EQ(theirs.size(), ours.size());  // one layout
}

// The payload the chain decrypts and checks, and the reveal round as the SDK picks it.
TEST(TimelockedWeights, PayloadAndRevealRound) {
  PublicKey hk{};
  hk.fill(7);
  const std::string v4 = chain::timelocked_weights_payload(hk, {1, 2}, {65535, 9}, 42, 4);
  std::string key_hex;
  for (int i = 0; i < 32; ++i) key_hex += "07";
  EXPECT_EQ(scale::to_hex(v4), "0x80" + key_hex + "080100020008ffff09002a00000000000000");
  const std::string v3 = chain::timelocked_weights_payload(hk, {1, 2}, {65535, 9}, 42, 3);
  EXPECT_EQ(scale::to_hex(v3), "0x080100020008ffff09002a00000000000000");
  EXPECT_NE(test::error_of([&] {
              chain::timelocked_weights_payload(hk, {}, {}, 0, 5);
            }).find("version 5"),
            std::string::npos);

  // Spec 423 on: tempo 10, last epoch at 100, index 5; the commit lands in block 106 (epoch 5),
  // epoch 6 fires at 110, where the chain reveals it.
  chain::EpochSchedule s{.last_epoch_block = 100,
                         .pending_epoch_at = 0,
                         .subnet_epoch_index = 5,
                         .tempo = 10,
                         .blocks_since_last_step = 5,
                         .current_block = 105};
  EXPECT_EQ(chain::first_reveal_block(s, 1), 110u);
  EXPECT_EQ(chain::first_reveal_block(s, 2), 120u);
  s.pending_epoch_at = 107;  // an epoch triggered early fires there, and counts
  EXPECT_EQ(chain::first_reveal_block(s, 1), 107u);
  s.pending_epoch_at = 106;  // it fires in the commit's own block: the commit is in epoch 6
  EXPECT_EQ(chain::first_reveal_block(s, 1), 116u);
  s.tempo = 0;
  EXPECT_NE(test::error_of([&] { chain::first_reveal_block(s, 1); }).find("tempo is 0"),
            std::string::npos);
  // Before 423: epoch (block + netuid + 1) / (tempo + 1).
  EXPECT_EQ(chain::first_reveal_block_before_423(95, 1, 99, 1), 98u);   // epoch 0: 1 starts at 98
  EXPECT_EQ(chain::first_reveal_block_before_423(98, 1, 99, 1), 198u);  // block 98 is epoch 1
  // The round of reveal block + 3 at 12 s a block from the head's time, rounded down.
  const double now = static_cast<double>(drand::kQuicknetGenesis) + 3000;
  EXPECT_EQ(chain::reveal_round(110, 105, 12.0, now), 1032u);  // 8 blocks: 96 s
  EXPECT_EQ(chain::reveal_round(100, 105, 12.0, now), 1000u);  // already due: now's round
  // Version 3 runtimes (commit_crv3_weights): netuid 1, tempo 10 fire in blocks 8, 19, 30 (the
  // last of epochs 0, 1, 2); the chain reveals in the firing block of commit epoch + period - 1.
  EXPECT_EQ(chain::crv3_reveal_block(12, 1, 10, 1), 19u);  // epoch 1, revealed as it ends
  EXPECT_EQ(chain::crv3_reveal_block(19, 1, 10, 1), 30u);  // a firing block's commit is epoch 2's
  EXPECT_EQ(chain::crv3_reveal_block(12, 1, 10, 2), 30u);
  EXPECT_NE(test::error_of([&] { chain::crv3_reveal_block(12, 1, 10, 0); }).find("never revealed"),
            std::string::npos);
  // Its round: 24 rounds before the time of the block after the reveal (10 blocks: 120 s).
  EXPECT_EQ(chain::crv3_reveal_round(19, 10, 12.0, now), 1040u - 24u);
}

}  // namespace
}  // namespace bistro
